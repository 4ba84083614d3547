"""Decode one image file into the uint8 RGB array the ONNX graph takes.

``load_image`` applies every rule below; ``load_picture`` stops before the resize and
returns the upright RGB picture (what face detection searches), with the factor that
maps its pixels back to the original's.

Both take a file name (what ``classify`` reads) or, from the Python API, the file's
raw bytes (decoded exactly as the file would be), a PIL image (taken as already
opened: rules 2 and 4-7, no JPEG draft) or a uint8 H x W x 3 RGB array (rule 7 only).

Every failure becomes an :class:`ImageError` whose ``category`` says what went wrong
(see ``CATEGORIES``), so a caller can write one row per file and carry on.

The rules, in the order they are applied:

1. The file is read into memory once (no file handle stays open; an empty file is
   told apart from a damaged one). OSError on reading -> ``unreadable``. ``read``
   replaces the local read (the Ray engine reads object-store files through pyarrow).
2. Size check before decoding: more than ``MAX_PIXELS`` pixels -> ``too_large``
   (a small file can declare a huge canvas: a decompression bomb). Pillow's own
   ``Image.MAX_IMAGE_PIXELS`` is set to the same limit and its
   ``DecompressionBombWarning`` is turned into an error, so both paths agree.
3. JPEG draft mode: libjpeg decodes at 1/2, 1/4 or 1/8 scale when the result is still
   at least as large as the target (draft only reduces by powers of two), which makes
   big photos several times cheaper.
4. Multi-frame files (GIF, APNG, TIFF pages) use their first frame.
5. EXIF orientation is applied (``ImageOps.exif_transpose``); unreadable EXIF is
   ignored rather than failing an otherwise good image.
6. Pixel mode to RGB:
   - alpha (LA, PA, RGBA, RGBa, La, or a ``transparency`` entry): composited over
     white;
   - 16-bit integer (I;16, I;16B, I;16L, I;16N): the type's range mapped onto 0..255
     (``value >> 8``), never clipped;
   - 32-bit integer (I): values that fit 0..65535 are 16-bit data in Pillow's 32-bit
     container and are shifted ``>> 8``; anything else maps the full int32 range
     (``(value + 2**31) >> 24``);
   - float (F): the float-image convention 0.0..1.0 -> 0..255, NaN -> 0, outside
     values clipped;
   - everything else (1, L, P, CMYK, YCbCr, LAB, HSV, RGB): Pillow's ``convert("RGB")``.
7. Resize to ``size`` = (height, width) with bilinear resampling (antialiased when
   shrinking): ``"stretch"`` resizes the whole image ignoring its aspect ratio (what
   the face-crop datasets and the training pipeline do); ``"center-crop"`` scales so
   the image covers the target (the short side becomes 224 for a square target) and
   cuts the centre. Where the target size equals the picture's, nothing is resampled.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from gender_cli.errors import first_line

MAX_PIXELS = 100_000_000
"""Largest accepted canvas (100 Mpx: above any camera photo; 300 MB once decoded)."""

CATEGORIES = ("empty", "not_image", "truncated", "corrupt", "too_large", "unreadable")
from gender_cli.contract import DEFAULT_RESIZE, RESIZE_MODES  # noqa: E402 - the contract's (metadata ``resize``)
RESAMPLE = Image.Resampling.BILINEAR
WHITE = (255, 255, 255)
ORIENTATION_TAG = 0x0112

# Process-wide, set once at import (changing them per call would race between threads).
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)

_ALPHA_MODES = {"LA", "La", "PA", "RGBA", "RGBa"}
_UINT16_MODES = {"I;16", "I;16B", "I;16L", "I;16N"}

ImageInput = Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, Image.Image]
"""What ``load_image`` and ``load_picture`` take: a file name, its bytes, a PIL image, or an array."""
Read = Callable[[Union[str, os.PathLike]], bytes]
"""Reads a named file's bytes (the Ray engine and URIs read through pyarrow)."""


def input_name(item: ImageInput, index: int) -> str:
    """How a row names an input: a file as spelled, anything else by its position."""
    return os.fspath(item) if isinstance(item, (str, os.PathLike)) else str(index)


