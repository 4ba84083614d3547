"""Photos with real faces at known places, for the face detection tests.

The faces are crops of the shared UTKFace sample that are frontal enough for every
detector here (picked once with all of them at 0 and +-15 degrees at several places;
the sample as a whole is checked in test_detect). Photos are small (400 x 300) to keep
the tests fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from gender_cli.photos import Placement, photo_with_faces

FRONTAL = (
    "20_0_4_20170103234731301.jpg.chip.jpg",
    "20_1_0_20170103175636647.jpg.chip.jpg",
    "20_1_0_20170109212842300.jpg.chip.jpg",
    "20_1_2_20170103225030704.jpg.chip.jpg",
    "20_1_2_20170112003857668.jpg.chip.jpg",
    "20_1_4_20170103201807368.jpg.chip.jpg",
    "21_0_0_20170104230014969.jpg.chip.jpg",
    "21_0_4_20161223214805057.jpg.chip.jpg",
    "21_0_4_20161223214827816.jpg.chip.jpg",
    "21_1_0_20170109213908912.jpg.chip.jpg",
    "21_1_3_20170104222105822.jpg.chip.jpg",
    "22_0_0_20170104225920241.jpg.chip.jpg",
)
SMALL_PHOTO = (400, 300)
SIDES = (120, 150)  # pasted square side: the face inside is 80-120 px, found by every detector


def frontal_faces(sample: Path, count: int, start: int = 0) -> list[Image.Image]:
    names = [FRONTAL[(start + i) % len(FRONTAL)] for i in range(count)]
    return [Image.open(sample / name).convert("RGB") for name in names]


def write_photo(
    path: Path,
    faces: list[Image.Image],
    seed: int = 0,
    angles: list[float] | None = None,
    size: tuple[int, int] = SMALL_PHOTO,
    exif_orientation: int | None = None,
) -> list[Placement]:
    """Save a JPEG with ``faces`` pasted; placements are in the upright photo's pixels.

    With ``exif_orientation`` the pixels are stored turned and the EXIF tag says how to
    turn them back (6: stored turned 90 degrees counter-clockwise, shown after a
    clockwise turn; 8 the other way; 3 half a turn)."""
    photo, placements = photo_with_faces(faces, np.random.default_rng(seed), size=size, sides=SIDES, angles=angles)
    path.parent.mkdir(parents=True, exist_ok=True)
    if exif_orientation is None:
        photo.save(path, quality=92)
        return placements
    stored = photo.transpose(STORE_FOR_ORIENTATION[exif_orientation])
    exif = Image.Exif()
    exif[0x0112] = exif_orientation
    stored.save(path, quality=92, exif=exif.tobytes())
    return placements


# how to store an upright photo so that the EXIF orientation turns it upright again
STORE_FOR_ORIENTATION = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,  # counter-clockwise; orientation 6 shows it turned clockwise
    8: Image.Transpose.ROTATE_270,
}


def centre(box) -> tuple[float, float]:
    x, y, w, h = (float(v) for v in box)
    return x + w / 2, y + h / 2


def plausible_area(box, placement: Placement) -> bool:
    """The box covers between a fifth and one and a half times the pasted square: a face
    crop's face fills most of it, a detector's box includes a little context or not."""
    return 0.2 <= float(box[2]) * float(box[3]) / placement.side**2 <= 1.5
