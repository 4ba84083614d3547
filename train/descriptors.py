"""Backbone descriptors for a list of images, through the backbone ONNX graph, cached.

The backbone graph is ``workspace.backbone_path(descriptor)`` when that file was made
from the same source weights (metadata ``source_sha256``) for the same descriptor;
otherwise it is (re)made with ``export.export.export(network, ..., head=None)``.
No TensorFlow is involved.

Cache (``workspace.descriptor_cache_dir()/<descriptor>-<backbone id>-<H>x<W>-<crop>/``,
where ``<crop>`` is the resize mode, or the face detection settings' key with
``faces``):

* an image is identified by its resolved path, size in bytes and ``mtime_ns`` (cheap,
  no reading; an edited or replaced file gets a new identity and is extracted again);
* the backbone by its source sha256 (or, for a network that has none, a hash of its
  weights), so descriptors of different weights or layers never mix;
* descriptors are written in shards (``shard-*.npz``: keys, descriptors and the
  images that failed to decode, with category and message), each written to a
  temporary name and renamed when complete. An interrupted extraction loses at most
  the shard in progress; a rerun reads every complete shard and extracts the rest.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from gender_cli.atomic import names_file
from gender_cli import workspace
from gender_cli.contract import DESCRIPTOR, Meta, descriptor_spec
from gender_cli.devices import DEFAULT_DEVICE
from gender_cli.errors import GenderCliError
from gender_cli.train.batch_runner import model_image_size, model_resize, run_over_paths

SHARD_GLOB = "shard-*.npz"
DEFAULT_SHARD_BATCHES = 8


def backbone_identity(network) -> str:
    """The source weights' sha256, or a hash of the weights for a network built in memory."""
    if network.source_sha256:
        return network.source_sha256
    digest = hashlib.sha256()
    for layer in network.layers:
        digest.update(layer.name.encode())
        for array in (layer.weights, layer.bias):
            if array is not None:
                digest.update(np.ascontiguousarray(array).tobytes())
    return "weights-" + digest.hexdigest()


def ensure_backbone(network, descriptor: str, device: str = DEFAULT_DEVICE, progress=None):
    """An open session on a backbone graph for ``network`` and ``descriptor``; (re)exported if stale.

    Returns ``(loaded_model, path, exported: bool)``.
    """
    from gender_cli.infer.session import open_session

    path = workspace.backbone_path(descriptor)
    if path.is_file() and network.source_sha256:
        try:
            loaded = open_session(path, device=device)
            raw = loaded.info.raw
            if (
                raw.get(Meta.SOURCE_SHA256) == network.source_sha256
                and raw.get(Meta.DESCRIPTOR) == descriptor
                and raw.get(Meta.KIND, "backbone") == "backbone"
            ):
                return loaded, path, False
        except GenderCliError:
            pass  # unreadable or foreign file: make a fresh one below
    from gender_cli.export.export import export

    path.parent.mkdir(parents=True, exist_ok=True)
    export(network, path, descriptor=descriptor, head=None, progress=progress)
    return open_session(path, device=device), path, True


