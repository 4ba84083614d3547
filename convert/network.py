"""The framework-free layer table: what every reader produces and every builder consumes.

The table is a graph: each layer takes the output of the layer before it, or of the
layers its ``inputs`` name (a residual join takes two), and every layer comes after
the layers it takes. What each kind of layer computes is in its record
(:mod:`gender_cli.convert.kinds`). Conventions follow MatConvNet (``vl_simplenn``):

* conv weights are ``(H, W, Cin, Cout)`` float32 (also TensorFlow's HWIO), bias ``(Cout,)``;
* ``stride`` is ``(y, x)``; ``pad`` is ``(top, bottom, left, right)``; ``dilate`` is ``(y, x)``;
* output size of conv and pool is ``floor((H + top + bottom - kh_eff) / sy) + 1``;
* max pooling ignores padding; average pooling divides by the number of in-image
  cells of the window (MatConvNet pooling_cpu.cpp clips the window to the image);
* images are ``(H, W, 3)`` RGB in 0..255 minus ``mean`` (per channel).

A source that takes BGR or scaled input (Caffe, keras-vggface, deepface) is brought to
this convention when it is read: the channel swap and the scale are folded into the
first convolution's weights (:mod:`gender_cli.convert.preprocessing`), and
``Network.preprocessing`` records what the source library itself does, for the metadata.

``Network.save``/``Network.load`` store the table as ``network.json`` plus one ``.npy``
per array, so ``export`` can memory-map 580 MB of weights without TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from gender_cli.atomic import names_file
from gender_cli.errors import ModelFileError

@dataclass
class Layer:
    name: str
    type: str  # a kind of convert.kinds.KINDS
    weights: np.ndarray | None = None  # conv: (H, W, Cin, Cout) float32
    bias: np.ndarray | None = None  # conv: (Cout,) float32
    stride: tuple[int, int] = (1, 1)  # (y, x)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # (top, bottom, left, right)
    dilate: tuple[int, int] = (1, 1)  # (y, x), conv only
    pool: tuple[int, int] | None = None  # pool window (h, w)
    method: str = "max"  # pool: "max" or "avg"
    rate: float = 0.5  # dropout rate (inference: identity)
    lrn: tuple[int, float, float, float] | None = None  # (depth, kappa, alpha, beta)
    inputs: tuple[str, ...] = ()  # names of the layers it takes; empty: the layer before it

    @property
    def num_params(self) -> int:
        return sum(a.size for a in (self.weights, self.bias) if a is not None)

    def pool_geometry(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int, int, int]]:
        """``(window, stride, pad)`` of a pool layer, checked as MatConvNet checks them."""
        if self.pool is None:
            raise ModelFileError(f"pool layer {self.name!r} has no window size")
        if self.method not in ("max", "avg"):
            raise ModelFileError(f"layer {self.name!r}: unknown pooling method {self.method!r}")
        ph, pw = (int(p) for p in self.pool)
        top, bottom, left, right = (int(p) for p in self.pad)
        if max(top, bottom) >= ph or max(left, right) >= pw:
            raise ModelFileError(
                f"layer {self.name!r}: padding {tuple(self.pad)} must be smaller than the pool window {tuple(self.pool)}"
            )
        sy, sx = (int(s) for s in self.stride)
        return (ph, pw), (sy, sx), (top, bottom, left, right)

    def describe(self) -> dict:
        """Everything but the arrays, JSON-ready."""
        d = {
            "name": self.name,
            "type": self.type,
            "stride": list(self.stride),
            "pad": list(self.pad),
            "dilate": list(self.dilate),
            "method": self.method,
            "rate": self.rate,
        }
        if self.pool is not None:
            d["pool"] = list(self.pool)
        if self.lrn is not None:
            d["lrn"] = list(self.lrn)
        if self.inputs:
            d["inputs"] = list(self.inputs)
        if self.weights is not None:
            d["weights_shape"] = list(self.weights.shape)
        return d


@dataclass
class Network:
    layers: list[Layer]
    input_size: tuple[int, int, int] = (224, 224, 3)  # (H, W, C)
    mean: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))  # RGB
    class_names: list[str] = field(default_factory=list)
    source_sha256: str = ""
    source_path: str = ""
    mat_version: str = ""  # "5" or "7.3"
    layout: str = ""  # MAT: "release"/"zoo"; Caffe: "v1"/"layer"; Keras HDF5: "weights"/"model"
    standin: bool = False
    source_format: str = "mat"  # a convert.formats.FORMATS key
    preprocessing: dict = field(default_factory=dict)  # what the source library feeds its network

    @property
    def num_params(self) -> int:
        return sum(layer.num_params for layer in self.layers)

    def layer_index(self, name: str) -> int:
        for i, layer in enumerate(self.layers):
            if layer.name == name:
                return i
        raise ModelFileError(
            f"the network has no layer named {name!r} "
            f"(layers: {', '.join(l.name for l in self.layers)})"
        )

    def inputs_of(self) -> list[tuple[int, ...]]:
        """For each layer, the indices of the layers it takes (-1: the image input).

        ModelFileError for an input that names no earlier layer.
        """
        seen: dict[str, int] = {}
        found = []
        for index, layer in enumerate(self.layers):
            if not layer.inputs:
                found.append((index - 1,))
            else:
                missing = [name for name in layer.inputs if name not in seen]
                if missing:
                    raise ModelFileError(
                        f"layer {index + 1} {layer.name!r} takes {', '.join(map(repr, missing))}, "
                        "which is not a layer before it"
                    )
                found.append(tuple(seen[name] for name in layer.inputs))
            seen[layer.name] = index
        return found

    def truncated(self, last: str) -> "Network":
        """The same network up to and including layer ``last``."""
        return replace(self, layers=self.layers[: self.layer_index(last) + 1])

    # -- storage ---------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        layers = []
        for i, layer in enumerate(self.layers):
            d = layer.describe()
            for attr in ("weights", "bias"):
                array = getattr(layer, attr)
                if array is not None:
                    fname = f"{i:02d}_{layer.name}_{attr}.npy"
                    with names_file(directory / fname):  # a full disk names the file
                        np.save(directory / fname, np.ascontiguousarray(array, dtype=np.float32))
                    d[attr] = fname
            layers.append(d)
        meta = {
            "format": "gender-cli-network/1",
            "input_size": list(self.input_size),
            "mean": [float(x) for x in np.asarray(self.mean).reshape(-1)],
            "class_names": list(self.class_names),
            "source_sha256": self.source_sha256,
            "source_path": self.source_path,
            "mat_version": self.mat_version,
            "layout": self.layout,
            "standin": self.standin,
            "source_format": self.source_format,
            "preprocessing": self.preprocessing,
            "layers": layers,
        }
        tmp = directory / "network.json.tmp"
        with names_file(directory / "network.json"):
            tmp.write_text(json.dumps(meta, indent=1))
        tmp.replace(directory / "network.json")

    @classmethod
    def load(cls, directory: Path, mmap: bool = True) -> "Network":
        directory = Path(directory)
        try:
            meta = json.loads((directory / "network.json").read_text())
        except (OSError, ValueError) as exc:
            raise ModelFileError(f"cannot read converted network in {directory}: {exc}") from exc
        layers = []
        for d in meta["layers"]:
            arrays = {}
            for attr in ("weights", "bias"):
                if attr in d:
                    arrays[attr] = np.load(directory / d[attr], mmap_mode="r" if mmap else None)
            layers.append(
                Layer(
                    name=d["name"],
                    type=d["type"],
                    stride=tuple(d["stride"]),
                    pad=tuple(d["pad"]),
                    dilate=tuple(d["dilate"]),
                    pool=tuple(d["pool"]) if "pool" in d else None,
                    method=d["method"],
                    rate=d["rate"],
                    lrn=tuple(d["lrn"]) if "lrn" in d else None,
                    inputs=tuple(d.get("inputs", ())),
                    **arrays,
                )
            )
        return cls(
            layers=layers,
            input_size=tuple(meta["input_size"]),
            mean=np.asarray(meta["mean"], np.float32),
            class_names=meta["class_names"],
            source_sha256=meta["source_sha256"],
            source_path=meta["source_path"],
            mat_version=meta["mat_version"],
            layout=meta["layout"],
            standin=meta["standin"],
            source_format=meta.get("source_format", "mat"),  # tables written before other formats
            preprocessing=meta.get("preprocessing", {}),
        )
