"""Write a layer table as a Keras HDF5 file laid out by keras-vggface, deepface or deepface's gender model.

The legacy Keras 2 layout that those libraries ship and ``load_weights`` reads: root
attributes ``keras_version``, ``backend`` and ``layer_names`` (every layer of the
library's sequence, :mod:`keras_layouts`, weighted or not), one group per layer with
``weight_names`` and the ``kernel:0``/``bias:0`` datasets. ``layout="model"`` writes a
whole-model file instead: ``model_config`` at the root and the weights under
``model_weights``. The first convolution's input channels are stored in BGR order, as
the libraries feed them; the stand-in marker is the root attribute ``gender_cli_standin``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gender_cli.atomic import atomic_path
from gender_cli.convert.keras_h5 import STANDIN_ATTRIBUTE
from gender_cli.convert.keras_layouts import sequence
from gender_cli.convert.network import Network
from gender_cli.convert.preprocessing import CONVENTIONS, in_source_channel_order
from gender_cli.errors import GenderCliError

LAYOUTS = ("weights", "model")
KERAS_VERSION = "2.2.4"  # the Keras the libraries' files were written with


def write_keras_h5(
    network: Network,
    path,
    library: str,
    layout: str = "weights",
    head_kernel: np.ndarray | None = None,
    head_bias: np.ndarray | None = None,
    standin_note: str | None = None,
) -> Path:
    """Write ``network`` (and, for deepface-gender, the head [D, 2] in Woman, Man order)."""
    import h5py

    if layout not in LAYOUTS:
        raise GenderCliError(f"unknown Keras HDF5 layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    layers = {layer.name: layer for layer in in_source_channel_order(network.layers, CONVENTIONS[library])}
    keras_layers = sequence(library, "full")
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.attrs["keras_version"] = np.bytes_(KERAS_VERSION)
        handle.attrs["backend"] = np.bytes_("tensorflow")
        if standin_note:
            handle.attrs[STANDIN_ATTRIBUTE] = np.bytes_(standin_note)
        root = handle
        if layout == "model":
            handle.attrs["model_config"] = np.bytes_(json.dumps(_model_config(library, keras_layers)))
            root = handle.create_group("model_weights")
            root.attrs["keras_version"] = np.bytes_(KERAS_VERSION)
            root.attrs["backend"] = np.bytes_("tensorflow")
        root.attrs["layer_names"] = np.array([k.name.encode("utf-8") for k in keras_layers])
        for keras_layer in keras_layers:
            group = root.require_group(keras_layer.name)
            arrays = _arrays(keras_layer, layers, head_kernel, head_bias)
            names = [f"{keras_layer.name}/{part}:0" for part in ("kernel", "bias")] if arrays else []
            group.attrs["weight_names"] = np.array([n.encode("utf-8") for n in names], dtype="S")
            for name, array in zip(names, arrays):
                group.create_dataset(name, data=array)
    return path


def _arrays(keras_layer, layers: dict, head_kernel, head_bias) -> list[np.ndarray]:
    if keras_layer.table is None:
        return []
    if keras_layer.table == "head":
        kernel = np.asarray(head_kernel, np.float32)
        return [kernel.reshape(1, 1, *kernel.shape), np.asarray(head_bias, np.float32)]
    layer = layers[keras_layer.table]
    kernel = np.asarray(layer.weights, np.float32)
    if keras_layer.dense:  # H x W x C x out -> [H*W*C, out], rows in channels-last order
        kernel = kernel.reshape(-1, kernel.shape[3])
    return [kernel, np.asarray(layer.bias, np.float32)]


def _model_config(library: str, keras_layers) -> dict:
    class_name = "Model" if library == "deepface-gender" or library == "keras-vggface" else "Sequential"
    return {
        "class_name": class_name,
        "config": {
            "name": library.replace("-", "_"),
            "layers": [{"class_name": k.class_name, "config": {"name": k.name}} for k in keras_layers],
        },
    }
