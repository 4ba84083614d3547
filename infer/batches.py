"""Decode images in background threads, ahead of inference, in fixed-shape batches.

``iter_batches`` keeps up to ``prefetch`` batches being decoded by a thread pool
while the caller runs the model on the current one (Pillow releases the GIL while
decoding and resizing, so threads overlap well with onnxruntime). Batches come out
in input order. Each worker writes its image straight into the batch array; a file
that fails leaves its slot zero and records an :class:`ImageError`.

Stopping early (``break``, ``generator.close()``, an exception or Ctrl-C in the
consumer) cancels the queued decodes and joins the threads before returning.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gender_cli.infer.images import ImageError, load_image
from gender_cli.system import available_cpus


@dataclass
class Batch:
    """``images[i]`` holds ``paths[i]`` (or zeros when ``i in errors``); rows past
    ``len(paths)`` are zero padding that keeps the batch shape fixed."""

    paths: list[Path]
    images: np.ndarray
    errors: dict[int, ImageError] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)


def iter_batches(
    paths: Sequence[str | os.PathLike],
    batch_size: int,
    size: tuple[int, int] = (224, 224),
    resize: str = "stretch",
    workers: int | None = None,
    prefetch: int = 3,
    fixed_shape: bool = False,
) -> Iterator[Batch]:
    """Yield :class:`Batch` objects covering ``paths`` in order.

    Each batch has ``batch_size`` slots, or fewer when there are fewer files (a job of
    3 files makes batches of 3), unless ``fixed_shape`` asks for exactly ``batch_size``.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    paths = [Path(p) for p in paths]
    if not fixed_shape:
        batch_size = min(batch_size, max(1, len(paths)))
    height, width = size
    executor = ThreadPoolExecutor(max_workers=workers or available_cpus(), thread_name_prefix="decode")
    pending: deque[tuple[Batch, list[Future]]] = deque()
    starts = iter(range(0, len(paths), batch_size))

    def submit_next() -> None:
        start = next(starts, None)
        if start is None:
            return
        batch = Batch(
            paths=paths[start : start + batch_size],
            images=np.zeros((batch_size, height, width, 3), dtype=np.uint8),
        )
        futures = [
            executor.submit(decode_into, batch, index, size, resize) for index in range(len(batch.paths))
        ]
        pending.append((batch, futures))

    try:
        for _ in range(max(1, prefetch)):
            submit_next()
        while pending:
            batch, futures = pending.popleft()
            for future in futures:
                future.result()
            submit_next()
            yield batch
    finally:
        for _, futures in pending:
            for future in futures:
                future.cancel()
        executor.shutdown(wait=True, cancel_futures=True)


def decode_into(batch: Batch, index: int, size: tuple[int, int], resize: str, read=None) -> None:
    """Decode ``batch.paths[index]`` into its slot, or record why it failed (never raises)."""
    try:
        batch.images[index] = load_image(batch.paths[index], size=size, resize=resize, read=read)
    except ImageError as exc:
        batch.errors[index] = exc
    except Exception as exc:  # a Pillow bug must cost one row, not the whole run
        batch.errors[index] = ImageError("corrupt", f"{type(exc).__name__}: {exc}")
