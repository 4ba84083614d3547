"""int8 export: onnxruntime's static QDQ quantization of the float32 graph.

Per-channel int8 weights, uint8 activations, calibrated (MinMax) on images that went
through the same preprocessing as ``classify``. The backbone's Conv/Gemm/MatMul are
quantized, and so are its Relu and MaxPool: with them in the list the quantizer gives
each Conv the range of its ReLU output (no uint8 codes wasted on negatives that the
ReLU clips), which on the tiny stand-in cut the descriptor error roughly threefold.
The uint8 input, the Cast/Sub/Transpose preprocessing, the small head and the softmax
stay float32. ``reduce_range`` (7-bit weights) is used only on x86 CPUs
with AVX2 but without VNNI, where 8-bit products can saturate.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from gender_cli import contract

OP_TYPES = ["Conv", "Gemm", "MatMul", "Relu", "MaxPool"]
CALIBRATION_BATCH = 4  # the calibrator keeps every activation of a batch in memory


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def needs_reduce_range(flags: set[str] | None = None) -> bool:
    flags = cpu_flags() if flags is None else flags
    has_vnni = bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})
    return "avx2" in flags and not has_vnni


class _ImageReader:
    """Calibration batches as onnxruntime's CalibrationDataReader protocol wants them."""

    def __init__(self, images: np.ndarray, batch_size: int = CALIBRATION_BATCH, progress=None):
        self.batches = [images[i : i + batch_size] for i in range(0, len(images), batch_size)]
        self.progress = progress
        self.served = 0
        self.set_range(0, len(self.batches))

    def __len__(self) -> int:
        return len(self.batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._iter = iter(self.batches[start_index:end_index])

    def get_next(self):
        batch = next(self._iter, None)
        if batch is None:
            return None
        self.served += 1
        if self.progress is not None:
            self.progress("calibrate", min(self.served, len(self.batches)), len(self.batches))
        return {contract.INPUT_NAME: batch}

    def rewind(self) -> None:
        self.set_range(0, len(self.batches))


def quantize(fp32_path: Path, out_path: Path, images: np.ndarray, exclude_nodes: list[str], progress=None) -> dict:
    """Write the int8 QDQ twin of ``fp32_path`` to ``out_path``; returns the settings used."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import CalibrationDataReader

    reduce_range = needs_reduce_range()
    reader = _ImageReader(images, progress=progress)
    CalibrationDataReader.register(_ImageReader)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer warns about pre-processing it does not need here
    try:
        quantize_static(
            str(fp32_path),
            str(out_path),
            reader,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=OP_TYPES,
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude_nodes,
            calibrate_method=CalibrationMethod.MinMax,
            calibration_providers=["CPUExecutionProvider"],
            # one batch of activations in memory at a time; ranges are merged
            extra_options={"CalibStridedMinMax": 1},
        )
    finally:
        root.setLevel(level)
    return {
        "format": "QDQ",
        "per_channel": True,
        "activations": "uint8",
        "weights": "int8",
        "reduce_range": reduce_range,
        "calibration": "MinMax",
        "calibration_images": int(len(images)),
        "quantized_ops": OP_TYPES,
    }
