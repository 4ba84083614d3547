"""A weights file as read, whatever its format: what ``inspect`` shows and ``convert`` turns into a table.

Each format reader (MAT, Caffe, Keras HDF5) returns a :class:`SourceFile`: one
:class:`LayerEntry` per layer of the source, each either converted to a :class:`Layer`
(weights may still be views into the file) or carrying the ``problem`` that stops
conversion, plus the mean, input size, source convention and stand-in marker.
:func:`to_network` then makes the layer table: it names the first layer it cannot
convert (index, name, type) before anything else, needs a mean (the file's or
``--mean``), makes one contiguous float32 copy per weight array and folds the source's
channel order and scale into the first convolution.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gender_cli.convert.network import Layer, Network
from gender_cli.convert.preprocessing import CONVENTIONS, fold_into_first_conv
from gender_cli.errors import ModelFileError, UnsupportedLayerError

MEAN_OPTION = "--mean R,G,B"


@dataclass
class LayerEntry:
    index: int  # 1-based, in the source's own layer order
    name: str
    type: str  # as the source names it ("conv", "Convolution", "Conv2D", ...)
    layer: Layer | None  # None: not convertible (see problem) or not a layer of the table
    problem: str | None = None
    params: int = 0  # parameters the source holds for this layer

    @property
    def label(self) -> str:
        """``layer 12 'conv4_1' (conv)``: how every message names a layer."""
        return f"layer {self.index} {self.name!r} ({self.type or 'no type'})"


@dataclass
class Head:
    """A ready gender classifier on a descriptor (deepface's gender model), in HeadSpec terms."""

    descriptor: str
    kernels: list[np.ndarray]  # [in, out], output columns in ``labels`` order
    biases: list[np.ndarray]
    labels: list[str]
    source_labels: list[str]  # the source's own names, in the source's output order


@dataclass
class SourceFile:
    path: str
    sha256: str
    format: str  # a formats.FORMATS key
    detail: str  # "MAT v5, release layout", "Caffe binary, V1 layers", ...
    entries: list[LayerEntry]
    input_size: tuple[int, int, int]
    mean: np.ndarray | None  # RGB, as the table subtracts it; None: the file has none
    class_names: list[str] = field(default_factory=list)
    standin_note: str | None = None
    notes: list[str] = field(default_factory=list)
    mat_version: str = ""
    layout: str = ""
    head: Head | None = None

    @property
    def standin(self) -> bool:
        return self.standin_note is not None

    @property
    def problems(self) -> list[str]:
        return [f"{entry.label}: {entry.problem}" for entry in self.entries if entry.problem]

    def first_problem(self) -> LayerEntry | None:
        return next((entry for entry in self.entries if entry.problem), None)


def file_head(path, size: int) -> bytes:
    """The first ``size`` bytes of a weights file; ModelFileError when it is not a file."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    if not path.is_file():
        raise ModelFileError(f"{path}: not a file")
    with open(path, "rb") as stream:
        return stream.read(size)


def map_file(path) -> mmap.mmap:
    """A read-only memory map of a weights file (arrays become views, nothing is read
    twice); ModelFileError for an empty file."""
    path = Path(path)
    with open(path, "rb") as stream:
        if path.stat().st_size == 0:
            raise ModelFileError(f"{path}: empty file")
        return mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)


def check_channels(entries: list[LayerEntry], channels: int | None, path) -> None:
    """Every convolution must take the channels the layers before it give.

    ``channels`` is the input's channel count (None: unknown, taken from the first
    convolution); after a layer gender-cli cannot convert, the count is unknown again.
    """
    for entry in entries:
        layer = entry.layer
        if layer is None:
            if entry.problem:
                channels = None
            continue
        if layer.type != "conv":
            continue
        cin = int(layer.weights.shape[2])
        if channels is not None and cin != channels:
            raise ModelFileError(
                f"{path}: {entry.label}: weights {'x'.join(map(str, layer.weights.shape))} take "
                f"{cin} input channels but the layers before it give {channels}"
            )
        channels = int(layer.weights.shape[3])


def parse_mean(text: str) -> np.ndarray:
    """``"129.19,104.76,93.59"`` -> float32 RGB mean; ValueError for anything else."""
    parts = [p for p in text.replace(" ", "").split(",") if p]
    values = [float(p) for p in parts]
    if len(values) != 3 or not all(np.isfinite(values)):
        raise ValueError(f"expected three numbers R,G,B, got {text!r}")
    return np.asarray(values, np.float32)


def resolve_mean(source: SourceFile, mean: np.ndarray | None) -> tuple[np.ndarray, list[str]]:
    """The RGB mean the table subtracts: ``mean`` (``--mean``) over the file's; notes."""
    if mean is not None:
        mean = np.asarray(mean, np.float32).reshape(3)
        if source.mean is not None and not np.allclose(mean, source.mean):
            return mean, [f"--mean {_rgb(mean)} replaces the file's mean {_rgb(source.mean)}"]
        return mean, []
    if source.mean is None:
        raise ModelFileError(
            f"{source.path}: the file has no mean (no normalization.averageImage or equivalent); "
            f"give the per-channel mean the network was trained with, in RGB order: {MEAN_OPTION}"
        )
    return np.asarray(source.mean, np.float32).reshape(3), []


