"""Run an exported ONNX graph over a list of image files, batch by batch.

Images are decoded by ``infer.batches.iter_batches`` in threads ahead of inference;
padded slots and images that failed to decode are dropped from the results, and the
failures come back with their category. Shared by descriptor extraction (backbone
graph) and ``evaluate`` (classifier graph). With ``faces`` (detection settings) each
image is represented by its largest face, found, aligned and cropped by
``infer.faces``; an image without a face fails with the category ``no_face``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from gender_cli.infer.images import DEFAULT_RESIZE


@dataclass
class BatchResult:
    indices: list[int]  # positions in the caller's path list of the decoded images
    values: dict[str, np.ndarray]  # output name -> rows for ``indices``, in that order
    failures: dict[int, tuple[str, str]]  # position -> (category, message)

    @property
    def outputs(self) -> np.ndarray:
        """The rows of the (first) output asked for."""
        return next(iter(self.values.values()))


def model_image_size(loaded) -> tuple[int, int]:
    size = loaded.info.input_size
    return int(size[0]), int(size[1])


def model_resize(loaded) -> str:
    return loaded.info.resize or DEFAULT_RESIZE


def run_over_paths(
    loaded,
    paths: list[Path],
    outputs: str | Sequence[str],
    batch_size: int = 32,
    workers: int | None = None,
    progress: bool = True,
    desc: str = "images",
    faces=None,
) -> Iterator[BatchResult]:
    """Yield one :class:`BatchResult` per batch of ``paths`` (in order), holding the
    graph's ``outputs`` (one name or several)."""
    from tqdm import tqdm

    from gender_cli.infer.batches import iter_batches

    names = [outputs] if isinstance(outputs, str) else list(outputs)
    bar = tqdm(total=len(paths), unit="img", desc=desc, disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    offset = 0
    try:
        if faces is not None:
            for result in _over_faces(loaded, paths, names, batch_size, workers, faces):
                yield result
                bar.update(len(result.indices) + len(result.failures))
            return
        for batch in iter_batches(
            list(paths), batch_size, size=model_image_size(loaded), resize=model_resize(loaded),
            workers=workers, fixed_shape=loaded.fixed_batch is not None,
        ):
            n = len(batch.paths)
            failures = {
                offset + i: (getattr(err, "category", "unreadable"), str(err))
                for i, err in batch.errors.items()
            }
            good = [i for i in range(n) if i not in batch.errors]
            if good:
                ran = loaded.run_batch(batch.images, n, names)
                values = {name: np.asarray(ran[name][good], np.float32) for name in names}
            else:
                values = {name: np.zeros((0, 0), np.float32) for name in names}
            yield BatchResult([offset + i for i in good], values, failures)
            offset += n
            bar.update(n)
    finally:
        bar.close()


def _over_faces(loaded, paths: list[Path], names: list[str], batch_size: int, workers: int | None, faces):
    """As run_over_paths, on the largest face of each image."""
    from dataclasses import replace

    from gender_cli.infer.faces import iter_face_batches

    for batch in iter_face_batches(list(paths), batch_size, model_image_size(loaded), replace(faces, max_faces=1),
                                   workers, fixed_shape=loaded.fixed_batch is not None):
        good = [entry for entry in batch.entries if entry.slot is not None]
        failures = {entry.file.index: entry.file.error for entry in batch.entries if entry.slot is None}
        values = {name: np.zeros((0, 0), np.float32) for name in names}
        if good:
            ran = loaded.run_batch(batch.images, batch.used, names)
            values = {name: np.asarray(ran[name][[entry.slot for entry in good]], np.float32) for name in names}
        yield BatchResult([entry.file.index for entry in good], values, failures)
