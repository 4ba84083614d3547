"""The Ray Data stages of ``classify --engine ray``, and how the model reaches them.

- ``decode`` runs as a CPU task per block of file names. It fills a uint8 image array
  with ``batches.decode_into``, the local engine's decode (same ``load_image``, same
  error categories); a file that fails becomes ``(category, message)`` columns and
  never an exception, so a broken file costs its own row and nothing else.
- ``decode_faces`` (``classify --detect``) runs instead of ``decode``: the local
  engine's ``faces.find_faces`` per file, one output row per face (its aligned crop and
  face columns) or one error row for a file without a crop (``no_face`` or its image
  error), plus ``aligned`` (whether the eyes were levelled) for the summary.
- ``Classifier`` is an actor holding one onnxruntime session, opened by
  ``session.load_classifier`` (the same checks as locally) on CUDA when the actor was
  given a GPU, else on CPU. Its rows come from ``rows.batch_rows``, the local
  engine's per-batch function; the batch is padded to the fixed batch shape on CUDA
  (cuDNN chooses its algorithms once) and for graphs exported with a static N.
- The model travels through the object store (``ship_model``): the driver puts the
  graph's bytes (and its external-data side file, if any) once; each actor writes them
  into a private temporary folder, opens the session and removes the folder. Nothing
  assumes a disk shared with the driver, and a restarted actor fetches them again.

Rows travel back to the driver as columns (``row_columns``), plus ``provider`` (the
execution provider that ran the batch, for the summary); file names travel as bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gender_cli import contract
from gender_cli.infer.batches import Batch, decode_into
from gender_cli.infer.detect import FACE_COLUMNS
from gender_cli.infer.row_columns import decode_names, encode_face_cells, rows_to_columns
from gender_cli.infer.rows import batch_rows


def decode(batch: dict[str, np.ndarray], size: tuple[int, int], resize: str, reader=None) -> dict[str, np.ndarray]:
    """File names -> images (zeros where a file failed) and per-file error columns."""
    paths = decode_names(batch["path"])
    decoded = Batch(paths=paths, images=np.zeros((len(paths), size[0], size[1], 3), dtype=np.uint8))
    for index in range(len(paths)):
        decode_into(decoded, index, size, resize, read=reader)
    failed = [decoded.errors.get(index) for index in range(len(paths))]
    return {
        "path": np.array(batch["path"], dtype=object),
        "image": decoded.images,
        "error_category": np.array([e.category if e else "" for e in failed], dtype=object),
        "error_message": np.array([e.message if e else "" for e in failed], dtype=object),
    }


def decode_faces(batch: dict[str, np.ndarray], size: tuple[int, int], settings, reader=None) -> dict[str, np.ndarray]:
    """File names -> one row per face found (crops), or one error row per file without one."""
    from gender_cli.infer.faces import FaceEntry, face_columns, find_faces

    paths = decode_names(batch["path"])
    names, crops, errors, extra, aligned = [], [], [], [], []
    for index, (name, path) in enumerate(zip(batch["path"], paths)):
        found = find_faces(index, path, settings, size, read=reader)
        for number in range(len(found.faces) or 1):
            entry = FaceEntry(found, number if found.faces else None, None, False)
            names.append(name)
            crops.append(found.faces[number].crop if found.faces else np.zeros((*size, 3), dtype=np.uint8))
            errors.append(found.error if not found.faces else ("", ""))
            extra.append(face_columns(entry))
            aligned.append(bool(found.faces) and found.faces[number].aligned)
    return {
        "path": np.array(names, dtype=object),
        "image": np.stack(crops) if crops else np.zeros((0, *size, 3), dtype=np.uint8),
        "error_category": np.array([category for category, _ in errors], dtype=object),
        "error_message": np.array([message for _, message in errors], dtype=object),
        "aligned": np.array(aligned, dtype=bool),
        **encode_face_cells(extra),
    }


@dataclass(frozen=True)
class Failure:
    """Why a row has no prediction, as the decode stage sent it (an image error's
    category, or ``no_face``); worded in the row as locally: "category: message"."""

    category: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ShippedModel:
    """A classifier's files in the object store: (file name, reference to its bytes)."""

    name: str
    parts: tuple[tuple[str, object], ...]

    def open(self, device: str, threads: int):
        """Fetch the files, open the session, remove the files (the session keeps what it needs)."""
        import ray

        from gender_cli.infer.session import load_classifier  # here: decode tasks need no onnxruntime

        folder = tempfile.mkdtemp(prefix="gender-cli-model-")
        try:
            for name, ref in self.parts:
                np.asarray(ray.get(ref)).tofile(os.path.join(folder, name))
            return load_classifier(os.path.join(folder, self.name), device, threads=threads)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def ship_model(path: str | os.PathLike) -> ShippedModel:
    """Put the graph (and its external-data side file) into the object store, once."""
    import ray

    path = Path(path)
    side = path.with_name(contract.external_data_name(path.name))
    files = [path, side] if side.is_file() else [path]
    return ShippedModel(path.name, tuple((f.name, ray.put(np.fromfile(f, dtype=np.uint8))) for f in files))


class Classifier:
    """One inference actor: a session, and the local engine's rows for each batch."""

    def __init__(self, model: ShippedModel, device: str, threads: int, batch_size: int):
        self.model = model.open(device, threads)
        self.pad_to = (self.model.fixed_batch or batch_size) if self.model.pads_batches else None
        self.provider = self.model.providers[0]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        faces = "face" in batch  # rows from decode_faces: one per face
        paths = decode_names(batch["path"])
        images = batch["image"]
        errors = {
            index: Failure(category, message)
            for index, (category, message) in enumerate(zip(batch["error_category"], batch["error_message"]))
            if category
        }
        if self.pad_to and len(paths) < self.pad_to:
            padded = np.zeros((self.pad_to, *images.shape[1:]), dtype=np.uint8)
            padded[: len(paths)] = images
            images = padded
        rows = batch_rows(self.model, Batch(paths=paths, images=images, errors=errors))
        info = self.model.info
        columns = rows_to_columns(rows, len(info.gender_labels), info.value_columns)
        columns["provider"] = np.array([self.provider] * len(rows), dtype=object)
        if faces:  # already encoded by decode_faces: passed through as they came
            columns.update({name: batch[name] for name in (*FACE_COLUMNS, "aligned")})
        return columns
