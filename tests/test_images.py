"""Decoding, file walking and batching on a generated corpus of awkward files."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gender_cli.errors import GenderCliError
from gender_cli.infer import batches as batches_module
from gender_cli.infer.batches import iter_batches
from gender_cli.infer.files import list_image_files
from gender_cli.infer.images import MAX_PIXELS, ImageError, load_image

from helpers_infer import BLUE, RED, png_declaring, refuse_listing  # noqa: E402

SIZE = (32, 32)

# Outside pytest, gender_cli.infer.images turns this warning into an error at import;
# pytest resets warning filters per test, so say it here too.
pytestmark = pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")


def _category(path: Path) -> str | None:
    try:
        load_image(path, size=SIZE)
    except ImageError as exc:
        return exc.category
    return None


def test_every_file_gets_its_expected_category(corpus):
    root, expected = corpus
    got = {name: _category(root / name) for name in expected}
    assert got == expected


def test_good_images_have_the_contract_shape_and_dtype(corpus):
    root, expected = corpus
    for name, category in expected.items():
        if category is None:
            for mode in ("stretch", "center-crop"):
                array = load_image(root / name, size=(24, 40), resize=mode)
                assert array.shape == (24, 40, 3) and array.dtype == np.uint8, (name, mode)


def test_exif_orientation_is_applied(corpus):
    root, _ = corpus
    array = load_image(root / "rotated.jpg", size=(40, 40)).astype(int)
    # displayed picture: red on top, blue at the bottom (unrotated it is red|blue side by side)
    assert np.abs(array[:15].mean(axis=(0, 1)) - RED).max() < 30
    assert np.abs(array[-15:].mean(axis=(0, 1)) - BLUE).max() < 30
    # center-crop keeps the displayed 1:2 portrait's middle: red upper half, blue lower half
    cropped = load_image(root / "rotated.jpg", size=(40, 40), resize="center-crop").astype(int)
    assert np.abs(cropped[:15].mean(axis=(0, 1)) - RED).max() < 30
    assert np.abs(cropped[-15:].mean(axis=(0, 1)) - BLUE).max() < 30


def test_alpha_is_composited_over_white(corpus):
    root, _ = corpus
    array = load_image(root / "alpha.png", size=(20, 20))
    assert (array[:8] == RED).all()  # opaque top half stays red
    assert (array[12:] == 255).all()  # transparent black becomes white
    assert (load_image(root / "grey_alpha.png", size=(8, 8)) == 255).all()


def test_sixteen_bit_is_scaled_by_its_range_not_clipped(corpus):
    root, _ = corpus
    array = load_image(root / "sixteen_bit.png", size=(16, 16))
    ramp = (np.arange(256).reshape(16, 16) * 257) >> 8
    np.testing.assert_array_equal(array[..., 0], ramp)
    assert array.max() == 255 and array.min() == 0  # full range used, not saturated at 255


def test_float_cmyk_grey_palette_gif_and_one_pixel(corpus):
    root, _ = corpus
    assert (load_image(root / "float.tif", size=(4, 4)) == 128).all()  # 0.5 of the 0..1 range
    cmyk = load_image(root / "cmyk.jpg", size=(4, 4)).astype(int)
    assert np.abs(cmyk.mean(axis=(0, 1)) - RED).max() < 40
    assert (load_image(root / "grey.png", size=(4, 4)) == 77).all()
    assert (load_image(root / "palette.png", size=(4, 4)) == (0, 255, 0)).all()
    assert (load_image(root / "animated.gif", size=(4, 4)) == RED).all()  # first frame only
    assert (load_image(root / "one_pixel.png", size=(5, 7)) == BLUE).all()


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_declaring(MAX_PIXELS // 1000 + 1, 1000))
    with pytest.raises(ImageError) as info:
        load_image(bomb)
    assert info.value.category == "too_large"
    assert "exceeds" in str(info.value) or "decompression" in str(info.value).lower()


def test_error_messages_say_what_happened(corpus):
    root, _ = corpus
    messages = {}
    for name in ("empty.jpg", "truncated.jpg", "notes.jpg", "sub/dangling.jpg"):
        with pytest.raises(ImageError) as info:
            load_image(root / name)
        messages[name] = str(info.value)
    assert "0 bytes" in messages["empty.jpg"]
    assert "truncated" in messages["truncated.jpg"]
    assert "not an image" in messages["notes.jpg"]
    assert "No such file" in messages["sub/dangling.jpg"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a chmod 000 file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "locked.jpg"
    Image.new("RGB", (4, 4)).save(path)
    path.chmod(0)
    try:
        assert _category(path) == "unreadable"
    finally:
        path.chmod(0o644)


def test_jpeg_draft_decodes_large_photos_reduced(tmp_path):
    path = tmp_path / "big.jpg"
    Image.new("RGB", (2000, 1600), RED).save(path, quality=90)
    with Image.open(path) as img:
        img.draft(None, (224, 224))
        assert img.size == (250, 200) or min(img.size) >= 224  # powers of two, never below target
    array = load_image(path)
    assert np.abs(array.astype(int).mean(axis=(0, 1)) - RED).max() < 10


def test_no_file_handle_stays_open(corpus):
    root, expected = corpus
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("needs /proc")
    before = len(list(fd_dir.iterdir()))
    for name in expected:
        _category(root / name)
    assert len(list(fd_dir.iterdir())) == before


# --------------------------------------------------------------------------- files
def test_listing_is_sorted_complete_and_loop_free(corpus):
    root, expected = corpus
    files = list_image_files([root])
    relative = [p.relative_to(root).as_posix() for p in files]
    assert sorted(relative) == sorted(expected)  # every file once, loop added nothing
    assert files == sorted(files, key=lambda p: p.parts)
    assert all(str(p).startswith(str(root)) for p in files)  # paths as given, not resolved
    assert list_image_files([root]) == files  # stable


def test_listing_not_recursive_and_direct_files(corpus):
    root, expected = corpus
    top = list_image_files([root], recursive=False)
    assert sorted(p.name for p in top) == sorted(n for n in expected if "/" not in n)
    direct = list_image_files([root / "good.jpg", root / "good.jpg", root])
    assert direct[0] == root / "good.jpg" and len(direct) == len(expected)  # no duplicates


def test_listing_links_to_the_same_folder_once(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.jpg").write_bytes(b"x")
    (tmp_path / "alias").symlink_to("real")
    files = list_image_files([tmp_path])
    assert len(files) == 1


def test_listing_skips_fifos_and_rejects_missing_folders(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "a.jpg").write_bytes(b"x")
    assert list_image_files([tmp_path]) == [tmp_path / "a.jpg"]
    with pytest.raises(GenderCliError, match="no such file or folder"):
        list_image_files([tmp_path / "absent"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root can list a chmod 000 folder")
def test_unlistable_folder_raises_or_is_collected(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        with pytest.raises(GenderCliError, match="cannot list folder"):
            list_image_files([tmp_path])
        collected = []
        assert list_image_files([tmp_path], unlistable=collected) == []
        assert collected[0][0] == locked
    finally:
        locked.chmod(0o755)


# --------------------------------------------------------------------------- batches
def test_batches_keep_order_shape_padding_and_errors(corpus):
    root, expected = corpus
    files = list_image_files([root])
    seen = []
    for batch in iter_batches(files, batch_size=4, size=SIZE, workers=3, prefetch=2):
        assert batch.images.shape == (4, *SIZE, 3) and batch.images.dtype == np.uint8
        for index, path in enumerate(batch.paths):
            category = expected[path.relative_to(root).as_posix()]
            if category is None:
                np.testing.assert_array_equal(batch.images[index], load_image(path, size=SIZE))
            else:
                assert batch.errors[index].category == category
                assert not batch.images[index].any()
        assert not batch.images[len(batch.paths) :].any()
        seen += batch.paths
    assert seen == files


def test_batches_decode_ahead_of_the_consumer(tmp_path, monkeypatch):
    calls = []

    def slow_load(path, size, resize, read=None):
        calls.append(path)
        time.sleep(0.02)
        return np.zeros((*size, 3), np.uint8)

    monkeypatch.setattr(batches_module, "load_image", slow_load)
    paths = [tmp_path / f"{i}.jpg" for i in range(40)]
    generator = iter_batches(paths, batch_size=4, size=SIZE, workers=4, prefetch=3)
    next(generator)
    time.sleep(0.3)
    assert 8 <= len(calls) <= 16  # the next prefetch batches, no more (bounded queue)
    generator.close()
    stopped_at = len(calls)
    time.sleep(0.1)
    assert len(calls) == stopped_at  # closing cancelled the rest and joined the threads
    assert not [t for t in threading.enumerate() if t.name.startswith("decode")]


def test_permission_error_is_unreadable_even_as_root(tmp_path, monkeypatch):
    path = tmp_path / "locked.jpg"
    Image.new("RGB", (4, 4)).save(path)
    real_read_bytes = Path.read_bytes

    def refuse(self):
        if self.name == "locked.jpg":
            raise PermissionError(13, "Permission denied")
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert info.value.category == "unreadable" and "Permission denied" in str(info.value)


def test_unlistable_folder_simulated_even_as_root(tmp_path, monkeypatch):
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "hidden.jpg").write_bytes(b"x")
    (tmp_path / "open.jpg").write_bytes(b"x")
    refuse_listing(monkeypatch, "locked")
    with pytest.raises(GenderCliError, match="cannot list folder .*locked: Permission denied"):
        list_image_files([tmp_path])
    collected = []
    assert list_image_files([tmp_path], unlistable=collected) == [tmp_path / "open.jpg"]
    assert collected[0][0] == tmp_path / "locked"


@pytest.mark.parametrize("orientation", [1, 6])
def test_load_picture_is_upright_and_maps_back_to_the_original(tmp_path, orientation):
    from gender_cli.infer.images import load_picture

    # stored 1600 x 800: a red left half and a blue right half; orientation 6 shows it
    # turned clockwise, 800 x 1600 with red on top
    stored = Image.new("RGB", (1600, 800), BLUE)
    stored.paste(RED, (0, 0, 800, 800))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "big.jpg"
    stored.save(path, quality=95, exif=exif.tobytes())
    full = load_picture(path)
    small = load_picture(path, long_side=300)  # JPEG draft: 1/4 keeps the long side >= 300
    upright = (1600, 800) if orientation == 1 else (800, 1600)
    assert full.scale == (1.0, 1.0) and full.original_size == upright
    assert small.original_size == upright and max(small.pixels.shape[:2]) == 400
    assert small.scale == (4.0, 4.0)
    first = small.pixels[10, 10] if orientation == 1 else small.pixels[10, 100]
    last = small.pixels[-10, -10]
    assert first[0] > 200 and first[2] < 60  # red where the original's red is, upright
    assert last[2] > 200 and last[0] < 60
