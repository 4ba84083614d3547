"""Import TensorFlow/Keras without its native start-up noise on the user's terminal.

TensorFlow 2.21 writes absl/oneDNN/CUDA-probe lines straight to file descriptor 2
(``TF_CPP_MIN_LOG_LEVEL`` does not reach all of them), which buries the progress and
summaries our verbs print. These helpers point fd 2 at /dev/null while TensorFlow
initialises and while Keras trains; Python exceptions still propagate untouched.
Set ``GENDER_CLI_TF_LOGS=1`` to see everything.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager


@contextmanager
def native_stderr_silenced():
    """Send what native code writes to file descriptor 2 to /dev/null for a while.

    Python's own ``sys.stderr`` (our progress bars and messages) keeps reaching the
    terminal: when it writes to fd 2, it is pointed at a duplicate of the real stderr
    for the duration.
    """
    if os.environ.get("GENDER_CLI_TF_LOGS"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    python_stderr = sys.stderr
    replacement = None
    if _writes_to_fd2(python_stderr):
        replacement = open(saved, "w", buffering=1, encoding=getattr(python_stderr, "encoding", None) or "utf-8",
                           errors="backslashreplace", closefd=False)
    try:
        os.dup2(devnull, 2)
        if replacement is not None:
            sys.stderr = replacement
        yield
    finally:
        if replacement is not None:
            replacement.flush()
            sys.stderr = python_stderr
            replacement.close()
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _writes_to_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False  # a test runner's in-memory capture, not the descriptor


def import_keras():
    """Return the ``keras`` module, TensorFlow initialised quietly on first use."""
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with native_stderr_silenced():
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe logs here, not later
    import keras

    return keras
