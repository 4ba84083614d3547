"""Read MatConvNet ``simplenn`` files (MATLAB v5 or v7.3, release or model-zoo layout).

Reading happens in three steps:

1. :func:`load_variables` turns a MAT-file into plain Python values, whatever its
   version: a struct is a dict (a struct array a list of dicts), a cell a list, a
   char array a str, numbers an array in MATLAB's own shape (HDF5's reversed,
   column-major storage is transposed back, without a copy).
2. :func:`read_raw` finds the network in those variables (``net`` in the release
   ``vgg_face.mat``, ``layers`` + ``meta`` in the model zoo's ``vgg-face.mat``, or
   any other SimpleNN file) and returns a :class:`RawNetwork`: raw layer dicts plus
   mean (if the file has one), input size and classes.
3. :func:`read_source` converts each raw layer through :mod:`layer_registry`; a layer
   of a type it does not know keeps its place with the reason, so ``inspect`` lists
   every layer of any SimpleNN file. :func:`read_mat` makes the framework-free
   :class:`Network` from it (:func:`source_file.to_network`: one contiguous float32
   copy of each weight array, the file's array dropped as soon as it is copied).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gender_cli.convert.bounds import Budget, check_v5
from gender_cli.convert.layer_registry import (
    conv_arrays, convert_layer, converters, raw_name, raw_type,
)
from gender_cli.convert.network import Network
from gender_cli.convert.source_file import LayerEntry, SourceFile, check_channels, file_head, to_network
from gender_cli.errors import ModelFileError, UnsupportedLayerError

STANDIN_VARIABLE = "gender_cli_standin"
# The variables a network is made of (read_raw's): the others are listed, never read.
NETWORK_VARIABLES = frozenset({"net", "layers", "meta", "normalization", "classes", STANDIN_VARIABLE})
V5_SIGNATURE = b"MATLAB 5.0 MAT-file"
V73_SIGNATURE = b"MATLAB 7.3 MAT-file"
_HDF5_HIDDEN = ("#refs#", "#subsystem#")


def sha256_file(path, chunk_size: int = 2**20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def detect_version(path) -> str:
    """ "5" or "7.3" from the file's signature; ModelFileError for anything else."""
    import h5py

    path = Path(path)
    head = file_head(path, 128)
    if h5py.is_hdf5(str(path)):
        return "7.3"
    if head.startswith(V73_SIGNATURE):
        raise ModelFileError(f"{path}: MATLAB v7.3 MAT-file whose HDF5 part is unreadable (truncated?)")
    if head.startswith(V5_SIGNATURE):
        if len(head) < 128:
            raise ModelFileError(f"{path}: MATLAB v5 MAT-file is truncated ({len(head)} bytes)")
        return "5"
    raise ModelFileError(
        f"{path}: not a MATLAB v5 or v7.3 MAT-file (it starts with {head[:20]!r})"
    )


def load_variables(path) -> tuple[str, dict]:
    """(version, {name: plain value}) for every top-level variable of a MAT-file; those
    not in NETWORK_VARIABLES are ``Opaque("not read")``. What a file declares is checked
    before it is read (``bounds``): ModelFileError for a file that declares more than
    any network holds or more than it stores."""
    version = detect_version(path)
    loader = _load_v5 if version == "5" else _load_v73
    try:
        return version, loader(Path(path))
    except (ModelFileError, MemoryError, ModuleNotFoundError):  # a missing reader is not a bad file
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure means a bad file
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise ModelFileError(
            f"{path}: cannot read MATLAB v{version} MAT-file (truncated or corrupt?): {detail}"
        ) from exc


# -- v5 (scipy.io) ----------------------------------------------------------------------


def _load_v5(path: Path) -> dict:
    import scipy.io

    names = check_v5(path, NETWORK_VARIABLES)
    # No squeezing: 1x1 structs, 1-element cells and 1xN vectors all keep their MATLAB
    # dims, and _from_scipy decides what each becomes.
    contents = scipy.io.loadmat(
        str(path), squeeze_me=False, struct_as_record=True, chars_as_strings=True, mat_dtype=False,
        variable_names=[name for name in names if name in NETWORK_VARIABLES],
    )
    return {name: _from_scipy(contents[name]) if name in contents else NOT_READ for name in names}


