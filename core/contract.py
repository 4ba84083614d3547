"""The ONNX contract between training and inference, as data.

``export`` writes graphs that obey it; ``classify``, ``bench``, ``train`` (descriptor
extraction) and ``evaluate`` read graphs through it. Nothing here imports onnx,
onnxruntime or TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from gender_cli.errors import UnknownDescriptorError

INPUT_NAME = "images"  # uint8 [N, H, W, 3], RGB, N dynamic
PROBABILITIES = "probabilities"  # float32 [N, 2], graphs with the gender head
AGE = "age"  # float32 [N], years: graphs with the age head
DESCRIPTOR = "descriptor"  # float32 [N, D]

OPSET = 17
IR_VERSION = 8  # onnxruntime 1.20-1.31 all load IR 8 (opset 17)

LABELS = ("male", "female")  # default output order of the gender head
CHANNEL_ORDER = "RGB"
AGE_RANGE = (0, 100)  # the age head (DEX): one softmax class per whole year, first to last


@dataclass(frozen=True)
class Head:
    """A head on the descriptor: what ``train --task`` fits and what a graph may output."""

    name: str  # --task value and entry of the ``heads`` metadata
    output: str  # graph output name
    shape: tuple  # graph output shape
    help: str


HEADS = {
    h.name: h
    for h in (
        Head("gender", PROBABILITIES, ("N", 2), "2-way softmax over the labels"),
        Head("age", AGE, ("N",), "softmax over the ages 0-100, expected value in years (DEX)"),
    )
}
GENDER_HEAD, AGE_HEAD = HEADS


def external_data_name(graph_name: str) -> str:
    """The side file holding a graph's weights when exported with --external-data."""
    return graph_name + ".data"


@dataclass(frozen=True)
class DescriptorLayer:
    """A backbone layer whose output the head is trained on."""

    name: str  # CLI value and metadata value
    layer: str  # name of the layer (in the converted layer table) whose output is taken
    global_average_pool: bool  # reduce H x W to 1 x 1 by averaging (pool5)
    help: str


# In order of preference: a network's default descriptor is the first one whose layer it has.
DESCRIPTORS = {
    d.name: d
    for d in (
        DescriptorLayer("relu7", "relu7", False, "4096-d, the VGG-Face descriptor (Parkhi et al.); VGG-Face's default"),
        DescriptorLayer("fc8", "fc8", False, "2622-d identity scores (the VGG-Face classifier's own output)"),
        DescriptorLayer("pool5", "pool5", True, "512-d, global average of VGG-Face's last convolutional maps"),
        DescriptorLayer("embedding", "fc", False, "128-d, dlib's face-recognition embedding; the dlib network's default"),
        DescriptorLayer("pooled", "global_pool", False, "256-d, the dlib network's globally pooled maps"),
    )
}
DEFAULT_DESCRIPTOR = "relu7"  # VGG-Face's; see default_descriptor for any network


def default_descriptor(layer_names) -> str:
    """The first descriptor of DESCRIPTORS whose layer is among ``layer_names``."""
    names = set(layer_names)
    for spec in DESCRIPTORS.values():
        if spec.layer in names:
            return spec.name
    raise UnknownDescriptorError(
        f"the network has none of the descriptor layers ({', '.join(d.layer for d in DESCRIPTORS.values())})"
    )


def descriptor_spec(name: str) -> DescriptorLayer:
    """The descriptor layer called ``name``, or an error that lists the choices."""
    try:
        return DESCRIPTORS[name]
    except KeyError:
        raise UnknownDescriptorError(
            f"unknown descriptor {name!r}; choose from {', '.join(DESCRIPTORS)}"
        ) from None


@dataclass(frozen=True)
class Precision:
    name: str
    help: str


PRECISIONS = {
    p.name: p
    for p in (
        Precision("fp32", "float32 weights and arithmetic (reference)"),
        Precision("fp16", "float16 weights and arithmetic; fp32 input, output and softmax"),
        Precision("int8", "static QDQ int8, per-channel, calibrated on --calibration images"),
    )
}
DEFAULT_PRECISION = "fp32"


