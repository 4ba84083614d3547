"""Generated photos with a known answer: face crops pasted at known places on a background.

Face detection is tested and measured on pictures whose faces are where we put them:
real face crops (the shared UTKFace sample, or any crop) scaled, optionally rotated
in-plane, and pasted onto a generated background (smooth colour gradients with soft
coarse texture, no faces). :class:`Placement` records where each face went, in the
photo's pixels, so a test can check that a detected box lies inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

PHOTO_SIZE = (640, 480)  # (width, height), the benchmark's photo size


@dataclass(frozen=True)
class Placement:
    """Where a face crop was pasted: the square ``(x, y, side, side)`` it covered before
    rotation, rotated by ``angle`` degrees (counter-clockwise) about its centre."""

    x: int
    y: int
    side: int
    angle: float = 0.0

    def contains(self, point: tuple[float, float]) -> bool:
        px, py = point
        return self.x <= px <= self.x + self.side and self.y <= py <= self.y + self.side


def background(rng: np.random.Generator, size: tuple[int, int] = PHOTO_SIZE) -> Image.Image:
    """A face-free backdrop: a two-colour gradient under soft coarse texture and light noise."""
    width, height = size
    top, bottom = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3)
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    pixels = top * (1 - ramp) + bottom * ramp + np.zeros((height, width, 3), np.float32)
    coarse = rng.normal(0, 18, (6, 8, 3)).astype(np.float32)
    texture = np.stack(
        [np.asarray(Image.fromarray(coarse[..., k]).resize((width, height), Image.BICUBIC)) for k in range(3)],
        axis=-1,
    )
    pixels = pixels + texture + rng.normal(0, 3, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def paste_face(photo: Image.Image, face: Image.Image, x: int, y: int, side: int, angle: float = 0.0) -> Placement:
    """Paste ``face`` scaled to ``side`` x ``side`` with its top-left corner at (x, y),
    rotated by ``angle`` degrees counter-clockwise about its centre (corners that the
    rotation uncovers stay background)."""
    square = face.convert("RGB").resize((side, side), Image.BICUBIC)
    mask = Image.new("L", (side, side), 255)
    if angle:
        square = square.rotate(angle, Image.BICUBIC, expand=True)
        mask = mask.rotate(angle, Image.BICUBIC, expand=True)
    offset = ((square.width - side) // 2, (square.height - side) // 2)
    photo.paste(square, (x - offset[0], y - offset[1]), mask)
    return Placement(x, y, side, angle)


def photo_with_faces(
    faces: list[Image.Image],
    rng: np.random.Generator,
    size: tuple[int, int] = PHOTO_SIZE,
    sides: tuple[int, int] = (110, 170),
    angles: list[float] | None = None,
) -> tuple[Image.Image, list[Placement]]:
    """A photo holding each of ``faces`` once, side by side without overlap, at random
    heights and sizes in ``sides``; placements come back left to right."""
    photo = background(rng, size)
    width, height = size
    count = len(faces)
    placements = []
    if count == 0:
        return photo, placements
    lane = width // count  # one vertical lane per face keeps them apart
    for index, face in enumerate(faces):
        side = int(rng.integers(sides[0], min(sides[1], lane - 8, height - 8) + 1))
        x = index * lane + int(rng.integers(4, lane - side - 3))
        y = int(rng.integers(4, height - side - 3))
        angle = angles[index] if angles else 0.0
        placements.append(paste_face(photo, face, x, y, side, angle))
    return photo, placements


def write_photos(
    faces: list[Path],
    folder: Path,
    per_photo: int = 1,
    seed: int = 0,
    size: tuple[int, int] = PHOTO_SIZE,
    quality: int = 90,
) -> dict[str, list[Placement]]:
    """Paste ``faces`` (files), ``per_photo`` at a time, into JPEG photos under ``folder``;
    returns {file name: placements}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = {}
    for start in range(0, len(faces), per_photo):
        group = faces[start : start + per_photo]
        crops = []
        for path in group:
            with Image.open(path) as img:
                crops.append(img.convert("RGB"))
        photo, placements = photo_with_faces(crops, rng, size)
        name = f"photo_{start // per_photo:05d}.jpg"
        photo.save(folder / name, quality=quality)
        written[name] = placements
    return written