def image_key(path: Path) -> str | None:
    """Identity of an image file for the cache; None when it cannot be stat'ed."""
    try:
        resolved = Path(path).resolve()
        st = resolved.stat()
    except OSError:
        return None
    return hashlib.sha1(f"{resolved}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()


@dataclass
class DescriptorCache:
    folder: Path
    rows: dict[str, tuple[Path, int]] = field(default_factory=dict)  # key -> (shard, row)
    failures: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (category, msg)

    @classmethod
    def open(cls, folder: Path) -> "DescriptorCache":
        folder.mkdir(parents=True, exist_ok=True)
        cache = cls(folder)
        for shard in sorted(folder.glob(SHARD_GLOB)):
            try:
                with np.load(shard) as z:
                    keys = z["keys"].tolist()
                    failed = zip(z["failed_keys"].tolist(), z["failed_categories"].tolist(),
                                 z["failed_messages"].tolist())
                    for row, key in enumerate(keys):
                        cache.rows[key] = (shard, row)
                    for key, category, message in failed:
                        cache.failures[key] = (category, message)
            except (OSError, KeyError, ValueError):
                continue  # a damaged shard is ignored; its images are extracted again
        return cache

    def write_shard(self, keys: list[str], descriptors: np.ndarray,
                    failures: dict[str, tuple[str, str]]) -> Path:
        name = f"shard-{time.time_ns():020d}-{os.getpid()}.npz"
        final = self.folder / name
        partial = self.folder / (name + ".partial")
        with names_file(final), partial.open("wb") as fh:
            np.savez(
                fh,
                keys=np.array(keys, dtype="U40"),
                descriptors=np.asarray(descriptors, np.float32),
                failed_keys=np.array(list(failures), dtype="U40"),
                failed_categories=np.array([c for c, _ in failures.values()], dtype=str),
                failed_messages=np.array([m for _, m in failures.values()], dtype=str),
            )
            fh.flush()
            os.fsync(fh.fileno())
        partial.replace(final)
        for row, key in enumerate(keys):
            self.rows[key] = (final, row)
        self.failures.update(failures)
        return final

    def read(self, keys: list[str], dim: int) -> np.ndarray:
        out = np.zeros((len(keys), dim), np.float32)
        by_shard: dict[Path, list[tuple[int, int]]] = {}
        for i, key in enumerate(keys):
            shard, row = self.rows[key]
            by_shard.setdefault(shard, []).append((i, row))
        for shard, pairs in by_shard.items():
            with np.load(shard) as z:
                array = z["descriptors"]
            targets, rows = zip(*pairs)
            out[list(targets)] = array[list(rows)]
        return out


@dataclass
class DescriptorResult:
    descriptors: np.ndarray  # (N, D) float32; zeros where the image failed
    ok: np.ndarray  # (N,) bool
    failures: dict[int, tuple[str, str]]  # index -> (category, message)
    cached: int  # images (decoded or failed) found in the cache
    extracted: int  # images run through the backbone now
    seconds: float
    backbone_path: Path
    backbone_exported: bool
    cache_dir: Path
    providers: list[str] = field(default_factory=list)  # onnxruntime providers really used
    notice: str | None = None  # e.g. "CUDA unavailable (...); running on CPU"

    @property
    def images_per_second(self) -> float | None:
        return self.extracted / self.seconds if self.extracted and self.seconds > 0 else None


def cache_folder(network, descriptor: str, size: tuple[int, int], resize: str) -> Path:
    ident = backbone_identity(network)
    short = ident.replace("weights-", "w")[:17]
    return workspace.descriptor_cache_dir() / f"{descriptor}-{short}-{size[0]}x{size[1]}-{resize}"


def extract_descriptors(
    paths: list[Path],
    network,
    descriptor: str = "relu7",
    batch_size: int = 32,
    workers: int | None = None,
    device: str = DEFAULT_DEVICE,
    progress: bool = True,
    shard_batches: int = DEFAULT_SHARD_BATCHES,
    on_shard: Callable[[int], None] | None = None,
    faces=None,
) -> DescriptorResult:
    """Descriptors of ``paths`` (cached ones read, the rest extracted and cached); with
    ``faces`` (infer.detect.FaceSettings), of each image's largest face."""
    descriptor_spec(descriptor)
    loaded, backbone, exported = ensure_backbone(network, descriptor, device=device)
    size = model_image_size(loaded)
    crop = faces.key() if faces is not None else model_resize(loaded)
    cache = DescriptorCache.open(cache_folder(network, descriptor, size, crop))

    keys = [image_key(p) for p in paths]
    failures: dict[int, tuple[str, str]] = {}
    todo: list[int] = []
    for i, key in enumerate(keys):
        if key is None:
            failures[i] = ("unreadable", f"cannot stat {paths[i]}")
        elif key in cache.failures:
            failures[i] = cache.failures[key]
        elif key not in cache.rows:
            todo.append(i)
    cached = len(paths) - len(todo) - sum(1 for k in keys if k is None)

    started = time.perf_counter()
    pending_keys: list[str] = []
    pending_rows: list[np.ndarray] = []
    pending_failures: dict[str, tuple[str, str]] = {}
    shards_written = 0
    batches_in_shard = 0
    seen_keys: set[str] = set()

    def flush() -> None:
        nonlocal pending_keys, pending_rows, pending_failures, shards_written, batches_in_shard
        if pending_keys or pending_failures:
            rows = np.concatenate(pending_rows) if pending_rows else np.zeros((0, 0), np.float32)
            cache.write_shard(pending_keys, rows, pending_failures)
            shards_written += 1
            if on_shard is not None:
                on_shard(shards_written)
        pending_keys, pending_rows, pending_failures, batches_in_shard = [], [], {}, 0

    # The same file listed twice is extracted once.
    unique_todo = []
    for i in todo:
        if keys[i] not in seen_keys:
            seen_keys.add(keys[i])
            unique_todo.append(i)
    todo_paths = [paths[i] for i in unique_todo]
    for result in run_over_paths(loaded, todo_paths, DESCRIPTOR, batch_size, workers, progress,
                                 desc=f"descriptors {descriptor}", faces=faces):
        for local, (category, message) in result.failures.items():
            pending_failures[keys[unique_todo[local]]] = (category, message)
        if result.indices:
            pending_keys.extend(keys[unique_todo[local]] for local in result.indices)
            pending_rows.append(result.outputs.reshape(len(result.indices), -1))
        batches_in_shard += 1
        if batches_in_shard >= shard_batches:
            flush()
    flush()
    seconds = time.perf_counter() - started

    for i in todo:
        if keys[i] in cache.failures:
            failures[i] = cache.failures[keys[i]]
    ok = np.array([i not in failures for i in range(len(paths))], bool)
    dim = _descriptor_dim(loaded, cache, [keys[i] for i in np.flatnonzero(ok)])
    descriptors = np.zeros((len(paths), dim), np.float32)
    if ok.any():
        descriptors[ok] = cache.read([keys[i] for i in np.flatnonzero(ok)], dim)
    return DescriptorResult(
        descriptors=descriptors, ok=ok, failures=failures, cached=cached,
        extracted=len(unique_todo), seconds=seconds, backbone_path=backbone,
        backbone_exported=exported, cache_dir=cache.folder, providers=list(loaded.providers),
        notice=loaded.notice,
    )


def _descriptor_dim(loaded, cache: DescriptorCache, keys: list[str]) -> int:
    dim = loaded.info.raw.get(Meta.DESCRIPTOR_DIM)
    if dim:
        return int(dim)
    if keys:
        shard, _ = cache.rows[keys[0]]
        with np.load(shard) as z:
            return int(z["descriptors"].shape[1])
    return 0