def _from_scipy(value):
    from scipy.io.matlab import MatlabFunction, MatlabOpaque

    if isinstance(value, (MatlabOpaque, MatlabFunction)):
        return Opaque(type(value).__name__)
    if not isinstance(value, np.ndarray):
        return value
    if value.dtype.names is not None:  # struct (array)
        records = [
            {name: _from_scipy(record[name]) for name in value.dtype.names}
            for record in value.ravel(order="F")
        ]
        return records[0] if len(records) == 1 else records
    if value.dtype == object:  # cell
        return [_from_scipy(item) for item in value.ravel(order="F")]
    if value.dtype.kind == "U":  # char, one str per row
        rows = [str(row) for row in value.ravel(order="F")]
        return _char_rows(rows)
    return value


def _char_rows(rows: list[str]):
    if not rows:
        return ""
    if len(rows) == 1:
        return rows[0]
    return [row.rstrip() for row in rows]


@dataclass(frozen=True)
class Opaque:
    """A MATLAB object (function handle, class instance) that a network does not need."""

    kind: str


NOT_READ = Opaque("not read")  # a variable no network is made of


# -- v7.3 (h5py) ------------------------------------------------------------------------


def _load_v73(path: Path) -> dict:
    import h5py

    budget = Budget(path)
    with h5py.File(path, "r") as handle:
        return {
            name: _from_h5(node, handle, budget, name) if name in NETWORK_VARIABLES else NOT_READ
            for name, node in handle.items()
            if name not in _HDF5_HIDDEN
        }


def _has_attr(node, name: str) -> bool:
    import h5py

    return h5py.h5a.exists(node.id, name.encode("ascii"))


def _attr_text(node, name: str) -> str:
    if not _has_attr(node, name):  # much cheaper than attrs.get() on a missing name
        return ""
    value = node.attrs[name]
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else ""
        return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    return str(value)


def _from_h5(node, handle, budget: Budget, where: str):
    """``node`` as a plain value; every dataset is counted against ``budget`` (named by
    its MATLAB path, ``where``) before it is read."""
    import h5py

    matlab_class = _attr_text(node, "MATLAB_class")
    if isinstance(node, h5py.Group):
        if matlab_class not in ("", "struct"):
            return Opaque(matlab_class)
        fields = _field_names(node)
        members = [node[name] for name in fields]
        if members and all(_is_struct_array_field(member) for member in members):
            return _struct_array(fields, members, handle, budget, where)
        return {name: _from_h5(member, handle, budget, f"{where}.{name}") for name, member in zip(fields, members)}
    if _has_attr(node, "MATLAB_sparse"):
        return Opaque("sparse")
    budget.take_dataset(node, where)
    if _has_attr(node, "MATLAB_empty") and int(np.asarray(node.attrs["MATLAB_empty"]).reshape(-1)[0]):
        return _empty(matlab_class, node[()], budget, where)
    data = node[()]
    if matlab_class == "cell" or data.dtype == h5py.ref_dtype:
        refs = np.asarray(data).T.ravel(order="F")  # MATLAB's column-major element order
        budget.take_items(len(refs), where)
        return [_from_h5(handle[ref], handle, budget, f"{where}{{{i}}}") for i, ref in enumerate(refs, start=1)]
    if matlab_class == "char":
        rows = ["".join(map(chr, row)) for row in np.atleast_2d(np.asarray(data).T)]
        return _char_rows(rows)
    if data.dtype.names is not None:
        return Opaque("complex")
    if matlab_class == "logical":
        return np.asarray(data).T.astype(bool)
    return np.asarray(data).T  # column-major storage: the transpose is MATLAB's shape, no copy


def _field_names(group) -> list[str]:
    if not _has_attr(group, "MATLAB_fields"):
        return list(group.keys())
    fields = group.attrs["MATLAB_fields"]
    names = [b"".join(np.asarray(f).tolist()).decode("ascii") for f in fields]
    return [name for name in names if name in group]


def _is_struct_array_field(member) -> bool:
    import h5py

    return (
        isinstance(member, h5py.Dataset)
        and member.dtype == h5py.ref_dtype
        and not _has_attr(member, "MATLAB_class")
    )


