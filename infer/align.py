"""Cut an aligned face crop out of a picture, the way the VGG face networks expect it.

The crop is a square centred on the detector's box, with side ``max(w, h) * (1 +
margin)`` (margin 0.3, the default, adds 15 % of the box on each side: the "extended
by a factor of 0.3 to include the whole head" of the VGG group's face models), turned
about the box centre so the line between the eyes is level, then resized to the
graph's input with the same resampling as every other image (``images.RESIZE``,
antialiased when shrinking). Parts of the square outside the picture are black.
Without eyes the square is cut unturned.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from gender_cli.infer.detect import Face, eye_angle
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
