"""The ONNX contract between training and inference, as data.

``export`` writes graphs that obey it; ``classify``, ``bench``, ``train`` (descriptor
extraction) and ``evaluate`` read graphs through it. Nothing here imports onnx,
onnxruntime or TensorFlow.
"""

from __future__ import annotations

import json
import math
import re
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
RESIZE_MODES = ("stretch", "center-crop")  # how callers bring an image to the input size (metadata ``resize``)
DEFAULT_RESIZE = RESIZE_MODES[0]  # a model's metadata says otherwise when it was trained so
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
        DescriptorLayer("penultimate", "penultimate", False,
                        "the last dense layer of the CNN 'train --from-scratch' trains (128-d by default)"),
    )
}
DEFAULT_DESCRIPTOR = "relu7"  # VGG-Face's; see default_descriptor for any network
SCRATCH_DESCRIPTOR = "penultimate"  # the from-scratch CNN's; no converted network has it
# what --descriptor chooses among: the layers of converted networks
LAYER_DESCRIPTORS = {name: spec for name, spec in DESCRIPTORS.items() if name != SCRATCH_DESCRIPTOR}


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
    # Only in graphs whose gender head was calibrated by train (absent in graphs made
    # before: their threshold is the Youden one on the uncalibrated probabilities):
    CALIBRATION = "calibration"  # JSON: method, slope, operating point folded in (threshold 0.5)
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


# -- the metadata schema: what each key may hold ----------------------------------------
# A graph's metadata is read only through read_metadata, which checks every key it knows
# (types, ranges, sizes) before any of it is used: a value that would make classify
# allocate without bound, decide every file alike, or write a column twice is refused.

MAX_VALUE_CHARS = 1 << 20  # any metadata value (metrics included; ours are a few KB)
MAX_JSON_DEPTH = 32  # nesting of a JSON value (our metrics nest 4 deep)
MAX_LABEL_CHARS = 64
MAX_INPUT_SIDE = 2048  # VGG-Face takes 224, dlib 150; a batch of this side is 12 MB an image
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class MetadataError(ValueError):
    """A metadata value that breaks the schema; the message names the key and says why."""


def _json(text: str):
    depth = deepest = 0
    for token in _JSON_TOKENS.finditer(text):  # strings are skipped whole, brackets counted
        mark = token.group()
        if mark in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif mark in "]}":
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested {deepest} levels deep (at most {MAX_JSON_DEPTH})")
    return json.loads(text)


