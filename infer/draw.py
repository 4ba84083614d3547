"""What ``classify --detect`` can leave beside its rows: the aligned crops and the photos
with their boxes and labels drawn.

Both mirror the input path under their folder (``photos/a.jpg`` ->
``DIR/photos/a.jpg.face0.png`` and ``DIR/photos/a.jpg.boxes.jpg``; an absolute path
loses its root, ``..`` becomes ``__``), so files of the same name in different folders
never collide. Crops are PNG (exactly what the model saw); drawings are JPEG, made
from a copy of the photo at most ``DRAW_SIDE`` pixels on its long side.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gender_cli.infer.rows import Row

DRAW_SIDE = 1024
DRAW_QUALITY = 90
LABEL_COLOURS = ((40, 120, 255), (255, 60, 140))  # by label index (model output order)
VALUE_COLOUR = (40, 170, 90)  # a graph without the gender head
NO_FACE_COLOUR = (255, 200, 0)


def mirrored(folder: Path, path: Path, suffix: str) -> Path:
    """``folder`` / ``path`` (rootless, ``..`` made harmless) with ``suffix`` appended to its name."""
    parts = [("__" if part == ".." else part) for part in Path(path).parts if part not in (Path(path).anchor, ".")]
    target = Path(folder).joinpath(*parts)
    return target.with_name(target.name + suffix)


class FaceFiles:
    """Writes crops (from any thread) and drawings for the files of one run."""

    def __init__(self, crops: str | os.PathLike | None, draw: str | os.PathLike | None, labels: Sequence[str]):
        self.crops = Path(crops) if crops else None
        self.draw_dir = Path(draw) if draw else None
        self.labels = list(labels)

    @property
    def preview_side(self) -> int | None:
        return DRAW_SIDE if self.draw_dir else None

    def save_crop(self, path: Path, number: int, crop: np.ndarray) -> None:
        target = mirrored(self.crops, path, f".face{number}.png")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(crop).save(target)

    def draw(self, file, rows: Sequence[Row]) -> Path | None:
        """Draw ``file``'s boxes, each with its face's row (label and its probability,
        value columns such as age); None when there is nothing to draw on (an
        unreadable file)."""
        if self.draw_dir is None or file.preview is None:
            return None
        image = Image.fromarray(file.preview)
        pen = ImageDraw.Draw(image)
        width = max(2, round(max(image.size) / 300))
        font = ImageFont.load_default(size=max(12, round(max(image.size) / 40)))
        for number, (face, row) in enumerate(zip(file.faces, rows)):
            x, y, w, h = (value / file.preview_scale for value in face.box)
            colour = LABEL_COLOURS[self.labels.index(row.label)] if row.label else VALUE_COLOUR
            pen.rectangle((x, y, x + w, y + h), outline=colour, width=width)
            _caption(pen, (x, y), " ".join([str(number), *_results(row, self.labels)]), colour, font)
        if not file.faces:
            _caption(pen, (0, 0), "no face", NO_FACE_COLOUR, font)
        target = mirrored(self.draw_dir, file.path, ".boxes.jpg")
        target.parent.mkdir(parents=True, exist_ok=True)
        image.save(target, quality=DRAW_QUALITY)
        return target


def _results(row: Row, labels: Sequence[str]) -> list[str]:
    """``female 0.93``, ``age 31``: the row's label with its probability, and its values."""
    shown = [f"{row.label} {row.probabilities[list(labels).index(row.label)]:.2f}"] if row.label else []
    return shown + [f"{name} {value:.0f}" for name, value in (row.values or {}).items()]


def _caption(pen: ImageDraw.ImageDraw, corner: tuple[float, float], text: str, colour, font) -> None:
    """``text`` on a filled band just above ``corner`` (inside the picture when there is no room)."""
    left, top, right, bottom = pen.textbbox((0, 0), text, font=font)
    x, y = corner
    y = y - (bottom - top) - 4 if y - (bottom - top) - 4 >= 0 else y
    pen.rectangle((x, y, x + right - left + 4, y + bottom - top + 4), fill=colour)
    pen.text((x + 2 - left, y + 2 - top), text, fill=(255, 255, 255), font=font)
