"""The Keras layer sequences that hold VGG-Face weights in the wild, as data.

Each library builds VGG-Face its own way, and its HDF5 file lists its layers in that
order (the legacy Keras 2 ``layer_names``/``weight_names`` layout):

* keras-vggface ``VGG16`` (``keras_vggface/models.py``): ``Conv2D(padding='same',
  activation='relu')`` named ``conv1_1`` ... ``conv5_3``, ``MaxPooling2D`` ``pool1`` ...
  ``pool5``, ``Flatten``, then ``Dense`` ``fc6``/``fc7``/``fc8`` with separate
  ``Activation`` layers; fc6's kernel rows follow the channels-last H,W,C flatten order.
  The no-top file stops at ``pool5``.
* deepface ``VGGFace.base_model`` (``deepface/models/facial_recognition/VGGFace.py``): a
  Sequential of ``ZeroPadding2D((1, 1))`` + ``Conv2D(activation='relu')`` pairs and
  ``MaxPooling2D``; fc6 a 7x7 ``Conv2D``, fc7/fc8 1x1 ``Conv2D`` with ``Dropout`` between,
  ``Flatten`` and a softmax ``Activation``; Keras-generated names.
* deepface's gender model (``deepface/models/demography/Gender.py``): the same backbone
  and a 1x1 ``Conv2D(2)`` named ``predictions`` on the output after fc7's dropout
  (``model.layers[-4]``), ``Flatten``, softmax; labels in the order Woman, Man.

Files are matched by the order and shapes of their weighted layers, never by name.
The table's layer plan (:mod:`vgg_face`) is the one place for the structure; this module
only says how each library names and groups its layers.
"""

from __future__ import annotations

from dataclasses import dataclass

from gender_cli.convert.vgg_face import layer_plan

DEEPFACE_GENDER_LABELS = ("Woman", "Man")  # deepface/models/demography/Gender.py `labels`
LABEL_NAMES = {"Woman": "female", "Man": "male"}  # the contract's words for them


@dataclass(frozen=True)
class KerasLayer:
    name: str  # as the library's Keras names it
    class_name: str  # Keras layer class
    table: str | None = None  # the table layer (or "head") whose weights it holds
    dense: bool = False  # a Dense kernel [in, out] rather than a Conv2D kernel


def _conv_names(size: str) -> list[str]:
    return [spec["name"] for spec in layer_plan(size) if spec["type"] == "conv"]


def keras_vggface(size: str = "full", top: bool = True) -> list[KerasLayer]:
    layers = [KerasLayer("input_1", "InputLayer")]
    for spec in layer_plan(size):
        if spec["type"] == "conv" and spec["name"].startswith("conv"):
            layers.append(KerasLayer(spec["name"], "Conv2D", spec["name"]))
        elif spec["type"] == "pool":
            layers.append(KerasLayer(spec["name"], "MaxPooling2D"))
    if top:
        layers.append(KerasLayer("flatten", "Flatten"))
        for fc, activation in (("fc6", "relu"), ("fc7", "relu"), ("fc8", "softmax")):
            layers += [KerasLayer(fc, "Dense", fc, dense=True), KerasLayer(f"{fc}/{activation}", "Activation")]
    return layers


def deepface(size: str = "full", gender: bool = False) -> list[KerasLayer]:
    counts: dict[str, int] = {}

    def auto(prefix: str) -> str:  # Keras 2's generated names: conv2d_1, conv2d_2, ...
        counts[prefix] = counts.get(prefix, 0) + 1
        return f"{prefix}_{counts[prefix]}"

    layers = [KerasLayer("zero_padding2d_1_input", "InputLayer")] if gender else []
    for spec in layer_plan(size):
        if spec["type"] == "conv":
            if gender and spec["name"] == "fc8":
                break
            if spec["pad"]:
                layers.append(KerasLayer(auto("zero_padding2d"), "ZeroPadding2D"))
            layers.append(KerasLayer(auto("conv2d"), "Conv2D", spec["name"]))
        elif spec["type"] == "pool":
            layers.append(KerasLayer(auto("max_pooling2d"), "MaxPooling2D"))
        elif spec["type"] == "dropout":
            layers.append(KerasLayer(auto("dropout"), "Dropout"))
    if gender:
        layers.append(KerasLayer("predictions", "Conv2D", "head"))
    layers += [KerasLayer(auto("flatten"), "Flatten"), KerasLayer(auto("activation"), "Activation")]
    return layers


def sequence(library: str, size: str = "full", top: bool = True) -> list[KerasLayer]:
    """The layer sequence of ``library`` (a formats.FORMATS key of a Keras file)."""
    if library == "keras-vggface":
        return keras_vggface(size, top)
    if library == "deepface":
        return deepface(size)
    if library == "deepface-gender":
        return deepface(size, gender=True)
    raise ValueError(f"no Keras layer sequence for {library!r}")


def weighted(layers: list[KerasLayer]) -> list[KerasLayer]:
    return [layer for layer in layers if layer.table is not None]


# (library, top) candidates a file is matched against, most specific first
CANDIDATES = (("keras-vggface", True), ("keras-vggface", False), ("deepface", True), ("deepface-gender", True))
