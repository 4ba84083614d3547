"""int8 export: onnxruntime's static QDQ quantization of the float32 graph.

The settings are one table, ``SETTINGS``, recorded with the figures of every int8 check
(``precision_check.quantization``): per-channel int8 weights, uint8 activations,
MinMax calibration on images preprocessed exactly like ``classify``'s, one batch at a
time. The backbone's Conv/Gemm/MatMul are quantized, and so are its Relu and MaxPool:
with them in the list each Conv gets the range of its ReLU output (no uint8 codes
spent on negatives the ReLU clips), which cut the tiny stand-in's descriptor error
about threefold. The uint8 input, the Cast/Sub/Transpose preprocessing, the head and
the softmax stay float32 (``FLOAT_KEPT``). ``reduce_range`` (7-bit weights) is used
only on x86 CPUs with AVX2 but without VNNI, where 8-bit products can saturate.

The alternatives measured, and why none was chosen, are in docs/decisions.md
("int8 quantization settings").
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from gender_cli import contract

CALIBRATION_BATCH = 4  # the calibrator keeps every activation of a batch in memory

SETTINGS = {
    "format": "QDQ",
    "quantized_ops": ["Conv", "Gemm", "MatMul", "Relu", "MaxPool"],
    "per_channel": True,
    "weights": "int8",
    "activations": "uint8",
    "weight_symmetric": True,  # onnxruntime's default for int8 weights
    "activation_symmetric": False,
    "calibration": "MinMax",
    "calibration_batch": CALIBRATION_BATCH,
}
# What stays float32, whatever the op list says: nodes of these kinds are never
# quantized (preprocessing reads the uint8 input; the head is excluded by name).
FLOAT_KEPT = ["preprocessing (Cast, Sub, Transpose)", "head (Gemm, Relu)", "softmax"]


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


def quantize(fp32_path: Path, out_path: Path, images: np.ndarray, exclude_nodes: list[str], progress=None) -> dict:
    """Write the int8 QDQ twin of ``fp32_path`` to ``out_path``; returns the settings used."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.calibrate import CalibrationDataReader

    QUANT_TYPES = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}

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
            op_types_to_quantize=SETTINGS["quantized_ops"],
            per_channel=SETTINGS["per_channel"],
            reduce_range=reduce_range,
            activation_type=QUANT_TYPES[SETTINGS["activations"]],
            weight_type=QUANT_TYPES[SETTINGS["weights"]],
            nodes_to_exclude=exclude_nodes,
            calibrate_method=getattr(CalibrationMethod, SETTINGS["calibration"]),
            calibration_providers=["CPUExecutionProvider"],
            extra_options={
                "WeightSymmetric": SETTINGS["weight_symmetric"],
                "ActivationSymmetric": SETTINGS["activation_symmetric"],
                # one batch of activations in memory at a time; ranges are merged
                "CalibStridedMinMax": 1,
            },
        )
    finally:
        root.setLevel(level)
    return {
        **SETTINGS,
        "reduce_range": reduce_range,
        "calibration_images": int(len(images)),
        "float_kept": FLOAT_KEPT,
        "float_nodes": sorted(exclude_nodes),
    }
