"""Facts about the machine a verb runs on, each found in one place."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def nvidia_gpu_present() -> bool:
    """Whether this machine has an NVIDIA GPU with its driver loaded (device nodes on
    Linux, ``nvidia-smi`` elsewhere). ``GENDER_CLI_ASSUME_GPU=1`` says yes regardless
    (for containers that hide the device nodes)."""
    if os.environ.get("GENDER_CLI_ASSUME_GPU") == "1":
        return True
    if sys.platform.startswith("linux"):
        return any(Path("/dev").glob("nvidia[0-9]*")) or any(Path("/proc/driver/nvidia/gpus").glob("*"))
    return shutil.which("nvidia-smi") is not None


def available_cpus() -> int:
    """CPU cores this process may use (its affinity mask on Linux, else the core count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
