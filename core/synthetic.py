"""Generated, labelled images with a known answer, for the demo and the tests.

Nothing can be downloaded here and stand-in backbone weights say nothing about faces,
so the demo trains on a task any random convolutional network can separate: the two
classes differ in colour balance (warm vs cool) under random coarse texture, a
soft blob and exposure changes. The folders are named after the gender labels only so that the whole
chain runs unchanged; the task is NOT gender.

The age task (:func:`write_known_answer_age_dataset`) adds a known age: the class
colour is dimmed and every channel is lifted by ``AGE_LIFT`` grey levels per 100
years, so age is the image's brightness and gender still its colour balance. The
nuisance is weaker there (:data:`AGE_TASK`): a random network keeps fewer shades of
brightness than it needs to tell two colours apart, and an exposure change would be
indistinguishable from an age change, so the age task has none. The files carry
UTKFace names (``<age>_<gender>_0_<n>.jpg``), the layout real data with ages comes in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from gender_cli.contract import AGE_RANGE, LABELS

# Mean RGB of each class; per-image jitter and texture sit on top.
CLASS_COLOURS = {LABELS[0]: (190, 80, 60), LABELS[1]: (60, 80, 190)}


@dataclass(frozen=True)
class Nuisance:
    """What varies between images of one class (and age)."""

    colour: float  # std of the per-channel colour jitter
    texture: float  # std of the coarse 8x8 texture
    blob: float  # largest brightness of the soft blob (+-)
    noise: float  # std of the per-pixel noise
    exposure: float  # largest exposure change (+- share)


GENDER_TASK = Nuisance(colour=8, texture=15, blob=25, noise=4, exposure=0.08)
AGE_TASK = Nuisance(colour=3, texture=3, blob=5, noise=1, exposure=0.0)
AGE_DIM = 0.6  # share of the class colour kept in the age task
AGE_LIFT = 100.0  # grey levels added to every channel from the first age to the last


def age_brightness(age: float) -> float:
    """Grey levels the age task adds to every channel for ``age``."""
    first, last = AGE_RANGE
    return AGE_LIFT * (age - first) / (last - first)


def synthetic_image(
    rng: np.random.Generator, label: str, size: int = 96, age: float | None = None
) -> np.ndarray:
    """One image of class ``label`` (and ``age``, when given): its colour under coarse
    texture, a soft blob, light noise.

    The texture is coarse (8x8 upsampled) and the per-pixel noise light on purpose:
    random convolutions amplify fine noise until it drowns the colour signal.
    """
    nuisance = GENDER_TASK if age is None else AGE_TASK
    base = np.asarray(CLASS_COLOURS[label], np.float32) + rng.normal(0, nuisance.colour, 3)
    if age is not None:
        base = base * AGE_DIM + age_brightness(age)
    coarse = rng.normal(0, nuisance.texture, (8, 8, 3)).astype(np.float32)
    texture = np.stack(
        [np.asarray(Image.fromarray(coarse[..., k]).resize((size, size), Image.BILINEAR)) for k in range(3)],
        axis=-1,
    )
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    cy, cx, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
    blob = np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)))[..., None] * rng.uniform(
        -nuisance.blob, nuisance.blob
    )
    noise = rng.normal(0, nuisance.noise, (size, size, 3))
    img = (base + texture + blob + noise) * rng.uniform(1 - nuisance.exposure, 1 + nuisance.exposure)
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


def write_known_answer_age_dataset(
    root: Path, per_class: int = 60, seed: int = 0, size: int = 96, suffix: str = ".jpg"
) -> dict[str, float]:
    """Write ``root/<age>_<0|1>_0_<n><suffix>`` (UTKFace names, 0 male, 1 female), ages
    drawn uniformly from the whole years of ``contract.AGE_RANGE``; returns name -> age."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ages = {}
    for i in range(per_class * len(LABELS)):
        index = i % len(LABELS)
        age = int(rng.integers(AGE_RANGE[0], AGE_RANGE[1] + 1))
        name = f"{age}_{index}_0_{i:05d}{suffix}"
        image = Image.fromarray(synthetic_image(rng, LABELS[index], size, age=age))
        image.save(root / name, **({"quality": 90} if suffix == ".jpg" else {}))
        ages[name] = age
    return ages
