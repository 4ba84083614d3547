"""Hand-made MatConvNet files for the mat-io tests: a tiny stand-in as editable plain data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gender_cli.convert.mat_writer import write_mat
from gender_cli.convert.standin import standin_variables
from gender_cli.convert.vgg_face import vgg_face_network


def tiny_variables(layout: str = "release", seed: int = 0, few_classes: bool = True) -> dict:
    """Variables of a tiny stand-in; ``few_classes`` keeps 3 names so v7.3 files write fast."""
    network = vgg_face_network("tiny", seed)
    if few_classes:
        network.class_names = network.class_names[:3]
    return standin_variables(network, layout, note=None)


def layers_of(variables: dict) -> list[dict]:
    return variables["net"]["layers"] if "net" in variables else variables["layers"]


def layer_named(variables: dict, name: str) -> dict:
    return next(layer for layer in layers_of(variables) if layer["name"] == name)


def normalization_of(variables: dict) -> dict:
    return variables["net"]["normalization"] if "net" in variables else variables["meta"]["normalization"]


def write(tmp_path: Path, variables: dict, version: str = "5", name: str = "variant.mat") -> Path:
    return write_mat(tmp_path / name, variables, version)


def single_channel_variables(weights: np.ndarray, bias: np.ndarray) -> dict:
    """A 4-layer zoo-layout net on 8x8 grey images: conv -> relu -> pool -> softmax."""
    return {
        "layers": [
            {"name": "conv", "type": "conv", "weights": [weights, bias], "pad": 1.0, "stride": 1.0},
            {"type": "relu", "name": "relu"},
            {"name": "pool", "type": "pool", "pool": 2.0, "stride": 2.0},
            {"name": "prob", "type": "softmax"},
        ],
        "meta": {"normalization": {"averageImage": np.float32([[1.0, 2.0, 3.0]]), "imageSize": np.array([[8.0, 8.0, 1.0]])}},
    }