def _struct_array(fields: list[str], members: list, handle, budget: Budget, where: str) -> list[dict]:
    for name, member in zip(fields, members):
        budget.take_dataset(member, f"{where}.{name}")
    columns = [np.asarray(member[()]).T.ravel(order="F") for member in members]
    count = len(columns[0])
    budget.take_items(count * len(columns), where)
    return [
        {name: _from_h5(handle[column[i]], handle, budget, f"{where}({i + 1}).{name}")
         for name, column in zip(fields, columns)}
        for i in range(count)
    ]


def _empty(matlab_class: str, dims, budget: Budget, where: str):
    if matlab_class == "cell":
        return []
    if matlab_class == "char":
        return ""
    if matlab_class == "struct":
        return {}
    dtype = np.dtype({"single": np.float32, "logical": bool}.get(matlab_class, np.float64))
    shape = tuple(int(d) for d in np.asarray(dims).reshape(-1)) or (0, 0)
    budget.take(math.prod(shape) * dtype.itemsize, f"{where} (empty, declared {'x'.join(map(str, shape))})")
    return np.zeros(shape, dtype=dtype)


# -- finding the network ----------------------------------------------------------------


@dataclass
class RawNetwork:
    """A network as found in the file, before layer conversion (what ``inspect`` shows)."""

    path: str
    sha256: str
    mat_version: str  # "5" or "7.3"
    layout: str  # "release" or "zoo"
    layers: list  # raw layer dicts, as read
    input_size: tuple[int, int, int]
    mean: np.ndarray | None  # (3,) float32, RGB; None when the file has no averageImage
    class_names: list[str]
    standin_note: str | None = None  # the gender_cli_standin text, when present
    notes: list[str] = field(default_factory=list)  # what was inferred or reduced
    channels_known: bool = True  # False: no imageSize, the first conv says how many

    @property
    def standin(self) -> bool:
        return self.standin_note is not None


def read_raw(path) -> RawNetwork:
    """Locate layers, normalization and classes in a MAT-file; layers stay unconverted."""
    path = Path(path)
    version, variables = load_variables(path)
    sha256 = sha256_file(path)
    if isinstance(variables.get("net"), dict):
        layout, container = "release", variables["net"]
        meta = container.get("meta") if isinstance(container.get("meta"), dict) else container
    elif "layers" in variables:
        layout, container = "zoo", variables
        meta = variables.get("meta") if isinstance(variables.get("meta"), dict) else {}
    else:
        found = ", ".join(sorted(variables)) or "none"
        raise ModelFileError(
            f"{path}: no MatConvNet network: expected a 'net' struct or a 'layers' variable "
            f"(variables found: {found})"
        )
    if "layers" not in container:
        raise ModelFileError(f"{path}: the 'net' struct has no 'layers' field")
    layers = container["layers"]
    if isinstance(layers, dict):
        layers = [layers]
    if not isinstance(layers, list) or not layers:
        raise ModelFileError(f"{path}: 'layers' is not a non-empty cell array of layer structs")
    normalization = _struct(meta.get("normalization")) or _struct(container.get("normalization"))
    notes: list[str] = []
    if not normalization:
        notes.append("the file has no normalization (no mean, no input size)")
    raw = RawNetwork(
        path=str(path),
        sha256=sha256,
        mat_version=version,
        layout=layout,
        layers=layers,
        input_size=_input_size(normalization, notes, path),
        mean=_mean(normalization, notes, path),
        class_names=_class_names(_struct(meta.get("classes")) or _struct(container.get("classes"))),
        notes=notes,
        channels_known=_has(normalization, "imageSize"),
    )
    marker = variables.get(STANDIN_VARIABLE)
    if marker is not None:
        raw.standin_note = marker if isinstance(marker, str) and marker else "stand-in weights"
    return raw


def _struct(value) -> dict:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, dict) else {}


def _has(normalization: dict, key: str) -> bool:
    value = normalization.get(key)
    return value is not None and np.size(value) > 0


def _input_size(normalization: dict, notes: list[str], path: Path) -> tuple[int, int, int]:
    value = normalization.get("imageSize")
    if not _has(normalization, "imageSize"):
        notes.append("normalization.imageSize missing: assumed 224x224, channels from the first conv")
        return (224, 224, 3)
    try:
        dims = [int(round(float(x))) for x in np.asarray(value, dtype=np.float64).reshape(-1)]
    except (TypeError, ValueError):
        dims = []
    if len(dims) < 2 or len(dims) > 4 or min(dims) < 1:
        raise ModelFileError(f"{path}: normalization.imageSize = {value!r} is not [H W C]")
    channels = dims[2] if len(dims) > 2 else 3
    return (dims[0], dims[1], channels)