class ImageError(Exception):
    """A file that could not be turned into an image; ``category`` is one of CATEGORIES."""

    def __init__(self, category: str, message: str):
        if category not in CATEGORIES:
            raise ValueError(f"unknown image error category {category!r}")
        super().__init__(message)
        self.category = category
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        return (type(self), (self.category, self.message))


def load_image(
    path: ImageInput,
    size: tuple[int, int] = (224, 224),
    resize: str = DEFAULT_RESIZE,
    read: Read | None = None,
) -> np.ndarray:
    """Decode ``path`` (a file name, or any :data:`ImageInput`) into a uint8 array of
    shape (size[0], size[1], 3), RGB; raises :class:`ImageError`."""
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, not {resize!r}")
    height, width = size
    return _decode(
        path,
        lambda image_wh: _draft_request(image_wh, (width, height), resize),
        lambda rgb, scale: np.asarray(resize_image(rgb, (width, height), resize), dtype=np.uint8),
        read,
    )


@dataclass(frozen=True)
class Picture:
    """A decoded picture, upright (EXIF orientation applied) and RGB.

    ``scale`` is (x, y): pixels of the stored picture per pixel of ``pixels``; (1, 1)
    unless JPEG draft mode decoded it smaller. ``pixels`` coordinates times ``scale``
    are coordinates in the upright original.
    """

    pixels: np.ndarray  # (H, W, 3) uint8
    scale: tuple[float, float]

    @property
    def original_size(self) -> tuple[int, int]:
        """(width, height) of the upright original."""
        height, width = self.pixels.shape[:2]
        return round(width * self.scale[0]), round(height * self.scale[1])


def load_picture(
    path: ImageInput,
    long_side: int | None = None,
    read: Read | None = None,
) -> Picture:
    """Decode ``path`` upright and RGB at full size, or (``long_side``) JPEG-draft-reduced
    as long as the long side stays at least ``long_side`` pixels."""
    draft = None
    if long_side is not None:
        def draft(image_wh: tuple[int, int]) -> tuple[int, int]:
            scale = min(1.0, long_side / max(image_wh))
            return math.ceil(image_wh[0] * scale), math.ceil(image_wh[1] * scale)
    return _decode(path, draft, lambda rgb, scale: Picture(np.asarray(rgb, dtype=np.uint8), scale), read)


