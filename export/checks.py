"""Agreement of a reduced-precision graph with its float32 twin, computed, never assumed.

Both graphs run in onnxruntime (CPU) on the same images. A classifier is compared on
labels (``probabilities[:, 1] >= threshold``) and ``max |delta p|``; a backbone on the
cosine similarity of descriptors. On x86 CPUs onnxruntime has no float16 kernels and
runs fp16 graphs through float32 casts, so an fp16 figure measured here reflects weight
and activation rounding, not float16 accumulation; the peak activation of the float32
graph is reported next to float16's maximum (65504) to show the overflow headroom.

What an agreement figure is worth depends on the network, so int8 checks carry a
baseline measured the same way: the float32 graph itself on the same images with
+-1 of seeded uint8 noise (``input_noise_baseline``), a change no photo pipeline
avoids. When int8 disagrees with fp32 about as much as fp32 disagrees with itself
under that noise (random stand-in weights), the network, not the quantization, limits
the figure. The share of the commoner fp32 label is reported too: with a head that
calls 85 % of the images one class, 85 % agreement is what a constant would get.

A graph with the age head is also compared on its ``age`` output: the mean and the
largest absolute difference in years (``age_mae_years``, ``age_max_abs_error_years``),
in the input-noise baseline as well. They are reported, not held to a goal: what a
year of disagreement means depends on how well the network estimates age at all,
which the baseline puts in scale. The goal stays on the gender labels (or, for a
graph without a gender head, on the descriptor).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from gender_cli import contract
from gender_cli.export.calibration import batches

GOALS = {"fp16": 0.995, "int8": 0.99}  # label agreement (classifier) / min cosine (backbone)
BATCH = 16
INPUT_NOISE_SEED = 0


def run_model(
    path: Path,
    images: np.ndarray,
    keep: list[str],
    batch_size: int = BATCH,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[dict[str, np.ndarray], float]:
    """Run ``path`` on CPU over ``images`` in batches.

    Returns the ``keep`` outputs concatenated, and the peak absolute value of all other
    outputs (exposed activations), reduced batch by batch so they never pile up.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    kept: dict[str, list[np.ndarray]] = {n: [] for n in keep}
    peak = 0.0
    for batch in batches(images, batch_size):
        for name, value in zip(names, session.run(names, {contract.INPUT_NAME: batch})):
            if name in kept:
                kept[name].append(value)
            elif value.size:
                peak = max(peak, float(np.abs(value).max()))
        if progress is not None:
            progress("check", min(len(images), sum(len(v) for v in kept[keep[0]])), len(images))
    del session
    return {n: np.concatenate(v) for n, v in kept.items()}, peak


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity; two all-zero rows (dead ReLUs) count as identical."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    identical = np.all(a == b, axis=1)
    safe = np.where(norms > 0, norms, 1.0)
    return np.where(norms > 0, (a * b).sum(axis=1) / safe, identical.astype(np.float64))


def noise_to_spread(reference: np.ndarray, candidate: np.ndarray) -> float:
    """RMS descriptor error over the RMS spread of the fp32 descriptors between images.

    A head separates images by how their descriptors differ, so what matters is the
    error relative to that spread, not to the descriptors' size: stand-in networks map
    all images to nearly the same descriptor, and there even a tiny error is large.
    """
    reference = reference.astype(np.float64)
    error = np.sqrt(np.mean((candidate - reference) ** 2))
    spread = np.sqrt(np.mean((reference - reference.mean(axis=0)) ** 2))
    return float(error / spread) if spread > 0 else float("inf") if error > 0 else 0.0


def compare(
    reference: dict[str, np.ndarray],
    candidate: dict[str, np.ndarray],
    precision: str,
    threshold: float,
    source: str,
) -> dict:
    """Figures comparing ``candidate`` (reduced precision) with the fp32 ``reference``."""
    ref_d = reference[contract.DESCRIPTOR]
    got_d = candidate[contract.DESCRIPTOR]
    cos = cosine(ref_d, got_d)
    scale = float(np.abs(ref_d).max()) or 1.0
    figures = {
        "precision": precision,
        "reference": "fp32",
        "images": int(len(ref_d)),
        "image_source": source,
        "provider": "CPUExecutionProvider",
        "nonfinite_outputs": int(sum((~np.isfinite(v)).sum() for v in candidate.values())),
        "descriptor_cosine_min": float(cos.min()),
        "descriptor_cosine_mean": float(cos.mean()),
        "descriptor_max_abs_error_relative": float(np.abs(ref_d - got_d).max() / scale),
        "descriptor_noise_to_spread": noise_to_spread(ref_d, got_d),
        "goal": GOALS.get(precision),
    }
    if contract.PROBABILITIES in reference:
        p_ref = reference[contract.PROBABILITIES]
        p_got = candidate[contract.PROBABILITIES]
        labels_ref = p_ref[:, 1] >= threshold
        labels_got = p_got[:, 1] >= threshold
        figures["threshold"] = float(threshold)
        figures["reference_majority_share"] = float(max(labels_ref.mean(), 1 - labels_ref.mean()))
        figures["label_agreement"] = float((labels_ref == labels_got).mean())
        figures["labels_differing"] = int((labels_ref != labels_got).sum())
        figures["max_abs_dprob"] = float(np.abs(p_ref - p_got).max())
        figures["measure"] = "label_agreement"
    else:
        figures["measure"] = "descriptor_cosine_min"
    if contract.AGE in reference:
        age_error = np.abs(reference[contract.AGE].astype(np.float64) - candidate[contract.AGE])
        figures["age_mae_years"] = float(age_error.mean())
        figures["age_max_abs_error_years"] = float(age_error.max())
    goal = figures["goal"]  # None for a plain fp32 comparison (the input-noise baseline)
    figures["meets_goal"] = goal is not None and bool(figures[figures["measure"]] >= goal)
    if figures["nonfinite_outputs"]:
        figures["meets_goal"] = False
    return figures


def with_input_noise(images: np.ndarray, seed: int = INPUT_NOISE_SEED) -> np.ndarray:
    """``images`` with seeded uniform integer noise in -1..+1 on every uint8 value."""
    noise = np.random.default_rng(seed).integers(-1, 2, images.shape, dtype=np.int16)
    return np.clip(images.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def input_noise_baseline(
    fp32_path: Path,
    images: np.ndarray,
    reference: dict[str, np.ndarray],
    threshold: float,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """How far the float32 graph itself moves when its input gets +-1 of uint8 noise."""
    noisy, _ = run_model(fp32_path, with_input_noise(images), list(reference), progress=progress)
    figures = compare(reference, noisy, "fp32", threshold, "")
    keep = ("label_agreement", "labels_differing", "max_abs_dprob", "descriptor_cosine_min",
            "descriptor_noise_to_spread", "age_mae_years", "age_max_abs_error_years")
    return {"input": f"check images + uniform integer noise -1..+1 (seed {INPUT_NOISE_SEED})",
            **{k: figures[k] for k in keep if k in figures}}
