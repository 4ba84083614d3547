"""Images for int8 calibration and precision checks, preprocessed exactly like classify's.

A folder is read with ``infer.files.list_image_files`` and ``infer.images.load_image``
(stretch resize to the network's input size, uint8 RGB); unreadable files are skipped
and counted. Without a folder, the checks use seeded synthetic images: smooth random
colour fields with a little noise, so activations look more like photos than white
noise does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gender_cli.errors import GenderCliError

DEFAULT_LIMIT = 256  # images read from a calibration folder (an evenly spread subset)
SYNTHETIC_COUNT = 256
SYNTHETIC_SEED = 0


@dataclass
class ImageSet:
    images: np.ndarray  # (N, H, W, 3) uint8 RGB
    source: str  # human-readable: where the images came from
    skipped: int = 0  # unreadable files in the folder


def read_folder(folder: Path, size: tuple[int, int], limit: int = DEFAULT_LIMIT) -> ImageSet:
    """Up to ``limit`` images of ``folder`` (recursively), resized to ``size`` = (H, W)."""
    from gender_cli.infer.files import list_image_files
    from gender_cli.infer.images import DEFAULT_RESIZE, ImageError, load_image

    folder = Path(folder)
    if not folder.is_dir():
        raise GenderCliError(f"calibration folder {folder} does not exist or is not a folder")
    paths = list_image_files([folder], recursive=True)
    if len(paths) > limit:
        picks = np.linspace(0, len(paths) - 1, limit).round().astype(int)
        paths = [paths[i] for i in picks]
    images, skipped = [], 0
    for path in paths:
        try:
            images.append(load_image(path, size=size, resize=DEFAULT_RESIZE))
        except ImageError:
            skipped += 1
    if not images:
        raise GenderCliError(
            f"calibration folder {folder} holds no readable images "
            f"({len(paths)} files tried); give a folder of face images"
        )
    return ImageSet(np.stack(images), f"calibration folder {folder} ({len(images)} images)", skipped)


def synthetic_images(size: tuple[int, int], count: int = SYNTHETIC_COUNT, seed: int = SYNTHETIC_SEED) -> ImageSet:
    """``count`` seeded smooth colour fields of ``size`` = (H, W)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    h, w = size
    images = np.empty((count, h, w, 3), np.uint8)
    for i in range(count):
        coarse = rng.integers(0, 256, size=(rng.integers(2, 9), rng.integers(2, 9), 3), dtype=np.uint8)
        smooth = np.asarray(Image.fromarray(coarse).resize((w, h), Image.BILINEAR), np.float32)
        noisy = smooth + rng.normal(0.0, 8.0, size=smooth.shape)
        images[i] = np.clip(noisy, 0, 255).astype(np.uint8)
    return ImageSet(images, f"synthetic images ({count}, seed {seed})")


def batches(images: np.ndarray, batch_size: int):
    for start in range(0, len(images), batch_size):
        yield images[start : start + batch_size]