class Meta:
    """Keys of the ONNX ``metadata_props``. Values are strings; lists and dicts are JSON."""

    LABELS = "labels"  # JSON list, in output order
    THRESHOLD = "threshold"  # decision threshold on probabilities[:, 1]
    INPUT_SIZE = "input_size"  # JSON [H, W, 3]
    CHANNEL_ORDER = "channel_order"  # "RGB"
    MEAN = "mean"  # JSON [r, g, b] subtracted inside the graph
    DESCRIPTOR = "descriptor"  # one of DESCRIPTORS
    DESCRIPTOR_DIM = "descriptor_dim"
    PRECISION = "precision"  # one of PRECISIONS
    SOURCE_SHA256 = "source_sha256"  # sha256 of the weights file convert read
    SOURCE_FORMAT = "source_format"  # mat, caffe, keras-vggface, deepface, deepface-gender
    SOURCE_PREPROCESSING = "source_preprocessing"  # JSON: what the source library feeds its network
    HEAD_SOURCE = "head_source"  # where a head not trained by gender-cli came from
    STANDIN = "standin"  # "true" when made from stand-in (random) weights
    VERSION = "gender_cli_version"
    KIND = "kind"  # "classifier" (one or more heads) or "backbone"
    METRICS = "metrics"  # JSON: the head's test metrics, when known
    PRECISION_CHECK = "precision_check"  # JSON: agreement with fp32 (fp16/int8)
    RESIZE = "resize"  # how callers should bring images to input_size
    # Only in graphs whose heads are not the gender head alone (absent: the gender head
    # alone, as in every graph written before the age head existed):
    HEADS = "heads"  # JSON list of HEADS names, in output order
    AGE_RANGE = "age_range"  # JSON [first, last] age of the age head's softmax
    AGE_METRICS = "age_metrics"  # JSON: the age head's test metrics, when known
    # Present when the head was trained on detected faces (train --detect), so that
    # classify --detect crops alike: infer.detect.FaceSettings reads and writes them.
    FACE_DETECTOR = "face_detector"  # one of infer.detect.DETECTORS
    FACE_MIN_SIZE = "face_min_size"  # smallest face searched, pixels of the original
    FACE_MARGIN = "face_margin"  # the box grows by this fraction of its side before cropping
    FACE_ALIGNMENT = "face_alignment"  # how the eyes were levelled (informative)
    # The backbone's face crop convention (infer.detect.CROPS) when it is not "box", the
    # VGG one: present in every graph of such a backbone, trained on faces or not.
    FACE_CROP = "face_crop"


REQUIRED_KEYS = (
    Meta.LABELS,
    Meta.THRESHOLD,
    Meta.INPUT_SIZE,
    Meta.CHANNEL_ORDER,
    Meta.MEAN,
    Meta.DESCRIPTOR,
    Meta.PRECISION,
    Meta.SOURCE_SHA256,
    Meta.STANDIN,
    Meta.VERSION,
    Meta.KIND,
)

STANDIN_WARNING = (
    "this model was made from STAND-IN (random) weights, not the real VGG-Face "
    "weights: its predictions say nothing about gender or age"
)


def graph_heads(meta: dict[str, str]) -> tuple[str, ...]:
    """The heads a graph carries, from its metadata: the ``heads`` key, or without it the
    gender head alone for a classifier (every graph from before the age head) and none
    for a backbone. ValueError for names not in HEADS."""
    if Meta.HEADS not in meta:
        return (GENDER_HEAD,) if meta.get(Meta.KIND) == "classifier" else ()
    heads = tuple(str(name) for name in json.loads(meta[Meta.HEADS]))
    unknown = [name for name in heads if name not in HEADS]
    if unknown or not heads:
        raise ValueError(f"heads {list(heads)} are not among {', '.join(HEADS)}")
    return heads
