"""Face detection: each detector on photos with real faces pasted at known places,
eye alignment, crops, and the settings that travel in a model.

Photos are built from the shared UTKFace sample (tests that need it skip without it);
geometry, settings and the no-face case need no real face and always run.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from helpers_faces import centre, frontal_faces, plausible_area, write_photo  # noqa: E402

from gender_cli.contract import Meta
from gender_cli.errors import GenderCliError
from gender_cli.infer.align import crop_face
from gender_cli.infer.detect import (
    DETECTORS, DLIB_LANDMARKS, DLIB_MMOD, NO_FACE, Face, FaceSettings, check_available, dlib_model,
)
from gender_cli.infer.faces import find_faces, incomplete_paths
from gender_cli.photos import background

SIZE = (64, 64)


def usable(name: str) -> str:
    try:
        check_available(name)
    except GenderCliError as exc:
        pytest.skip(f"{name} is not installed here ({exc}); it comes with the [detect] extra")
    return name


@pytest.fixture(params=list(DETECTORS))
def detector(request) -> str:
    return usable(request.param)


@pytest.mark.parametrize("count", [1, 2])
def test_each_pasted_face_is_found_in_left_to_right_order(detector, utkface_sample, tmp_path, count):
    path = tmp_path / "photo.jpg"
    placements = write_photo(path, frontal_faces(utkface_sample, count, start=count), seed=count)
    result = find_faces(0, path, FaceSettings(detector), SIZE)
    assert result.error is None
    assert len(result.faces) == count
    for face, placement in zip(result.faces, placements):  # both left to right
        assert placement.contains(centre(face.box)), (face.box, placement)
        assert plausible_area(face.box, placement), (face.box, placement)
        assert face.crop.shape == (*SIZE, 3) and face.crop.dtype == np.uint8


def test_a_photo_without_a_face_is_a_no_face_result(detector, tmp_path):
    path = tmp_path / "empty.jpg"
    background(np.random.default_rng(5), (400, 300)).save(path, quality=92)
    result = find_faces(3, path, FaceSettings(detector), SIZE)
    assert result.faces == [] and result.index == 3
    assert result.error[0] == NO_FACE and detector in result.error[1]


def test_an_unreadable_file_keeps_its_image_error(tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"not a picture at all")
    result = find_faces(0, path, FaceSettings(), SIZE)
    assert result.faces == [] and result.error[0] == "not_image"


@pytest.mark.parametrize("angle", [15, -15])
def test_turned_faces_are_found_and_levelled(detector, utkface_sample, tmp_path, angle):
    face = frontal_faces(utkface_sample, 1, start=4)
    upright, turned = tmp_path / "upright.jpg", tmp_path / "turned.jpg"
    write_photo(upright, face, seed=7)
    placement = write_photo(turned, face, seed=7, angles=[angle])[0]  # same place, turned
    settings = FaceSettings(detector)
    level = find_faces(0, upright, settings, SIZE).faces
    tilted = find_faces(0, turned, settings, SIZE).faces
    assert len(level) == len(tilted) == 1
    assert placement.contains(centre(tilted[0].box))
    assert tilted[0].aligned and level[0].aligned
    # pasting turned the face counter-clockwise by `angle`: its eye line now slopes the
    # other way by as much (image y points down)
    assert tilted[0].angle - level[0].angle == pytest.approx(-angle, abs=4)
    # and the levelled crop looks like the crop of the upright face
    unlevelled = _crop_without_eyes(turned, detector)
    aligned, unaligned = _similarity(tilted[0].crop, level[0].crop), _similarity(unlevelled, level[0].crop)
    print(f"{detector} {angle:+d}: similarity to the upright crop {aligned:.3f} levelled, {unaligned:.3f} not")
    assert aligned > unaligned


def _crop_without_eyes(path, detector) -> np.ndarray:
    pixels = np.asarray(Image.open(path).convert("RGB"))
    from gender_cli.infer.detect import detector_for_thread

    found = detector_for_thread(detector).find(pixels, FaceSettings(detector).smallest_face)
    return crop_face(pixels, Face(found[0].box, found[0].score, None), FaceSettings().margin_used, SIZE)


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of the middle halves (the face; the edges hold background)."""
    h, w = a.shape[:2]
    a, b = (image[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].astype(np.float64) for image in (a, b))
    x, y = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(x @ y / np.sqrt((x @ x) * (y @ y)))


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_turned_photos_give_boxes_in_upright_pixels(utkface_sample, tmp_path, orientation):
    path = tmp_path / f"exif{orientation}.jpg"
    placements = write_photo(path, frontal_faces(utkface_sample, 2), seed=11, exif_orientation=orientation)
    with Image.open(path) as stored:
        assert stored.size == ((300, 400) if orientation in (6, 8) else (400, 300))  # stored turned
    result = find_faces(0, path, FaceSettings(), SIZE)
    assert len(result.faces) == 2
    for face, placement in zip(result.faces, placements):
        assert placement.contains(centre(face.box)), (face.box, placement)


