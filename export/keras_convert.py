"""Keras models through tf2onnx at the contract's opset, checked against Keras itself.

The one tf2onnx route of export: a Keras head of any architecture (``keras_head``) and
a from-scratch trunk (``scratch_export``) are both loaded, converted and run here, and
the converted model is held to Keras' own outputs on probe inputs before anything is
written. Imports TensorFlow and tf2onnx (the ``[train]`` extra).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from gender_cli import contract
from gender_cli.errors import ModelFileError, first_line


def load_keras_model(path: Path):
    """The Keras model in ``path``, or ModelFileError."""
    from gender_cli.tf_quiet import import_keras, native_stderr_silenced

    keras = import_keras()
    try:
        with native_stderr_silenced():
            return keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises ValueError, OSError, TypeError... for a bad file
        raise ModelFileError(f"{path} is not a Keras model Keras can load: {first_line(exc)}") from None


def convert_checked(model, probe: np.ndarray, input_name: str, what: str, tolerance: float,
                    relative: bool = False):
    """``model`` (one input) through tf2onnx, run on ``probe`` and compared with Keras:
    returns (ModelProto, max |onnx - keras|, relative to Keras' largest magnitude when
    ``relative``); ModelFileError when tf2onnx fails or the difference exceeds ``tolerance``."""
    import tensorflow as tf
    import tf2onnx

    from gender_cli.tf_quiet import native_stderr_silenced

    signature = [tf.TensorSpec((None, *probe.shape[1:]), tf.as_dtype(probe.dtype), name=input_name)]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # tf2onnx warns on the root logger about rewrites it does not need here
    try:
        with native_stderr_silenced():
            onnx_model, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=contract.OPSET)
            expected = np.asarray(model(probe, training=False), np.float32)
    except Exception as exc:  # tf2onnx raises many kinds for ops it cannot map
        raise ModelFileError(f"tf2onnx cannot convert {what}: {first_line(exc)}") from None
    finally:
        root.setLevel(level)
    got = run_onnx(onnx_model, probe)
    difference = float(np.abs(got - expected).max())
    if relative:
        difference /= float(np.abs(expected).max()) or 1.0
    if difference > tolerance:
        scale = " of the outputs' largest magnitude" if relative else ""
        raise ModelFileError(
            f"tf2onnx converted {what} with differences up to {difference:.2e}{scale} (more than "
            f"{tolerance:g}); it cannot be exported faithfully"
        )
    return onnx_model, difference


def run_onnx(onnx_model, inputs: np.ndarray) -> np.ndarray:
    """A one-input ModelProto run on the CPU: its first output, float32."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: inputs})[0], np.float32)