def _mean(normalization: dict, notes: list[str], path: Path) -> np.ndarray | None:
    value = normalization.get("averageImage")
    if value is None or (not isinstance(value, (str, list, dict)) and np.size(value) == 0):
        return None
    if isinstance(value, (str, list, dict)):
        raise ModelFileError(f"{path}: normalization.averageImage is not numeric")
    image = np.asarray(value, dtype=np.float64)
    if image.size == 3:
        return image.reshape(3).astype(np.float32)
    if image.ndim == 3 and image.shape[2] == 3:
        notes.append(
            f"averageImage is a {'x'.join(map(str, image.shape))} image: "
            "reduced to its per-channel mean"
        )
        return image.mean(axis=(0, 1)).astype(np.float32)
    raise ModelFileError(
        f"{path}: normalization.averageImage has shape {'x'.join(map(str, image.shape))}; "
        "expected 3 values or an HxWx3 image"
    )


def _class_names(classes: dict) -> list[str]:
    for key in ("description", "name"):
        names = classes.get(key)
        if isinstance(names, str):
            names = [names]
        if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
            return names
    return []


# -- conversion -------------------------------------------------------------------------


def read_source(path) -> SourceFile:
    """Every layer of a MAT-file, converted where gender-cli knows its type.

    A layer of an unknown type keeps its place with the reason (``problem``); a
    malformed layer of a known type (wrong weight shapes) raises ModelFileError.
    """
    raw = read_raw(path)
    raw_layers, raw.layers = raw.layers, []
    entries = []
    for index in range(1, len(raw_layers) + 1):
        entries.append(_entry(raw_layers[index - 1], index, raw.path))
        raw_layers[index - 1] = None  # the entry holds what is still needed
    channels = raw.input_size[2]
    if not raw.channels_known:
        first_conv = next((e.layer for e in entries if e.layer is not None and e.layer.type == "conv"), None)
        channels = int(first_conv.weights.shape[2]) if first_conv is not None else channels
    check_channels(entries, channels, raw.path)
    if raw.mean is None:
        raw.notes.append("no normalization.averageImage: convert needs --mean R,G,B")
    return SourceFile(
        path=raw.path,
        sha256=raw.sha256,
        format="mat",
        detail=f"MatConvNet SimpleNN, MAT v{raw.mat_version}, {raw.layout} layout",
        entries=entries,
        input_size=(raw.input_size[0], raw.input_size[1], channels),
        mean=raw.mean,
        class_names=raw.class_names,
        standin_note=raw.standin_note,
        notes=raw.notes,
        mat_version=raw.mat_version,
        layout=raw.layout,
    )


def _entry(raw: dict, index: int, path) -> LayerEntry:
    name = raw_name(raw, index) if isinstance(raw, dict) else f"layer{index}"
    layer_type = raw_type(raw) if isinstance(raw, dict) else ""
    try:
        layer = convert_layer(raw, index)
    except UnsupportedLayerError as exc:
        entry = LayerEntry(index, name, layer_type, None, problem=_without_label(str(exc)))
        if layer_type not in converters():
            entry.params = _loose_param_count(raw)
        return entry
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    return LayerEntry(index, name, layer_type, layer, params=layer.num_params)


def _without_label(message: str) -> str:
    # convert_layer's messages start with "layer N 'name' (type): "; the entry says so itself.
    head, sep, rest = message.partition("): ")
    return rest if sep and head.startswith("layer ") else message


def _loose_param_count(raw: dict) -> int:
    """Numeric arrays under weights/filters/biases of a layer gender-cli cannot convert."""
    try:
        weights, bias = conv_arrays(raw, "")
        return int(weights.size + bias.size)
    except ModelFileError:
        pass
    total = 0
    for key in ("weights", "filters", "biases"):
        value = raw.get(key)
        items = value if isinstance(value, list) else [value]
        total += sum(int(item.size) for item in items if isinstance(item, np.ndarray) and item.dtype.kind in "fiu")
    return total


def read_mat(path, mean=None) -> Network:
    """Read a MatConvNet file into a :class:`Network` (ModelFileError/UnsupportedLayerError).

    ``mean`` (RGB) is required when the file has no ``normalization.averageImage``.
    """
    return to_network(read_source(path), mean)
