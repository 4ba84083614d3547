"""Generated, labelled images with a known answer, for the demo and the tests.

Nothing can be downloaded here and stand-in backbone weights say nothing about faces,
so the demo trains on a task any random convolutional network can separate: the two
classes differ in colour balance (warm vs cool) under random coarse texture, a
soft blob and exposure changes. The folders are named after the gender labels only so that the whole
chain runs unchanged; the task is NOT gender.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from gender_cli.contract import LABELS

# Mean RGB of each class; per-image jitter and texture sit on top.
CLASS_COLOURS = {LABELS[0]: (190, 80, 60), LABELS[1]: (60, 80, 190)}


def synthetic_image(rng: np.random.Generator, label: str, size: int = 96) -> np.ndarray:
    """One image of class ``label``: its colour under coarse texture, a soft blob, light noise.

    The texture is coarse (8x8 upsampled) and the per-pixel noise light on purpose:
    random convolutions amplify fine noise until it drowns the colour signal.
    """
    base = np.asarray(CLASS_COLOURS[label], np.float32) + rng.normal(0, 8, 3)
    coarse = rng.normal(0, 15, (8, 8, 3)).astype(np.float32)
    texture = np.stack(
        [np.asarray(Image.fromarray(coarse[..., k]).resize((size, size), Image.BILINEAR)) for k in range(3)],
        axis=-1,
    )
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    cy, cx, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
    blob = np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)))[..., None] * rng.uniform(-25, 25)
    img = (base + texture + blob + rng.normal(0, 4, (size, size, 3))) * rng.uniform(0.92, 1.08)
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
