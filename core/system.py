"""Facts about the machine a verb runs on, each found in one place."""

from __future__ import annotations

import os


def available_cpus() -> int:
    """CPU cores this process may use (its affinity mask on Linux, else the core count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
