"""Decode one image file into the uint8 RGB array the ONNX graph takes.

``load_image`` applies every rule below; ``load_picture`` stops before the resize and
returns the upright RGB picture (what face detection searches), with the factor that
maps its pixels back to the original's.

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
   cuts the centre.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from gender_cli.errors import first_line

MAX_PIXELS = 100_000_000
"""Largest accepted canvas (100 Mpx: above any camera photo; 300 MB once decoded)."""

CATEGORIES = ("empty", "not_image", "truncated", "corrupt", "too_large", "unreadable")
RESIZE_MODES = ("stretch", "center-crop")
RESAMPLE = Image.Resampling.BILINEAR
WHITE = (255, 255, 255)
ORIENTATION_TAG = 0x0112

# Process-wide, set once at import (changing them per call would race between threads).
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)

_ALPHA_MODES = {"LA", "La", "PA", "RGBA", "RGBa"}
_UINT16_MODES = {"I;16", "I;16B", "I;16L", "I;16N"}


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
    path: str | os.PathLike,
    size: tuple[int, int] = (224, 224),
    resize: str = "stretch",
    read: Callable[[str | os.PathLike], bytes] | None = None,
) -> np.ndarray:
    """Decode ``path`` into a uint8 array of shape (size[0], size[1], 3), RGB."""
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
    path: str | os.PathLike,
    long_side: int | None = None,
    read: Callable[[str | os.PathLike], bytes] | None = None,
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
    try:
        data = read(path) if read is not None else Path(path).read_bytes()
    except OSError as exc:
        raise ImageError("unreadable", f"cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise ImageError("empty", "file is empty (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as img:
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