def _finite(value) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{str(value)[:40]!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{value} is not a finite number")
    return number


def _integer(value, low: int, high: int) -> int:
    number = _finite(value)
    if number != int(number) or not low <= number <= high:
        raise ValueError(f"{value} is not a whole number in {low}..{high}")
    return int(number)


def _text(limit: int = 256, choices: tuple[str, ...] = ()):
    def check(text: str) -> str:
        if choices and text not in choices:
            raise ValueError(f"{text[:40]!r} is not one of {', '.join(choices)}")
        if len(text) > limit:
            raise ValueError(f"{len(text)} characters long (at most {limit})")
        return text
    return check


def _list(check_item, low: int, high: int):
    def check(text: str) -> list:
        items = _json(text)
        if not isinstance(items, list) or not low <= len(items) <= high:
            raise ValueError(f"expected a JSON list of {low}..{high} items, found {text[:40]!r}")
        return [check_item(item) for item in items]
    return check


def _label(value) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_LABEL_CHARS:
        raise ValueError(f"a label must be a name of 1..{MAX_LABEL_CHARS} characters, not {str(value)[:40]!r}")
    if any(not ch.isprintable() for ch in value):
        raise ValueError(f"label {value[:40]!r} holds control characters")
    return value


def _labels(text: str) -> tuple[str, ...]:
    labels = tuple(_list(_label, 1, 16)(text))
    if len(set(labels)) != len(labels):
        raise ValueError(f"{list(labels)} names a label twice (each becomes a p_<label> column)")
    return labels


def _number_in(low: float, high: float, what: str = ""):
    def check(text: str) -> float:
        value = _finite(text)
        if not low <= value <= high:
            raise ValueError(f"{value} lies outside {low:g}..{high:g}{what}")
        return value
    return check


def _input_size(text: str) -> tuple[int, int, int]:
    size = tuple(_list(lambda v: _integer(v, 1, MAX_INPUT_SIDE), 3, 3)(text))
    if size[2] != 3:
        raise ValueError(f"{list(size)} is not [H, W, 3]")
    return size


def _heads(text: str) -> tuple[str, ...]:
    heads = tuple(_list(_text(32, tuple(HEADS)), 1, len(HEADS))(text))
    if len(set(heads)) != len(heads):
        raise ValueError(f"{list(heads)} names a head twice")
    return heads


def _age_range(text: str) -> tuple[int, int]:
    first, last = _list(lambda v: _integer(v, 0, 150), 2, 2)(text)
    if first >= last:
        raise ValueError(f"[{first}, {last}] is not [first, last] with first < last")
    return first, last


def _bool(text: str) -> bool:
    return _text(5, ("true", "false"))(text.strip().lower()) == "true"


@dataclass(frozen=True)
class MetaField:
    check: object  # str -> the parsed value; ValueError saying why not
    required: bool = False


METADATA: dict[str, MetaField] = {
    Meta.LABELS: MetaField(_labels, required=True),
    Meta.THRESHOLD: MetaField(_number_in(0, 1, " (it is a probability)"), required=True),
    Meta.INPUT_SIZE: MetaField(_input_size, required=True),
    Meta.CHANNEL_ORDER: MetaField(_text(8, (CHANNEL_ORDER,)), required=True),
    Meta.MEAN: MetaField(_list(_number_in(-1e4, 1e4), 3, 3), required=True),
    Meta.DESCRIPTOR: MetaField(_text(32, tuple(DESCRIPTORS)), required=True),
    Meta.DESCRIPTOR_DIM: MetaField(lambda text: _integer(text, 1, 1 << 20)),
    Meta.PRECISION: MetaField(_text(8, tuple(PRECISIONS)), required=True),
    Meta.SOURCE_SHA256: MetaField(_text(128), required=True),
    Meta.SOURCE_FORMAT: MetaField(_text(64)),
    Meta.SOURCE_PREPROCESSING: MetaField(_json),
    Meta.HEAD_SOURCE: MetaField(_text(4096)),
    Meta.STANDIN: MetaField(_bool, required=True),
    Meta.VERSION: MetaField(_text(64), required=True),
    Meta.KIND: MetaField(_text(16, ("classifier", "backbone")), required=True),
    Meta.METRICS: MetaField(_json),
    Meta.PRECISION_CHECK: MetaField(_json),
    Meta.RESIZE: MetaField(_text(32, RESIZE_MODES)),
    Meta.CALIBRATION: MetaField(_json),
    Meta.HEADS: MetaField(_heads),
    Meta.AGE_RANGE: MetaField(_age_range),
    Meta.AGE_METRICS: MetaField(_json),
    Meta.FACE_DETECTOR: MetaField(_text(32)),  # the detectors' names: infer.detect checks them
    Meta.FACE_MIN_SIZE: MetaField(lambda text: _integer(text, 0, 100_000)),
    Meta.FACE_MARGIN: MetaField(_number_in(0, 10)),
    Meta.FACE_ALIGNMENT: MetaField(_text(64)),
    Meta.FACE_CROP: MetaField(_text(32)),
}
REQUIRED_KEYS = tuple(key for key, spec in METADATA.items() if spec.required)


def read_metadata(raw: dict[str, str]) -> dict:
    """Every key of ``raw`` that the schema knows, parsed and checked (absent keys are
    left out; unknown keys are only held to the size bound). MetadataError naming the
    first key at fault."""
    missing = [key for key in REQUIRED_KEYS if key not in raw]
    if missing:
        raise MetadataError(f"lacks the gender-cli metadata ({', '.join(missing)}); was it written by "
                            "'gender-cli export'?")
    values = {}
    for key, text in raw.items():
        shown = key if len(key) <= 64 else key[:64] + "..."
        if len(text) > MAX_VALUE_CHARS or len(key) > 256:
            raise MetadataError(f"metadata {shown}: {len(text)} characters, more than any gender-cli value holds")
        spec = METADATA.get(key)
        if spec is None:
            continue
        try:
            values[key] = spec.check(text)
        except (ValueError, TypeError, RecursionError) as exc:
            raise MetadataError(f"metadata {key}: {str(exc).splitlines()[0] if str(exc) else 'malformed'}") from None
    return values

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
