"""The VGG-Face layer list (Parkhi et al. 2015, MatConvNet release) and stand-in weights.

``vgg_face_network(size, seed)`` builds a :class:`Network` with the real layer names,
types, strides, pads and shapes and seeded random weights (He-normal, zero bias) so
that activations neither vanish nor explode. ``size="tiny"`` keeps every layer and
the 224x224 input but only a few channels, so tests run in seconds. NumPy only: it
also runs on GPU hosts that have no TensorFlow or SciPy.
"""

from __future__ import annotations

import numpy as np

from gender_cli.convert.network import Layer, Network

MEAN_RGB = (129.1863, 104.7624, 93.5940)
INPUT_SIZE = (224, 224, 3)
NUM_CLASSES = 2622
GENDER_HEAD_ON = "relu7"  # deepface's gender model: a 1x1 conv of 2 filters on relu7

# Output channels of each conv block and of fc6/fc7, per size. fc8 always has 2622.
CHANNELS = {
    "full": {"conv1": 64, "conv2": 128, "conv3": 256, "conv4": 512, "conv5": 512, "fc": 4096},
    "tiny": {"conv1": 4, "conv2": 4, "conv3": 8, "conv4": 8, "conv5": 8, "fc": 16},
}
BLOCKS = (("conv1", 2), ("conv2", 2), ("conv3", 3), ("conv4", 3), ("conv5", 3))


def layer_plan(size: str = "full") -> list[dict]:
    """The 39 layers as plain dicts: name, type and, for conv, the (H, W, Cin, Cout) shape."""
    if size not in CHANNELS:
        raise ValueError(f"unknown size {size!r}; choose from {', '.join(CHANNELS)}")
    ch = CHANNELS[size]
    plan: list[dict] = []
    cin = 3
    for block, n in BLOCKS:
        cout = ch[block]
        b = block[-1]
        for j in range(1, n + 1):
            plan.append(dict(name=f"conv{b}_{j}", type="conv", shape=(3, 3, cin, cout), pad=1, stride=1))
            plan.append(dict(name=f"relu{b}_{j}", type="relu"))
            cin = cout
        plan.append(dict(name=f"pool{b}", type="pool", method="max", pool=2, stride=2, pad=0))
    fc = ch["fc"]
    plan += [
        dict(name="fc6", type="conv", shape=(7, 7, cin, fc), pad=0, stride=1),
        dict(name="relu6", type="relu"),
        dict(name="dropout6", type="dropout", rate=0.5),
        dict(name="fc7", type="conv", shape=(1, 1, fc, fc), pad=0, stride=1),
        dict(name="relu7", type="relu"),
        dict(name="dropout7", type="dropout", rate=0.5),
        dict(name="fc8", type="conv", shape=(1, 1, fc, NUM_CLASSES), pad=0, stride=1),
        dict(name="prob", type="softmax"),
    ]
    return plan


def matches_plan(layers: list[Layer]) -> bool:
    """Do ``layers`` have VGG-Face's structure at any channel widths?

    Same layer types in the same order, the same kernel sizes, strides and pads, and
    2622 outputs of fc8; names and channel widths are free.
    """
    plan = layer_plan("full")
    if len(layers) != len(plan):
        return False
    for layer, spec in zip(layers, plan):
        if layer.type != spec["type"]:
            return False
        if spec["type"] == "conv":
            if tuple(layer.weights.shape[:2]) != spec["shape"][:2]:
                return False
        elif spec["type"] == "pool":
            if tuple(layer.pool) != (spec["pool"],) * 2 or layer.method != spec["method"]:
                return False
        else:
            continue
        if tuple(layer.stride) != (spec["stride"],) * 2 or tuple(layer.pad) != (spec["pad"],) * 4:
            return False
    return int(layers[-2].weights.shape[3]) == NUM_CLASSES


def standin_gender_head(size: str = "full", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (kernel [D, 2], bias [2]) on relu7: the stand-in for deepface's gender layer.

    Drawn from its own stream, so the backbone's weights are those of every other format.
    """
    rng = np.random.default_rng([seed, 1])
    features = CHANNELS[size]["fc"]
    kernel = he_normal(rng, (1, 1, features, 2)).reshape(features, 2)
    return kernel, np.zeros(2, np.float32)


def standin_class_names() -> list[str]:
    return [f"standin_identity_{i:04d}" for i in range(1, NUM_CLASSES + 1)]


def he_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    fan_in = shape[0] * shape[1] * shape[2]
    w = rng.standard_normal(shape, dtype=np.float32)
    w *= np.float32(np.sqrt(2.0 / fan_in))
    return w


def vgg_face_network(size: str = "full", seed: int = 0) -> Network:
    """A stand-in VGG-Face network with the real structure and seeded random weights."""
    rng = np.random.default_rng(seed)
    layers = []
    for spec in layer_plan(size):
        if spec["type"] == "conv":
            shape = spec["shape"]
            layers.append(
                Layer(
                    name=spec["name"],
                    type="conv",
                    weights=he_normal(rng, shape),
                    bias=np.zeros(shape[3], np.float32),
                    stride=(spec["stride"],) * 2,
                    pad=(spec["pad"],) * 4,
                )
            )
        elif spec["type"] == "pool":
            layers.append(
                Layer(
                    name=spec["name"],
                    type="pool",
                    pool=(spec["pool"],) * 2,
                    stride=(spec["stride"],) * 2,
                    pad=(spec["pad"],) * 4,
                    method=spec["method"],
                )
            )
        elif spec["type"] == "dropout":
            layers.append(Layer(name=spec["name"], type="dropout", rate=spec["rate"]))
        else:
            layers.append(Layer(name=spec["name"], type=spec["type"]))
    return Network(
        layers=layers,
        input_size=INPUT_SIZE,
        mean=np.asarray(MEAN_RGB, np.float32),
        class_names=standin_class_names(),
        standin=True,
    )
