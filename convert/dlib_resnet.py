"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) as data.

The network is dlib's ``anet_type`` (``examples/dnn_face_recognition_ex.cpp``, the same
in ``tools/python/src/face_recognition.cpp``)::

    residual<N>      = add_prev1<block<N, stride 1, tag1<SUBNET>>>
    residual_down<N> = add_prev2<avg_pool<2,2,2,2, skip1<tag2<block<N, stride 2, tag1<SUBNET>>>>>>
    block<N, s>      = affine<con<N,3,3,1,1, relu<affine<con<N,3,3,s,s, SUBNET>>>>>>
    ares<N> = relu<residual<N>>        ares_down<N> = relu<residual_down<N>>
    loss_metric<fc_no_bias<128, avg_pool_everything<
        ares_down<256, ares<256, ares<256, ares_down<256, ares<128, ares<128, ares_down<128,
        ares<64, ares<64, ares<64, ares_down<64, ares<32, ares<32, ares<32,
        max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>>>>>>>>>>

:func:`ops` lists it innermost first (the order of the layer records in the file and of
the forward pass), tags and skips included: dlib writes a tag or skip as a bare
``int 1`` and an ``add_prev`` without its tag's number, so the graph is known from this
definition, not from the file. ``size="tiny"`` keeps every layer, the 150x150 input and
the geometry with a few channels (tests). :func:`dlib_resnet_network` builds the layer
graph with seeded random weights: the stand-in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gender_cli.convert.network import Layer, Network
from gender_cli.convert.preprocessing import CONVENTIONS, fold_into_first_conv
from gender_cli.convert.vgg_face import he_normal

FILE_NAME = "dlib_face_recognition_resnet_model_v1.dat"
INPUT_SIZE = (150, 150, 3)
MEAN_RGB = (122.782, 117.001, 104.298)  # input_rgb_image_sized's averages (R, G, B)
LOSS = "loss_metric_2"
LOSS_MARGIN, LOSS_DISTANCE = 0.04, 0.6  # loss_metric_2's fields in the real file

# Channels per size: the stem, each level (forward order: 3 blocks of 32, then 64, 128,
# 256 and 256 each starting with a strided block), and the embedding.
CHANNELS = {
    "full": {"stem": 32, "levels": (32, 64, 128, 256, 256), "embedding": 128},
    "tiny": {"stem": 4, "levels": (4, 8, 8, 16, 16), "embedding": 8},
}
BLOCKS = (3, 4, 3, 3, 1)  # residual blocks per level, forward order
DOWN = (False, True, True, True, True)  # does the level start with a strided block


@dataclass(frozen=True)
class Op:
    """One dlib layer of the definition: a layer record, or a tag or skip (no record)."""

    kind: str  # con, affine, relu, max_pool, avg_pool, add_prev, fc, tag, skip
    name: str = ""  # the layer's name in the converted table (layers only)
    args: dict = field(default_factory=dict)  # con: filters, size, stride; pools: size, stride; tag/skip/add_prev: id

    @property
    def is_layer(self) -> bool:
        return self.kind not in ("tag", "skip")


def _con(name: str, filters: int, size: int, stride: int) -> Op:
    return Op("con", name, {"filters": filters, "size": size, "stride": stride})


def _block(prefix: str, filters: int, down: bool) -> list[Op]:
    ops = [
        Op("tag", args={"id": 1}),
        _con(f"{prefix}_conv1", filters, 3, 2 if down else 1),
        Op("affine", f"{prefix}_affine1"),
        Op("relu", f"{prefix}_relu1"),
        _con(f"{prefix}_conv2", filters, 3, 1),
        Op("affine", f"{prefix}_affine2"),
    ]
    if down:
        ops += [Op("tag", args={"id": 2}), Op("skip", args={"id": 1}),
                Op("avg_pool", f"{prefix}_shortcut", {"size": 2, "stride": 2}),
                Op("add_prev", f"{prefix}_add", {"id": 2})]
    else:
        ops.append(Op("add_prev", f"{prefix}_add", {"id": 1}))
    return ops + [Op("relu", f"{prefix}_relu")]


