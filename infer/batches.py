"""Decode images in background threads, ahead of inference, in fixed-shape batches.

``iter_batches`` keeps up to ``prefetch`` batches being decoded by a thread pool
while the caller runs the model on the current one (Pillow releases the GIL while
decoding and resizing, so threads overlap well with onnxruntime). Batches come out
in input order. Each worker writes its image straight into the batch array; an input
that fails leaves its slot zero and records an :class:`ImageError`. Inputs are what
``images.load_image`` takes: file names (what ``classify`` reads) or, from the Python
API, raw bytes, arrays and PIL images.

Stopping early (``break``, ``generator.close()``, an exception or Ctrl-C in the
consumer) cancels the queued decodes and joins the threads before returning.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from gender_cli.errors import StoreLost
from gender_cli.infer.images import DEFAULT_RESIZE, ImageError, ImageInput, Read, load_image
from gender_cli.system import available_cpus

DEFAULT_BATCH = 64  # images per inference batch unless a run says otherwise


@dataclass
class Batch:
    """``images[i]`` holds input ``paths[i]`` (or zeros when ``i in errors``); slots past
    ``len(paths)`` are zero padding that keeps the batch shape fixed. ``start`` is the
    position of ``paths[0]`` in the whole list."""

    paths: Sequence[ImageInput]
    images: np.ndarray
    errors: dict[int, ImageError] = field(default_factory=dict)
    start: int = 0

    def __len__(self) -> int:
        return len(self.paths)


def iter_batches(
    paths: Sequence[ImageInput],
    batch_size: int,
    size: tuple[int, int] = (224, 224),
    resize: str = DEFAULT_RESIZE,
    workers: int | None = None,
    prefetch: int = 3,
    fixed_shape: bool = False,
    read: Read | None = None,
) -> Iterator[Batch]:
    """Yield :class:`Batch` objects covering ``paths`` (any inputs ``load_image`` takes)
    in order; ``read`` reads a named file (default: the local disk).

    Each batch has ``batch_size`` slots, or fewer when there are fewer inputs (a job of
    3 files makes batches of 3), unless ``fixed_shape`` asks for exactly ``batch_size``.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    inputs = list(paths)
    if not fixed_shape:
        batch_size = min(batch_size, max(1, len(inputs)))
    height, width = size
    executor = ThreadPoolExecutor(max_workers=workers or available_cpus(), thread_name_prefix="decode")
    pending: deque[tuple[Batch, list[Future]]] = deque()
    starts = iter(range(0, len(inputs), batch_size))

    def submit_next() -> None:
        start = next(starts, None)
        if start is None:
            return
        batch = Batch(
            paths=inputs[start : start + batch_size],
            images=np.zeros((batch_size, height, width, 3), dtype=np.uint8),
            start=start,
        )
        futures = [
            executor.submit(decode_into, batch, index, size, resize, read) for index in range(len(batch.paths))
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


def decode_into(batch: Batch, index: int, size: tuple[int, int], resize: str, read: Read | None = None) -> None:
    """Decode input ``index`` of ``batch`` into its slot, or record why it failed (raises
    only :class:`StoreLost`: the store holding the files stopped answering)."""
    try:
        batch.images[index] = load_image(batch.paths[index], size=size, resize=resize, read=read)
    except ImageError as exc:
        batch.errors[index] = exc
    except StoreLost:
        raise  # not this file's fault: the run stops, and a resumed run reads it
    except Exception as exc:  # a Pillow bug must cost one row, not the whole run
        batch.errors[index] = ImageError("corrupt", f"{type(exc).__name__}: {exc}")
