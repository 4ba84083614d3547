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
    if os.environ.get("GENDER_CLI_TF_LOGS"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_keras():
    """Return the ``keras`` module, TensorFlow initialised quietly on first use."""
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with native_stderr_silenced():
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe logs here, not later
    import keras

    return keras