def _rgb(values) -> str:
    return ",".join(f"{float(v):.4f}" for v in np.asarray(values).reshape(-1))


def c_order_float32(array: np.ndarray, block_elements: int = 1 << 15, block_out: int = 256) -> np.ndarray:
    """One C-contiguous float32 copy of an H x W x Cin x Cout array or view.

    A plain ``np.ascontiguousarray`` of a column-major (MAT) or transposed (Caffe OIHW)
    411 MB fc6 takes seconds, because it reads with a 100 KB stride; copying
    cache-sized (Cin, Cout) blocks is 5-10x faster.
    """
    if array.ndim != 4 or array.flags.c_contiguous:
        return np.ascontiguousarray(array, dtype=np.float32)
    height, width, cin, cout = array.shape
    out = np.empty(array.shape, dtype=np.float32)
    block_in = max(1, block_elements // (block_out * width * height))
    # Column-major storage (the MAT case): walk the file's own (Cout, Cin, W, H) order.
    source = array.T if array.flags.f_contiguous else None
    for o in range(0, cout, block_out):
        for c in range(0, cin, block_in):
            if source is not None:
                block = source[o : o + block_out, c : c + block_in].transpose(3, 2, 1, 0)
            else:
                block = array[:, :, c : c + block_in, o : o + block_out]
            out[:, :, c : c + block_in, o : o + block_out] = block
    return out


def to_network(source: SourceFile, mean: np.ndarray | None = None) -> Network:
    """The layer table of ``source``: first unsupported layer, then the mean, then the copies."""
    first = source.first_problem()
    if first is not None:
        raise UnsupportedLayerError(f"{source.path}: {first.label}: {first.problem}")
    mean, notes = resolve_mean(source, mean)
    source.notes.extend(notes)
    layers = []
    for entry in source.entries:
        layer = entry.layer
        entry.layer = None  # the file's arrays go as soon as they are copied
        if layer is None:
            continue
        if layer.weights is not None:
            layer.weights = c_order_float32(layer.weights)
            layer.bias = np.ascontiguousarray(
                layer.bias if layer.bias is not None else np.zeros(layer.weights.shape[3]), dtype=np.float32
            )
        layers.append(layer)
    convention = CONVENTIONS[source.format]
    try:
        layers = fold_into_first_conv(layers, convention)
    except ModelFileError as exc:
        raise ModelFileError(f"{source.path}: {exc}") from None
    return Network(
        layers=layers,
        input_size=tuple(source.input_size),
        mean=mean,
        class_names=list(source.class_names),
        source_sha256=source.sha256,
        source_path=str(Path(source.path).resolve()),
        mat_version=source.mat_version,
        layout=source.layout,
        standin=source.standin,
        source_format=source.format,
        preprocessing=convention.describe(mean),
    )
