"""Shared pieces of the format tests: stand-ins of each format, our ONNX graph's outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gender_cli import contract


def images_uint8(n=2, size=(224, 224), seed=3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *size, 3), dtype=np.uint8)


def onnx_run(network, images, folder: Path, descriptor="fc8", head_dir=None) -> dict[str, np.ndarray]:
    """Export ``network`` (fp32) into ``folder`` and run it on uint8 RGB ``images``."""
    import onnxruntime as ort

    from gender_cli.export.export import export

    path = folder / f"{descriptor}-{'classifier' if head_dir else 'backbone'}.onnx"
    result = export(network, path, descriptor=descriptor, head=head_dir)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {contract.INPUT_NAME: images})))
    outputs["metadata"] = result.metadata
    return outputs


def opencv_forward(caffemodel, images_rgb: np.ndarray, mean_bgr, output: str) -> np.ndarray:
    """OpenCV's Caffe importer (the deploy prototxt beside the caffemodel) on BGR minus
    the mean, NCHW: how Caffe nets are fed."""
    import pytest

    from gender_cli.convert.caffe_writer import prototxt_path

    cv2 = pytest.importorskip("cv2")
    net = cv2.dnn.readNetFromCaffe(str(prototxt_path(caffemodel)), str(caffemodel))
    blob = images_rgb[..., ::-1].astype(np.float32) - np.asarray(mean_bgr, np.float32)
    net.setInput(np.ascontiguousarray(blob.transpose(0, 3, 1, 2)))
    return net.forward(output)


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| over max |expected|: float32 sums against float64."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.abs(actual - expected).max() / np.abs(expected).max())
