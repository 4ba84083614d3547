"""Cut an aligned face crop out of a picture, the way the backbone's training cut them
(``detect.CROPS``).

``box`` (the VGG face networks): a square centred on the detector's box, with side
``max(w, h) * (1 + margin)`` (margin 0.3, the default, adds 15 % of the box on each
side: the "extended by a factor of 0.3 to include the whole head" of the VGG group's
face models), turned about the box centre so the line between the eyes is level, then
resized to the graph's input with the same resampling as every other image
(``images.RESIZE``, antialiased when shrinking). Parts of the square outside the
picture are black. Without eyes the square is cut unturned.

``dlib-chip`` (dlib's face network): dlib's own ``get_face_chip`` on the 5-point
landmarks (from the dlib detectors, or dlib's landmark model on another detector's
box), with the margin as its padding: what ``compute_face_descriptor(img, shape)``
feeds the network.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from gender_cli.infer.detect import Face, FaceSettings, eye_angle, landmarks_for_thread
from gender_cli.infer.images import resize_image

FILL = (0, 0, 0)


def crop_square(face: Face, margin: float) -> tuple[float, float, float]:
    """(centre x, centre y, side) of the crop, in the face's picture pixels."""
    x, y, w, h = face.box
    return x + w / 2, y + h / 2, max(w, h) * (1 + margin)


def crop_face(pixels: np.ndarray, face: Face, margin: float, size: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """The aligned crop of ``face`` (whose box is in pixels of a copy of ``pixels``
    shrunk by ``scale``) as a uint8 (size[0], size[1], 3) RGB array."""
    cx, cy, side = (value / scale for value in crop_square(face, margin))
    angle = eye_angle(face.eyes) if face.eyes is not None else 0.0
    n = max(1, round(side))
    # cv2 turns counter-clockwise for a positive angle; a tilt of +a (right eye lower)
    # is undone by turning the picture by +a about the centre
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    matrix[:, 2] += (n / 2 - cx, n / 2 - cy)
    square = cv2.warpAffine(
        np.ascontiguousarray(pixels), matrix, (n, n), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=FILL,
    )
    height, width = size
    return np.asarray(resize_image(Image.fromarray(square), (width, height), "stretch"), dtype=np.uint8)


def crop_dlib_chip(pixels: np.ndarray, face: Face, padding: float, size: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """dlib's face chip of ``face`` (found in a copy of ``pixels`` shrunk by ``scale``)."""
    import dlib

    if size[0] != size[1]:
        raise ValueError(f"dlib's face chips are square; the graph takes {size[0]}x{size[1]}")
    points = face.landmarks
    if points is None:  # another detector's box: dlib's 5-point model finds the landmarks
        points = landmarks_for_thread().points(pixels, tuple(v / scale for v in face.box))
    else:
        points = tuple((x / scale, y / scale) for x, y in points)
    x, y, w, h = (v / scale for v in face.box)
    rect = dlib.rectangle(round(x), round(y), round(x + w), round(y + h))
    shape = dlib.full_object_detection(rect, [dlib.point(round(px), round(py)) for px, py in points])
    return np.asarray(dlib.get_face_chip(np.ascontiguousarray(pixels), shape, size=size[0], padding=padding), np.uint8)


def crop(pixels: np.ndarray, face: Face, settings: FaceSettings, size: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """The crop of ``face`` by ``settings.crop``'s convention, as uint8 (size[0], size[1], 3) RGB."""
    if settings.crop == "dlib-chip":
        return crop_dlib_chip(pixels, face, settings.margin_used, size, scale)
    return crop_face(pixels, face, settings.margin_used, size, scale)