def ops(size: str = "full") -> list[Op]:
    """The network innermost first (the input layer excluded)."""
    if size not in CHANNELS:
        raise ValueError(f"unknown size {size!r}; choose from {', '.join(CHANNELS)}")
    channels = CHANNELS[size]
    found = [
        _con("conv1", channels["stem"], 7, 2), Op("affine", "affine1"), Op("relu", "relu1"),
        Op("max_pool", "pool1", {"size": 3, "stride": 2}),
    ]
    number = 0
    for filters, blocks, down in zip(channels["levels"], BLOCKS, DOWN):
        for i in range(blocks):
            number += 1
            found += _block(f"block{number}", filters, down and i == 0)
    found += [Op("avg_pool", "global_pool", {"size": 0, "stride": 1}), Op("fc", "fc", {"outputs": channels["embedding"]})]
    return found


def padding(size: int, stride: int) -> int:
    """dlib's default padding of con and the pools: half the window at stride 1, else none."""
    return size // 2 if stride == 1 else 0


def graph_inputs(definition: list[Op]) -> dict[str, tuple[str, ...]]:
    """Each layer's inputs in the table: () where it takes the layer before it, else the
    names a tag, skip or add_prev points at (the nearest tag of that number inwards)."""
    inputs: dict[str, tuple[str, ...]] = {}
    tags: dict[int, str] = {}
    current, last_layer = "", ""
    for op in definition:
        if op.kind == "tag":
            tags[op.args["id"]] = current
            continue
        if op.kind == "skip":
            current = tags[op.args["id"]]
            continue
        if op.kind == "add_prev":
            inputs[op.name] = (current, tags[op.args["id"]])
        else:
            inputs[op.name] = () if current == last_layer else (current,)
        current = last_layer = op.name
    return inputs


def dlib_resnet_network(size: str = "full", seed: int = 0) -> Network:
    """A stand-in of dlib's face network as a layer table: the real graph with seeded
    random weights (He-normal convolutions, scales near 1 and a smaller one at each
    block's end so the residual sums stay in range), the input's ``1/256`` folded into
    the first convolution as when a file is read."""
    rng = np.random.default_rng(seed)
    definition = ops(size)
    inputs = graph_inputs(definition)
    layers, channels = [], 3
    for op in (op for op in definition if op.is_layer):
        common = dict(name=op.name, inputs=inputs[op.name])
        if op.kind == "con":
            k, f, s = op.args["size"], op.args["filters"], op.args["stride"]
            p = padding(k, s)
            layers.append(Layer(type="conv", weights=he_normal(rng, (k, k, channels, f)),
                                bias=rng.normal(0, 0.01, f).astype(np.float32), stride=(s, s), pad=(p,) * 4, **common))
            channels = f
        elif op.kind == "affine":
            scale = 0.3 if op.name.endswith("affine2") else 1.0
            layers.append(Layer(type="affine", weights=rng.normal(scale, 0.05 * scale, channels).astype(np.float32),
                                bias=rng.normal(0, 0.05, channels).astype(np.float32), **common))
        elif op.kind == "relu":
            layers.append(Layer(type="relu", **common))
        elif op.kind == "add_prev":
            layers.append(Layer(type="add", **common))
        elif op.kind == "avg_pool" and op.args["size"] == 0:
            layers.append(Layer(type="global_pool", **common))
        elif op.kind in ("max_pool", "avg_pool"):
            k, s = op.args["size"], op.args["stride"]
            layers.append(Layer(type="pool", pool=(k, k), stride=(s, s), pad=(padding(k, s),) * 4,
                                method="max" if op.kind == "max_pool" else "avg", **common))
        elif op.kind == "fc":
            outputs = op.args["outputs"]
            weights = rng.standard_normal((1, 1, channels, outputs)).astype(np.float32) / np.float32(np.sqrt(channels))
            layers.append(Layer(type="conv", weights=weights, bias=None, **common))  # fc_no_bias
    convention = CONVENTIONS["dlib"]
    mean = np.asarray(MEAN_RGB, np.float32)
    return Network(layers=fold_into_first_conv(layers, convention), input_size=INPUT_SIZE, mean=mean, standin=True,
                   source_format="dlib", preprocessing=convention.describe(mean))
