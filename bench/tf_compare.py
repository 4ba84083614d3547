"""TensorFlow/Keras on the same weights, for ``gender-cli bench --compare-tf``.

Imported only when asked for; TensorFlow is imported inside the function. The Keras
model is the workspace's converted network (``gender-cli convert``) up to the
classifier's descriptor layer, plus the latest trained head (``gender-cli train``)
as Dense layers when there is one (both found by ``same_weights``). It takes float32
0..255 RGB (Keras has no uint8 preprocessing inside), so the cast is part of each
timed call, as in the ONNX graph.
Anything missing makes the comparison ``skipped`` with the reason, not an error.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from gender_cli.errors import GenderCliError
from gender_cli.infer.session import LoadedModel


def bench_tensorflow(
    model: LoadedModel, batch: int, warmup: int, iters: int | None, target_seconds: float, progress=None
) -> dict[str, Any]:
    from gender_cli.bench.bench import _ticker, latency_stats, synthetic_batch, time_callable

    if importlib.util.find_spec("tensorflow") is None:
        return {"skipped": "TensorFlow is not installed"}
    from gender_cli.tf_quiet import native_stderr_silenced

    # TensorFlow's C++ start-up lines (CUDA probes, absl) must not reach the report
    with native_stderr_silenced():
        try:
            keras_model, notes = _keras_classifier(model, progress)
        except GenderCliError as exc:
            return {"skipped": str(exc)}

        import tensorflow as tf  # already imported by keras above

        images = synthetic_batch(batch, model.info.input_size)

        @tf.function(reduce_retracing=True)
        def forward(x):
            return keras_model(tf.cast(x, tf.float32), training=False)

        tensor = tf.constant(images)
        seconds, _ = time_callable(lambda: forward(tensor).numpy(), warmup, iters, target_seconds,
                                   tick=_ticker(progress, "tensorflow", warmup, iters))
        devices = [d.device_type for d in tf.config.list_logical_devices()]
    return {
        "tensorflow": tf.__version__,
        "keras_devices": devices,
        "precision": "fp32",
        "notes": notes,
        **latency_stats(seconds, batch),
    }


def _keras_classifier(model: LoadedModel, progress=None):
    from gender_cli.bench.same_weights import find_same_weights
    from gender_cli.tf_quiet import import_keras

    weights = find_same_weights(model)  # TF-free: fails fast before TensorFlow is imported
    report = progress or (lambda stage, done, total: None)
    report("building the Keras model", 0, 1)
    keras = import_keras()

    from gender_cli.convert.keras_model import keras_descriptor_model

    descriptor = keras_descriptor_model(weights.network, model.info.descriptor, input_size=model.info.image_size)
    if weights.head is None:
        report("building the Keras model", 1, 1)
        return descriptor, weights.notes
    x = descriptor.output
    kernels, biases = weights.head.kernels, weights.head.biases
    for index, (kernel, bias) in enumerate(zip(kernels, biases)):
        last = index == len(kernels) - 1
        dense = keras.layers.Dense(kernel.shape[1], activation="softmax" if last else "relu", name=f"head_{index}")
        x = dense(x)
        dense.set_weights([np.asarray(kernel), np.asarray(bias)])
    report("building the Keras model", 1, 1)
    return keras.Model(descriptor.input, x, name="keras_gender_classifier"), weights.notes