def test_a_large_photo_is_searched_smaller_and_boxed_in_its_own_pixels(utkface_sample, tmp_path):
    # 2600 x 1950: decoded by JPEG draft at 1/2, then searched at 1280 px
    path = tmp_path / "large.jpg"
    from gender_cli.photos import photo_with_faces

    photo, placements = photo_with_faces(
        frontal_faces(utkface_sample, 1, start=2), np.random.default_rng(2), size=(2600, 1950), sides=(600, 700)
    )
    photo.save(path, quality=90)
    result = find_faces(0, path, FaceSettings(), SIZE)
    assert len(result.faces) == 1
    box = result.faces[0].box
    assert placements[0].contains(centre(box)) and plausible_area(box, placements[0]), (box, placements[0])


def test_faces_smaller_than_min_face_are_left_out(utkface_sample, tmp_path):
    path = tmp_path / "photo.jpg"
    write_photo(path, frontal_faces(utkface_sample, 2), seed=3)  # faces about 80-120 px
    assert len(find_faces(0, path, FaceSettings(min_face=40), SIZE).faces) == 2
    assert find_faces(0, path, FaceSettings(min_face=200), SIZE).error[0] == NO_FACE


def test_max_faces_keeps_the_largest(utkface_sample, tmp_path):
    path = tmp_path / "photo.jpg"
    placements = write_photo(path, frontal_faces(utkface_sample, 2, start=5), seed=5)
    every = find_faces(0, path, FaceSettings(), SIZE).faces
    largest = find_faces(0, path, FaceSettings(max_faces=1), SIZE).faces
    assert len(every) == 2 and len(largest) == 1
    assert largest[0].box == max(every, key=lambda f: f.box[2] * f.box[3]).box
    assert len(placements) == 2


@pytest.mark.slow  # 500 searches: about 18 s on 2 quiet cores (all 2,000 took a minute of the test budget)
def test_the_default_detector_finds_exactly_one_face_in_the_face_crops(utkface_sample):
    """A property of the detector on shared crops (already faces), whatever the
    classifier's weights: exactly one face in at least 95 % of every fourth of the 2,000."""
    settings = FaceSettings()
    paths = sorted(utkface_sample.iterdir())[::4]
    with ThreadPoolExecutor(max(1, len(os.sched_getaffinity(0)))) as pool:
        counts = list(pool.map(lambda p: len(find_faces(0, p, settings, (8, 8)).faces), paths))
    one = sum(c == 1 for c in counts) / len(counts)
    print(f"opencv on {len(counts)} face crops: exactly one face in {one:.1%}, "
          f"none in {counts.count(0)}, several in {sum(c > 1 for c in counts)}")
    assert len(counts) == 500
    assert one >= 0.95


def test_dlib_hog_finds_faces_that_fill_the_frame(utkface_sample, tmp_path):
    """HOG misses a face cropped close (it touches every edge); a second search with a
    border, only where nothing was found, finds most of them, boxed in the picture's pixels."""
    from gender_cli.infer.detect import detector_for_thread

    usable("dlib-hog")
    settings = FaceSettings(detector="dlib-hog")
    first = again = 0
    for number, path in enumerate(sorted(utkface_sample.iterdir())[:20]):
        close = Image.open(path).convert("RGB").crop((30, 30, 170, 170)).resize((200, 200))  # 70 % of the crop
        first += bool(detector_for_thread("dlib-hog")._find(np.asarray(close), 80))
        close.save(tmp_path / f"{number}.png")
        found = find_faces(number, tmp_path / f"{number}.png", settings, SIZE)
        again += len(found.faces) == 1
        for face in found.faces:
            x, y, w, h = face.box
            assert 0 <= x and 0 <= y and x + w <= 200 and y + h <= 200
    assert first <= 17 and again >= 18, (first, again)


# --------------------------------------------------------------------------- geometry
def _dots(angle: float, distance: float = 40.0, size: int = 200):
    """A grey picture with two black dots (the "eyes") on a line turned by ``angle``
    degrees (image coordinates: positive turns the right dot down)."""
    pixels = np.full((size, size, 3), 200, np.uint8)
    c = size / 2
    dx, dy = distance / 2 * math.cos(math.radians(angle)), distance / 2 * math.sin(math.radians(angle))
    eyes = ((c - dx, c - dy), (c + dx, c + dy))
    yy, xx = np.mgrid[0:size, 0:size]
    for ex, ey in eyes:
        pixels[(xx - ex) ** 2 + (yy - ey) ** 2 <= 16] = 0
    return pixels, eyes