def _decode(path, draft, finish, read=None):
    """Read, check, decode, orient and convert ``path`` to RGB, then ``finish(rgb, scale)``.

    ``draft(image_wh)`` gives the smallest (w, h) a JPEG may be decoded at (None: full
    size); ``scale`` is (x, y) stored pixels per decoded pixel, in the upright frame.
    ``read(path)`` gives the file's bytes (default: read it from the local disk). Every
    failure becomes an ImageError.
    """
    if isinstance(path, np.ndarray):
        return finish(_array_image(path), (1.0, 1.0))
    if isinstance(path, Image.Image):
        return _decode_image(path, None, finish)
    if isinstance(path, (bytes, bytearray, memoryview)):
        data = bytes(path)
    elif not isinstance(path, (str, os.PathLike)):
        raise ImageError("not_image", f"cannot read a {type(path).__name__}: give a file name, its bytes, "
                                      "a PIL image or a uint8 H x W x 3 RGB array")
    else:
        try:
            data = read(path) if read is not None else Path(path).read_bytes()
        except OSError as exc:
            raise ImageError("unreadable", f"cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise ImageError("empty", "file is empty (0 bytes)")
    with _image_errors(), Image.open(io.BytesIO(data)) as img:
        return _decode_image(img, draft, finish)


def _decode_image(img: Image.Image, draft, finish):
    """Rules 2-6 on an opened image, then ``finish(rgb, scale)``."""
    with _image_errors():
        _check_pixels(img)
        stored = img.size
        if img.format == "JPEG" and draft is not None:
            img.draft(None, draft(img.size))
        img.load()
        decoded = img.size
        scale = (stored[0] / decoded[0], stored[1] / decoded[1])
        img = _apply_orientation(img)
        if img.size != decoded:  # a quarter turn swapped the axes
            scale = scale[::-1]
        return finish(_to_rgb(img), scale)


@contextmanager
def _image_errors():
    """Pillow's failures, each as an ImageError of its category."""
    try:
        yield
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError("not_image", "not an image file Pillow can identify") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError("too_large", first_line(exc, "")) from None
    except (OSError, EOFError) as exc:
        message = first_line(exc, "")
        if isinstance(exc, EOFError) or "truncated" in message.lower():
            raise ImageError("truncated", message or "unexpected end of file") from None
        raise ImageError("corrupt", message or type(exc).__name__) from None
    except (SyntaxError, ValueError, TypeError, IndexError, KeyError, MemoryError) as exc:
        # Pillow's plugins signal malformed data with a variety of exception types.
        raise ImageError("corrupt", first_line(exc)) from None


def _array_image(array: np.ndarray) -> Image.Image:
    """A uint8 H x W x 3 RGB array as a PIL image (no copy of the pixels' meaning: no
    orientation, no colour conversion)."""
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ImageError("not_image", f"expected a uint8 H x W x 3 RGB array, got {array.dtype} {array.shape}")
    height, width = array.shape[:2]
    if height < 1 or width < 1:
        raise ImageError("corrupt", f"the array holds a {width}x{height} picture")
    if height * width > MAX_PIXELS:
        raise ImageError("too_large", f"{width}x{height} pixels exceeds the {MAX_PIXELS:,}-pixel limit")
    return Image.fromarray(np.ascontiguousarray(array))


def _check_pixels(img: Image.Image) -> None:
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageError(
            "too_large", f"{w}x{h} pixels exceeds the {MAX_PIXELS:,}-pixel limit (decompression bomb?)"
        )
    if w < 1 or h < 1:
        raise ImageError("corrupt", f"image declares a {w}x{h} canvas")


def _draft_request(image_wh: tuple[int, int], target_wh: tuple[int, int], resize: str) -> tuple[int, int]:
    """The smallest (w, h) the decoder may reduce to without losing needed detail."""
    w, h = image_wh
    tw, th = target_wh
    if resize == "stretch":
        return tw, th
    scale = max(tw / w, th / h)
    return math.ceil(w * scale), math.ceil(h * scale)


def _apply_orientation(img: Image.Image) -> Image.Image:
    try:
        if img.getexif().get(ORIENTATION_TAG, 1) in (0, 1):
            return img  # the common case: nothing to do, no copy
        return ImageOps.exif_transpose(img)
    except Exception:  # malformed EXIF must not fail a decodable picture
        return img


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in _ALPHA_MODES or "transparency" in img.info:
        if mode == "La":
            img = img.convert("LA")  # Pillow has no direct La -> RGBA conversion
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in _UINT16_MODES:
        return _grey_to_rgb(np.asarray(img).astype(np.uint16) >> 8)
    if mode == "I":
        values = np.asarray(img, dtype=np.int64)
        if values.size and values.min() >= 0 and values.max() <= 0xFFFF:
            return _grey_to_rgb(values >> 8)
        return _grey_to_rgb((values + 2**31) >> 24)
    if mode == "F":
        values = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0)
        return _grey_to_rgb(np.clip(np.rint(values * 255.0), 0, 255))
    try:
        return img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageError("corrupt", f"unsupported pixel mode {mode!r} ({exc})") from None


def _grey_to_rgb(values: np.ndarray) -> Image.Image:
    return Image.fromarray(values.astype(np.uint8)).convert("RGB")


def resize_image(img: Image.Image, target_wh: tuple[int, int], resize: str) -> Image.Image:
    if img.size == target_wh:
        return img
    if resize == "stretch":
        return img.resize(target_wh, RESAMPLE)
    w, h = img.size
    tw, th = target_wh
    scale = max(tw / w, th / h)
    scaled_wh = (max(tw, round(w * scale)), max(th, round(h * scale)))
    left = (scaled_wh[0] - tw) // 2
    top = (scaled_wh[1] - th) // 2
    return img.resize(scaled_wh, RESAMPLE).crop((left, top, left + tw, top + th))
