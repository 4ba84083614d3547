"""What ``classify --detect`` can leave beside its rows: the aligned crops and the photos
with their boxes and labels drawn.

Both mirror the input path under their folder (``photos/a.jpg`` ->
``DIR/photos/a.jpg.face0.png`` and ``DIR/photos/a.jpg.boxes.jpg``), one to one: two
inputs never share a file. Within a part ``%`` is written ``%25``; a ``..`` part becomes
``%2E%2E``, the root of an absolute path a first part ``%2F``, and a URI's scheme a
first part ``s3%3A`` (``/photos/a.jpg`` -> ``DIR/%2F/photos/...``); ``.`` and empty
parts, which name the same file, are dropped. Crops are PNG (exactly what the model
saw); drawings are JPEG, made from a copy of the photo at most ``DRAW_SIDE`` pixels
on its long side. Each is written whole (a temporary file renamed) and never through
a link: a link planted under the folder stops the run with an error.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from gender_cli.atomic import write_inside
from gender_cli.infer.rows import Row
from gender_cli.infer.sources import is_uri

DRAW_SIDE = 1024
DRAW_QUALITY = 90
LABEL_COLOURS = ((40, 120, 255), (255, 60, 140))  # by label index (model output order)
VALUE_COLOUR = (40, 170, 90)  # a graph without the gender head
NO_FACE_COLOUR = (255, 200, 0)
_ROOT = "%2F"  # the first part of an absolute input path


def mirrored_parts(path: str | os.PathLike, suffix: str) -> list[str]:
    """The parts of the file name under a crops or drawings folder that stands for the
    input ``path`` (see the module docstring), ``suffix`` appended to its name: two
    different inputs never share one."""
    name = os.fspath(path)
    head: list[str] = []
    if is_uri(name):
        scheme, name = name.split("://", 1)
        head = [_escaped(scheme) + "%3A"]
        name = "/" + name
    pure = PurePosixPath(name)
    parts = head + [_ROOT] * pure.is_absolute() + [_escaped(part) for part in pure.parts if part != "/"]
    parts[-1] += suffix
    return parts


def _escaped(part: str) -> str:
    return "%2E%2E" if part == ".." else part.replace("%", "%25")


def mirrored(folder: str | os.PathLike, path: str | os.PathLike, suffix: str) -> Path:
    """Where the file for input ``path`` with ``suffix`` goes under ``folder``."""
    return Path(folder).joinpath(*mirrored_parts(path, suffix))


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
        _save(Image.fromarray(crop), self.crops, mirrored_parts(path, f".face{number}.png"), "PNG")

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
        return _save(image, self.draw_dir, mirrored_parts(file.path, ".boxes.jpg"), "JPEG", quality=DRAW_QUALITY)


def _save(image: Image.Image, folder: Path, parts: list[str], fmt: str, **options) -> Path:
    """Encode ``image`` and write it under ``folder`` (created if need be) without
    following a link planted below it (``atomic.write_inside``)."""
    encoded = io.BytesIO()
    image.save(encoded, format=fmt, **options)
    folder.mkdir(parents=True, exist_ok=True)
    return write_inside(folder, parts, encoded.getvalue())


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
