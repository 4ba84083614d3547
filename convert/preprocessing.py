"""What each source library feeds its network, and how the layer table absorbs it.

The layer table takes RGB 0..255 minus a per-channel RGB mean (:mod:`network`). A source
library may instead feed BGR, or scale the pixels; :func:`fold_into_first_conv` moves
that into the first convolution's weights (reverse its input channels for BGR, multiply
them by the scale), so the exported graph, the Keras builder and the NumPy reference
stay unchanged and give the numbers the source library gives. The source's own
convention travels in ``Network.preprocessing`` and from there into the ONNX metadata.

Where each row comes from is logged in docs/decisions.md with links to the sources.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from gender_cli.convert.network import Layer
from gender_cli.errors import ModelFileError

# The VGG-Face training mean as the Caffe release and keras-vggface subtract it (BGR).
VGG_FACE_MEAN_BGR = (93.5940, 104.7624, 129.1863)


@dataclass(frozen=True)
class InputConvention:
    """How a library turns an image into the network's input: ``(x[order] - mean) * scale``."""

    library: str  # who feeds the network this way
    channel_order: str  # "RGB" or "BGR"
    scale: float  # applied after the mean subtraction
    mean: tuple[float, float, float] | None  # in channel_order; None: the file's own mean
    where: str  # the code that shows it
    face_crop: str = "box"  # how its training cut faces out of photos (infer.detect.CROPS)

    def mean_rgb(self) -> np.ndarray | None:
        if self.mean is None:
            return None
        mean = np.asarray(self.mean, np.float32)
        return mean[::-1].copy() if self.channel_order == "BGR" else mean

    def describe(self, mean_rgb) -> dict:
        """JSON-ready, for ``Network.preprocessing`` and the ONNX metadata."""
        mean = np.asarray(mean_rgb, np.float64).reshape(-1)
        in_order = mean[::-1] if self.channel_order == "BGR" else mean
        described = {
            "library": self.library,
            "channel_order": self.channel_order,
            "mean": [float(str(np.float32(m))) for m in in_order],  # float32 digits, not binary noise
            "scale": self.scale,
            "folded": self.folded(),
            "where": self.where,
        }
        if self.face_crop != "box":
            described["face_crop"] = self.face_crop
        return described

    def folded(self) -> str:
        steps = []
        if self.channel_order == "BGR":
            steps.append("channel swap")
        if self.scale != 1.0:
            steps.append(f"scale {self.scale:.10g}")
        return " and ".join(steps) + " folded into the first convolution" if steps else "none"


CONVENTIONS = {
    "mat": InputConvention(
        "MatConvNet vl_simplenn", "RGB", 1.0, None,
        "vgg_face.mat normalization.averageImage (RGB)",
    ),
    "caffe": InputConvention(
        "Caffe (VGG-Face release)", "BGR", 1.0, None,
        "VGG_FACE_deploy.prototxt takes BGR minus the BGR mean",
    ),
    "keras-vggface": InputConvention(
        "keras_vggface.utils.preprocess_input(version=1)", "BGR", 1.0, VGG_FACE_MEAN_BGR,
        "https://github.com/rcmalli/keras-vggface/blob/master/keras_vggface/utils.py",
    ),
    "deepface": InputConvention(
        "deepface (normalization='base')", "BGR", 1 / 255, (0.0, 0.0, 0.0),
        "https://github.com/serengil/deepface/blob/master/deepface/modules/detection.py",
    ),
    "dlib": InputConvention(
        "dlib input_rgb_image_sized", "RGB", 1 / 256, None,
        "dlib/dnn/input.h input_rgb_image_sized::to_tensor: (pixel - average) / 256, R, G, B planes",
        face_crop="dlib-chip",
    ),
    "deepface-gender": InputConvention(
        "deepface DeepFace.analyze (gender)", "BGR", 1 / 255, (0.0, 0.0, 0.0),
        "https://github.com/serengil/deepface/blob/master/deepface/modules/demography.py",
    ),
}


def fold_into_first_conv(layers: list[Layer], convention: InputConvention) -> list[Layer]:
    """``layers`` with the convention's channel swap and scale moved into the first conv.

    The first layer must be a convolution taking 3 channels: zero padding of the
    mean-subtracted input and the folded weights then compute exactly what the source
    library computes.
    """
    if convention.channel_order == "RGB" and convention.scale == 1.0:
        return layers
    first = layers[0] if layers else None
    if first is None or first.type != "conv" or first.weights.shape[2] != 3:
        described = f"{first.name!r} ({first.type})" if first is not None else "nothing"
        raise ModelFileError(
            f"the source takes {convention.channel_order} input scaled by {convention.scale:.6g}, "
            f"which gender-cli folds into a first convolution on 3 channels; the first layer is {described}"
        )
    weights = np.asarray(first.weights)
    if convention.channel_order == "BGR":
        weights = weights[:, :, ::-1, :]
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    if convention.scale != 1.0:
        weights = weights * np.float32(convention.scale)
    return [replace(first, weights=weights)] + list(layers[1:])


def in_source_channel_order(layers: list[Layer], convention: InputConvention) -> list[Layer]:
    """``layers`` with the first conv's input channels in the convention's order.

    What a writer of that format stores: the same filters, for BGR input. The scale is
    not undone: a stand-in holds the same weights in every format.
    """
    if convention.channel_order == "RGB" or not layers or layers[0].type != "conv":
        return layers
    first = layers[0]
    weights = np.ascontiguousarray(np.asarray(first.weights)[:, :, ::-1, :], dtype=np.float32)
    return [replace(first, weights=weights)] + list(layers[1:])
