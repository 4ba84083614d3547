"""Golden values for what an image goes through before the graph: orientation, colour,
resampling. The expected pixels are computed here, independently of ``infer.images``:
the resize as bilinear resampling in exact arithmetic (the triangle filter of Pillow's
``Resample.c``, widened by the scale when shrinking; Pillow's 8-bit result may differ
from it by rounding, at most one level), EXIF orientations by the
EXIF specification's table, colour conversions by their formulas.

The Python API promises the CLI's exact answers; these tests fail on any change to the
rules (another resampling filter, a dropped EXIF transpose, alpha not composited over
white, 16-bit data clipped instead of scaled, a changed crop): BICUBIC instead of
BILINEAR moves ``p`` by up to 0.13 on the full-size model.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from gender_cli.infer.images import load_image, load_picture

def _weights(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) matrix of the triangle filter's normalised weights along one axis."""
    scale = in_size / out_size
    widen = max(scale, 1.0)  # shrinking widens the filter: every input pixel contributes (antialias)
    matrix = np.zeros((out_size, in_size))
    for out in range(out_size):
        centre = (out + 0.5) * scale
        first, last = max(0, int(centre - widen + 0.5)), min(in_size, int(centre + widen + 0.5))
        taps = np.clip(1.0 - np.abs((np.arange(first, last) + 0.5 - centre) / widen), 0.0, None)
        matrix[out, first:last] = taps / taps.sum()
    return matrix


def bilinear(pixels: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resampling of an H x W x 3 array to ``size_hw``, in exact arithmetic (float).
    Pillow rounds each of its two passes to 8 bits, so its pixels lie within 1 of these."""
    rows, columns = _weights(pixels.shape[0], size_hw[0]), _weights(pixels.shape[1], size_hw[1])
    return np.einsum("ai,ijc,bj->abc", rows, pixels.astype(np.float64), columns)


def assert_within_rounding(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.dtype == np.uint8 and got.shape == expected.shape
    error = np.abs(got.astype(np.float64) - expected)
    # two passes, each rounded to the nearest level: at most half a level each (and the
    # fixed-point weights' 2**-22)
    assert error.max() <= 1.0 + 1e-3, f"{error.max():.2f} levels from the reference (more than rounding)"


# EXIF orientation -> the stored picture turned upright (EXIF 2.32, tag 0x0112)
UPRIGHT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, k=-1),
    7: lambda a: np.rot90(a, k=2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, k=1),
}


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def png(pixels: np.ndarray, mode: str | None = None, **save) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, "PNG", **save)
    return buffer.getvalue()


def test_the_reference_is_pillow_s_bilinear_and_not_another_filter():
    """The oracle itself, on shapes that shrink and grow: within rounding of Pillow's
    BILINEAR, far from its other filters (so the tests below can tell them apart)."""
    pixels = noise(37, 53)
    for size in ((16, 16), (20, 90), (64, 41), (37, 20), (64, 90), (36, 54), (10, 52)):
        expected = bilinear(pixels, size)
        assert_within_rounding(np.asarray(Image.fromarray(pixels).resize(size[::-1], Image.Resampling.BILINEAR)),
                               expected)
        for other in (Image.Resampling.BICUBIC, Image.Resampling.LANCZOS, Image.Resampling.NEAREST):
            resized = np.asarray(Image.fromarray(pixels).resize(size[::-1], other))
            assert np.abs(resized - expected).max() > 8, other


@pytest.mark.parametrize("stored, size", [((48, 64), (32, 32)), ((20, 30), (32, 32)), ((224, 150), (56, 56))])
def test_stretch_is_bilinear_on_the_whole_picture(stored, size):
    pixels = noise(*stored, seed=sum(stored))
    assert_within_rounding(load_image(png(pixels), size=size, resize="stretch"), bilinear(pixels, size))


def test_center_crop_scales_the_short_side_then_cuts_the_middle():
    pixels = noise(40, 100, seed=3)
    # 32 x 32 from 100 x 40: scale 0.8 -> 80 x 32, then columns 24..56
    scaled = bilinear(pixels, (32, 80))
    assert_within_rounding(load_image(png(pixels), size=(32, 32), resize="center-crop"), scaled[:, 24:56])


def test_the_input_size_itself_is_not_resampled():
    pixels = noise(32, 32, seed=4)
    np.testing.assert_array_equal(load_image(png(pixels), size=(32, 32)), pixels)


@pytest.mark.parametrize("orientation", sorted(UPRIGHT))
def test_every_exif_orientation_is_turned_upright(orientation):
    stored = noise(12, 20, seed=orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = png(stored, exif=exif.tobytes())
    upright = UPRIGHT[orientation](stored)
    np.testing.assert_array_equal(load_picture(data).pixels, upright)
    np.testing.assert_array_equal(load_image(data, size=upright.shape[:2]), upright)  # same size: no resampling
    assert_within_rounding(load_image(data, size=(8, 8)), bilinear(upright, (8, 8)))


def test_alpha_is_composited_over_white():
    rng = np.random.default_rng(5)
    rgba = rng.integers(0, 256, (6, 7, 4), dtype=np.uint8)
    rgba[0, 0, 3], rgba[0, 1, 3] = 0, 255
    alpha = rgba[..., 3:].astype(float) / 255
    expected = rgba[..., :3] * alpha + 255 * (1 - alpha)
    got = load_image(png(rgba, "RGBA"), size=(6, 7)).astype(float)
    assert np.abs(got - expected).max() <= 1.0  # Pillow's integer blend rounds
    assert (got[0, 0] == 255).all() and (got[0, 1] == rgba[0, 1, :3]).all()


def test_sixteen_bit_grey_keeps_its_high_byte_and_grey_becomes_three_equal_channels():
    ramp = (np.arange(8 * 8, dtype=np.uint32).reshape(8, 8) * 1031).astype(np.uint16)
    got = load_image(png(ramp), size=(8, 8))
    np.testing.assert_array_equal(got, np.repeat((ramp >> 8).astype(np.uint8)[..., None], 3, axis=2))


def test_float_pixels_map_zero_to_one_onto_the_byte_range():
    values = np.array([[0.0, 0.25, 0.5], [1.0, 1.7, -0.3], [np.nan, 0.999, 0.002]], np.float32)
    buffer = io.BytesIO()
    Image.fromarray(values, "F").save(buffer, "TIFF")
    expected = np.clip(np.rint(np.nan_to_num(values, nan=0.0).astype(np.float64) * 255), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(load_image(buffer.getvalue(), size=(3, 3))[..., 0], expected)


def test_a_large_jpeg_is_decoded_at_the_smallest_draft_scale_that_still_covers_the_target():
    """libjpeg's DCT scaling (1/2, 1/4, 1/8) before the bilinear resize: a 1000 x 600 photo
    for 100 x 100 decodes at 1/4 (250 x 150), the largest reduction keeping both sides."""
    pixels = np.repeat(np.repeat(noise(75, 125, seed=6), 8, axis=0), 8, axis=1)  # 600 x 1000, JPEG-friendly
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
    data = buffer.getvalue()
    factor = max(s for s in (1, 2, 4, 8) if math.ceil(1000 / s) >= 100 and math.ceil(600 / s) >= 100)
    assert factor == 4
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (1000 // factor, 600 // factor))
        decoded = np.asarray(image.convert("RGB"))
    assert decoded.shape == (150, 250, 3)
    assert_within_rounding(load_image(data, size=(100, 100)), bilinear(decoded, (100, 100)))
