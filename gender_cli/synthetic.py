"""Generated, labelled images with a known answer, for the demo and the tests.

Nothing can be downloaded here and stand-in backbone weights say nothing about faces,
so the demo trains on a task any random convolutional network can separate: the two
classes differ in colour balance (warm vs cool) under random texture, blobs and
brightness. The folders are named after the gender labels only so that the whole
chain runs unchanged; the task is NOT gender.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from gender_cli.contract import LABELS

# Mean RGB of each class; per-image jitter and texture sit on top.
CLASS_COLOURS = {LABELS[0]: (170, 110, 70), LABELS[1]: (70, 110, 170)}


def synthetic_image(rng: np.random.Generator, label: str, size: int = 96) -> np.ndarray:
    base = np.asarray(CLASS_COLOURS[label], np.float32)
    base = base + rng.normal(0, 12, 3)  # per-image colour jitter
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.empty((size, size, 3), np.float32)
    img[:] = base
    # a few soft blobs of random brightness, like a lit face on a background
    for _ in range(rng.integers(2, 5)):
        cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.35)
        blob = np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)))
        img += blob[..., None] * rng.uniform(-50, 50)
    img += rng.normal(0, 18, img.shape)  # texture
    img *= rng.uniform(0.8, 1.2)  # exposure
    return np.clip(img, 0, 255).astype(np.uint8)


def write_known_answer_dataset(root: Path, per_class: int = 60, seed: int = 0, size: int = 96) -> dict:
    """Write ``root/<label>/<label>_NNNN.jpg`` for both labels; return counts per label."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    counts = {}
    for label in LABELS:
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(synthetic_image(rng, label, size)).save(
                folder / f"{label}_{i:04d}.jpg", quality=90
            )
        counts[label] = per_class
    return counts
