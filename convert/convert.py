"""The ``convert`` verb's work: weights file → layer table (``network/``), a head, ``model.keras``.

The layer table (TF-free, what ``export``, ``train`` and ``bench`` read) is always
written; a ready classifier (deepface's gender model) also gets its head in the
``head.json`` + ``head_weights.npz`` contract that ``train`` writes; ``model.keras`` only
when asked (``keras=True``), since nothing else reads it and it holds the weights a
second time. All outputs are written into a temporary folder beside the destination
and moved into place only when complete, so an interrupted convert never leaves a
half-written model where the next verb would find it.
"""

from __future__ import annotations

import os
import shutil
import time
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Callable

from gender_cli import workspace
from gender_cli.convert.network import Network
from gender_cli.convert.source import NETWORK_SUBDIR, load_network, network_folder
from gender_cli.convert.source_file import Head
from gender_cli.errors import GenderCliError
from gender_cli.head_spec import SPEC_FILE, HeadSpec

KERAS_FILE = "model.keras"
HEAD_SUBDIR = "head"
OUTPUTS = (NETWORK_SUBDIR, HEAD_SUBDIR, KERAS_FILE)
COPY_CHUNK_BYTES = 16 * 2**20


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to replace a folder holding anything but a previous convert's outputs."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise GenderCliError(f"output {out_dir} exists and is not a folder")
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in OUTPUTS)
    if foreign:
        raise GenderCliError(
            f"output folder {out_dir} holds other files ({', '.join(foreign[:5])}); "
            "choose an empty or new folder with -o"
        )


def _move_into_place(staging: Path, out_dir: Path) -> None:
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    if out_dir.exists():
        out_dir.rename(old)
    staging.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def save_keras_archive(model, path: Path) -> None:
    """Write ``model`` as a ``.keras`` archive without holding the weights in memory twice.

    ``model.save("x.keras")`` builds the weights file in memory (and copies it once more
    into the zip) when RAM looks plentiful: 1.2 GB extra for VGG-Face. Saving unzipped
    (``zipped=False``: config.json, metadata.json, model.weights.h5 on disk) and storing
    those files uncompressed in a zip gives the same archive with no such peak.
    """
    unzipped = path.with_name(path.name + ".parts")
    shutil.rmtree(unzipped, ignore_errors=True)
    try:
        model.save(unzipped, zipped=False)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
            for file in sorted(p for p in unzipped.rglob("*") if p.is_file()):
                name = file.relative_to(unzipped).as_posix()
                large = file.stat().st_size >= zipfile.ZIP64_LIMIT
                # 16 MiB copies: ZipFile.write's 8 KiB loop triples the time for 580 MB
                with archive.open(name, "w", force_zip64=large) as member, open(file, "rb") as source:
                    shutil.copyfileobj(source, member, COPY_CHUNK_BYTES)
    finally:
        shutil.rmtree(unzipped, ignore_errors=True)


def _without_arrays(network: Network) -> Network:
    """A copy of ``network``'s description only, letting the weight arrays be freed."""
    return replace(network, layers=[])


def _read(src: Path, prototxt, mean) -> tuple[Network, Head | Path | None]:
    """(network, head): a Head read from a weights file, or a converted folder's head/."""
    if src.is_dir():
        if prototxt is not None or mean is not None:
            raise GenderCliError("--prototxt and --mean apply to weights files, not to a converted folder")
        network = load_network(src)
        folder = network_folder(src)
        head_dir = folder.parent / HEAD_SUBDIR if folder is not None else None
        return network, head_dir if head_dir is not None and (head_dir / SPEC_FILE).is_file() else None
    from gender_cli.convert.formats import read_network

    return read_network(src, prototxt, mean)


def _save_head(head: Head | Path, network: Network, source: Path, directory: Path) -> HeadSpec:
    if isinstance(head, Path):  # a converted folder's head: copy it as it is
        shutil.copytree(head, directory)
        return HeadSpec.load(directory)[0]
    directory.mkdir()
    spec = HeadSpec(
        descriptor=head.descriptor,
        input_dim=int(head.kernels[0].shape[0]),
        hidden=[int(k.shape[1]) for k in head.kernels[:-1]],
        dropout=0.0,
        labels=list(head.labels),
        threshold=0.5,  # a 2-way softmax's own decision: the larger probability wins
        backbone_sha256=network.source_sha256,
        standin=bool(network.standin),
        source=f"{source.name} ({network.source_format}): outputs {', '.join(head.source_labels)}, not trained here",
    )
    spec.save(directory, head.kernels, head.biases)
    return spec


def _output_shape(network: Network) -> tuple[int, ...]:
    """(H, W, C) of the last layer's output, as model.keras reports it."""
    from gender_cli.convert.layer_plan import plan

    shape = plan(network)[-1].output_shape
    return (1, 1, shape[0]) if len(shape) == 1 else (shape[1], shape[2], shape[0])


def _disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def convert(
    src,
    out_dir=None,
    progress: Callable[[str], None] | None = None,
    prototxt=None,
    mean=None,
    keras: bool = False,
) -> dict:
    """Convert ``src`` (a weights file of any format, or a converted folder) into ``out_dir``.

    ``out_dir`` defaults to the workspace's ``converted/``. ``prototxt`` is a Caffe deploy
    file, ``mean`` an RGB mean for a file without one, ``keras`` also writes
    ``model.keras``. ``progress`` is called with the name of each step as it starts.
    Returns a summary dict (paths, counts, timing, provenance).
    """
    say = progress or (lambda step: None)
    started = time.perf_counter()
    src = Path(src).expanduser()
    out_dir = Path(out_dir).expanduser() if out_dir is not None else workspace.converted_dir()
    _check_replaceable(out_dir)

    say("reading weights")
    network, head = _read(src, prototxt, mean)
    layer_count, params = len(network.layers), int(network.num_params)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    head_spec = None
    output_shape = list(_output_shape(network))
    try:
        staging.mkdir()
        say("saving layer table")
        network.save(staging / NETWORK_SUBDIR)
        network = _without_arrays(network)  # the weights read from the source can go now
        if head is not None:
            say("saving head")
            head_spec = _save_head(head, network, src, staging / HEAD_SUBDIR)
        if keras:
            from gender_cli.convert.keras_model import build_keras_model  # TensorFlow from here on

            say("building Keras model")
            # Built from the memory-mapped table just written: one in-memory copy (TensorFlow's).
            model = build_keras_model(Network.load(staging / NETWORK_SUBDIR, mmap=True))
            say("saving Keras model")
            save_keras_archive(model, staging / KERAS_FILE)
            del model
        disk = _disk_bytes(staging)
        _move_into_place(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    return {
        "source": str(src),
        "format": network.source_format,
        "out_dir": str(out_dir),
        "network_dir": str(out_dir / NETWORK_SUBDIR),
        "head_dir": str(out_dir / HEAD_SUBDIR) if head_spec is not None else None,
        "head_labels": list(head_spec.labels) if head_spec is not None else None,
        "keras_model": str(out_dir / KERAS_FILE) if keras else None,
        "layers": layer_count,
        "params": params,
        "input_size": list(network.input_size),
        "output_shape": output_shape,
        "classes": len(network.class_names),
        "mat_version": network.mat_version,
        "layout": network.layout,
        "preprocessing": network.preprocessing,
        "sha256": network.source_sha256,
        "standin": bool(network.standin),
        "disk_bytes": disk,
        "seconds": round(time.perf_counter() - started, 2),
    }