def _dark_centroids(crop: np.ndarray) -> list[tuple[float, float]]:
    dark = crop[..., 0] < 100
    half = crop.shape[1] // 2
    out = []
    for columns in (slice(0, half), slice(half, None)):
        ys, xs = np.nonzero(dark[:, columns])
        out.append((xs.mean() + (columns.start or 0), ys.mean()))
    return out


@pytest.mark.parametrize("angle", [20.0, -12.0])
def test_the_crop_levels_the_eyes_about_the_box_centre(angle):
    pixels, eyes = _dots(angle)
    face = Face((50.0, 50.0, 100.0, 100.0), 1.0, eyes)
    (lx, ly), (rx, ry) = _dark_centroids(crop_face(pixels, face, margin=0.0, size=(100, 100)))
    assert ly == pytest.approx(ry, abs=1.0)  # level
    assert (lx + rx) / 2 == pytest.approx(50, abs=1.0) and ly == pytest.approx(50, abs=1.0)  # centred
    assert rx - lx == pytest.approx(40, abs=1.5)  # side 100 -> 100 px: no scaling
    # unlevelled, the dots keep their slope
    (_, ly0), (_, ry0) = _dark_centroids(crop_face(pixels, Face(face.box, 1.0, None), 0.0, (100, 100)))
    assert ry0 - ly0 == pytest.approx(40 * math.sin(math.radians(angle)), abs=1.5)


def test_the_margin_grows_the_square_around_the_box():
    pixels, eyes = _dots(0.0)
    face = Face((50.0, 50.0, 100.0, 100.0), 1.0, eyes)
    (lx, _), (rx, _) = _dark_centroids(crop_face(pixels, face, margin=1.0, size=(100, 100)))
    assert rx - lx == pytest.approx(20, abs=1.5)  # the square is 200 px wide, shown at 100
    # a square reaching outside the picture is black there
    corner = crop_face(pixels, Face((0.0, 0.0, 40.0, 40.0), 1.0, None), margin=1.0, size=(80, 80))
    assert corner[:15, :15].max() == 0 and corner[-10:, -10:].min() == 200


# --------------------------------------------------------------------------- settings
def test_settings_travel_in_the_metadata_and_given_values_win():
    trained = FaceSettings("opencv", min_face=56, margin=0.4)
    meta = trained.to_meta()
    assert meta[Meta.FACE_DETECTOR] == "opencv" and meta[Meta.FACE_MIN_SIZE] == "56"
    assert float(meta[Meta.FACE_MARGIN]) == 0.4 and "eye" in meta[Meta.FACE_ALIGNMENT]
    assert FaceSettings.from_meta(meta) == trained
    assert FaceSettings.from_meta({}) is None
    assert FaceSettings.resolve(trained) == trained
    assert FaceSettings.resolve(trained, margin=0.1, max_faces=2) == FaceSettings("opencv", 56, 0.1, 2)
    # another detector does not inherit the smallest face of the model's detector
    other = FaceSettings.resolve(trained, detector="dlib-hog")
    assert other.smallest_face == DETECTORS["dlib-hog"].min_face and other.margin == 0.4
    assert FaceSettings.resolve(None) == FaceSettings()


@pytest.mark.parametrize("bad", [{"detector": "nope"}, {"min_face": 4}, {"margin": -0.1}, {"max_faces": 0}])
def test_bad_settings_are_one_line_errors(bad):
    with pytest.raises(GenderCliError):
        FaceSettings(**bad)


def test_the_dlib_model_files_come_from_the_registry_package():
    usable("dlib-hog")
    for name in (DLIB_LANDMARKS, DLIB_MMOD):
        assert dlib_model(name).stat().st_size > 100_000


def test_incomplete_face_rows_are_told_apart_from_whole_files():
    records = [
        {"path": "a.jpg", "face": "0", "faces": "2", "error": ""},
        {"path": "a.jpg", "face": "1", "faces": "2", "error": ""},
        {"path": "b.jpg", "face": "", "faces": "0", "error": "no_face: no face found"},
        {"path": "c.jpg", "face": "", "faces": "", "error": "corrupt: broken"},
        {"path": "d.jpg", "face": 0, "faces": 3, "error": None},  # JSONL numbers
        {"path": "d.jpg", "face": 1, "faces": 3, "error": None},
    ]
    assert incomplete_paths(records) == {"d.jpg"}
    assert incomplete_paths(records[:1]) == {"a.jpg"}
    assert incomplete_paths(records[:4]) == set()
