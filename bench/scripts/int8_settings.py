"""int8 settings on real weights: which quantization keeps a classifier's labels.

    python bench/scripts/int8_settings.py CLASSIFIER.onnx --calibration DIR --faces DIR_OR_CSV [...]

Quantizes the fp32 ``CLASSIFIER`` (a graph ``gender-cli export`` wrote: dlib's face
network with a head trained on real faces) with each variant of onnxruntime's static
quantization in ``VARIANTS`` (the shipped settings, ``export/quantize_int8.py``, and
changes to them: calibration method and size, per-tensor weights, layers kept in
float32), then runs fp32 and every int8 graph on the same held-out faces and reports
the share of faces given the fp32 label, the largest change of p, and the accuracy
of each where the faces carry a gender (UTKFace names). Writes
``bench/results/int8-settings.json`` and ``.md``; the choice is in docs/decisions.md.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from record import RESULTS

# name -> changes to the shipped settings
VARIANTS = {
    "shipped": {},
    "per-tensor weights": {"per_channel": False},
    "entropy calibration": {"calibration": "Entropy"},
    "percentile calibration": {"calibration": "Percentile"},
    "64 calibration faces": {"calibration_images": 64},
    "first conv in fp32": {"keep_float": ["conv1"]},
    "embedding fc in fp32": {"keep_float": ["fc"]},
}


def _gender_of(path: Path) -> int | None:
    """UTKFace's name: age_gender_race_date (0 male, 1 female)."""
    parts = path.name.split("_")
    return int(parts[1]) if len(parts) > 2 and parts[1] in ("0", "1") else None


def _images(paths: list[Path], size) -> np.ndarray:
    from gender_cli.infer.images import load_image

    return np.stack([load_image(p, size) for p in paths])


def _quantize(fp32: Path, out: Path, calibration: np.ndarray, changes: dict) -> float:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from gender_cli.export import quantize_int8 as q
    from gender_cli.export.graph_builder import from_model  # noqa: F401  (the package is importable)

    import onnx

    settings = {**q.SETTINGS, **{k: v for k, v in changes.items() if k in q.SETTINGS}}
    count = changes.get("calibration_images", len(calibration))
    model = onnx.load(str(fp32), load_external_data=False)
    head = [n.name for n in model.graph.node if n.name.startswith("head")]
    keep = [n.name for n in model.graph.node if any(n.name == k or n.name.startswith(k + "_") for k in changes.get("keep_float", []))]
    reader = q._ImageReader(calibration[:count])
    logging.getLogger().setLevel(logging.ERROR)
    started = time.perf_counter()
    quantize_static(
        str(fp32), str(out), reader, quant_format=QuantFormat.QDQ, op_types_to_quantize=settings["quantized_ops"],
        per_channel=settings["per_channel"], reduce_range=q.needs_reduce_range(),
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=head + keep,
        calibrate_method=getattr(CalibrationMethod, settings["calibration"]),
        calibration_providers=["CPUExecutionProvider"],
        extra_options={"WeightSymmetric": True, "ActivationSymmetric": False, "CalibStridedMinMax": 1},
    )
    return time.perf_counter() - started


def _p_female(path: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(["probabilities"], {"images": images[i : i + 64]})[0][:, 1]
                           for i in range(0, len(images), 64)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("classifier", type=Path)
    parser.add_argument("--calibration", type=Path, required=True, help="folder of training faces")
    parser.add_argument("--faces", type=Path, nargs="+", required=True, help="folders of held-out faces")
    parser.add_argument("--count", type=int, default=256, help="calibration faces")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from gender_cli.bench.machine import cpu_model, package_versions
    from gender_cli.infer.session import open_session
    from record import record

    info = open_session(args.classifier, device="cpu").info
    size, threshold = info.image_size, float(info.threshold)
    calibration = _images(sorted(args.calibration.glob("*.jpg"))[: args.count], size)
    faces = [p for folder in args.faces for p in sorted(folder.glob("*.jpg"))]
    images = _images(faces, size)
    truth = np.array([_gender_of(p) if _gender_of(p) is not None else -1 for p in faces])
    reference = _p_female(args.classifier, images)
    fp32_labels = reference >= threshold
    known = truth >= 0
    rows = {}
    with tempfile.TemporaryDirectory(prefix="int8-settings-") as tmp:
        for name, changes in VARIANTS.items():
            out = Path(tmp) / f"{name.replace(' ', '-')}.onnx"
            seconds = _quantize(args.classifier, out, calibration, changes)
            p = _p_female(out, images)
            labels = p >= threshold
            rows[name] = {
                "changes": changes, "quantize_seconds": round(seconds, 1),
                "label_agreement": float((labels == fp32_labels).mean()),
                "max_abs_dp": float(np.abs(p - reference).max()),
                "accuracy": float((labels[known] == truth[known]).mean()) if known.any() else None,
                "fp32_accuracy": float((fp32_labels[known] == truth[known]).mean()) if known.any() else None,
            }
            print(name, rows[name], file=sys.stderr)
    report = {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python bench/scripts/int8_settings.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count()},
        "packages": package_versions(["onnxruntime", "numpy"]),
        "classifier": str(args.classifier), "standin": info.standin, "faces": len(faces),
        "calibration_faces": int(min(args.count, len(calibration))), "threshold": threshold, "variants": rows,
    }
    table = "\n".join(
        f"| {name} | {r['label_agreement']:.4f} | {r['max_abs_dp']:.3f} | "
        + (f"{r['accuracy']:.4f} ({100 * (r['accuracy'] - r['fp32_accuracy']):+.2f} points)" if r["accuracy"] is not None else "n/a")
        + " |" for name, r in rows.items()
    )
    markdown = f"""# int8 settings on real weights

{report['timestamp']}, {report['machine']['cpu']}; classifier {'(stand-in)' if info.standin else '(real weights)'},
{len(faces)} held-out faces, {report['calibration_faces']} calibration faces. Command: `{report['command']}`.

| variant | label agreement with fp32 | max abs dp | accuracy (vs fp32) |
|---|---|---|---|
{table}
"""
    print(markdown)
    record(args.out, "int8-settings", report, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
