"""The input of ``train --from-scratch``: images decoded once per run through tf.data, in parallel.

:func:`decode_images` runs every image of the run through a ``tf.data`` pipeline whose
map step decodes ``num_parallel_calls`` files at once and keeps them in input order.
Each file is decoded exactly as ``classify`` decodes it (``infer.images.load_image``:
EXIF orientation, RGB, JPEG draft, bilinear stretch to the input size), or, with face
settings, cut as ``classify --detect`` cuts its largest face, so the network trains on
the pixels it will be given. The decoded images stay in memory for the run (the
per-run cache every epoch and stage reads); a file that cannot be read is recorded
with its category and left out, as descriptor extraction leaves it out.

:func:`training_dataset` turns cached rows into the batches one epoch reads: shuffled
with a seeded order that changes each epoch, with the targets and per-output sample
weights of the heads.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from gender_cli.system import available_cpus

DECODE_CHUNK = 256  # images gathered per step of the decode pass (progress granularity)


@dataclass
class DecodedImages:
    images: np.ndarray  # uint8 (N, H, W, 3); zeros where a file failed
    ok: np.ndarray  # bool (N,)
    failures: dict[int, tuple[str, str]] = field(default_factory=dict)  # index -> (category, message)
    seconds: float = 0.0
    workers: int = 1

    @property
    def images_per_second(self) -> float | None:
        return len(self.ok) / self.seconds if self.seconds > 0 else None


def _reader(size: tuple[int, int], faces):
    """path -> (uint8 (H, W, 3), None), or (None, (category, message)) for a file that gives no image."""
    from gender_cli.infer.images import load_image

    if faces is None:
        def whole(path):
            try:
                return load_image(path, size, "stretch"), None
            except Exception as exc:  # ImageError, or a Pillow bug: one file, not the run
                return None, (getattr(exc, "category", "corrupt"), str(exc) or type(exc).__name__)

        return whole

    from gender_cli.infer.faces import find_faces

    settings = replace(faces, max_faces=1)

    def largest_face(path):
        found = find_faces(0, Path(path), settings, size)  # never raises: a bad file is an error
        return (None, found.error) if found.error is not None else (found.faces[0].crop, None)

    return largest_face


def decode_images(paths: list, size: int, workers: int | None = None, faces=None,
                  progress: bool = True) -> DecodedImages:
    """Decode ``paths`` to ``size`` x ``size`` through a parallel tf.data map, in order."""
    from tqdm import tqdm

    from gender_cli.tf_quiet import import_keras, native_stderr_silenced

    import_keras()  # TensorFlow initialised quietly
    import tensorflow as tf

    workers = workers or available_cpus()
    read = _reader((size, size), faces)
    failures: dict[int, tuple[str, str]] = {}
    names = [str(p) for p in paths]

    def decode(index):
        i = int(index)
        pixels, failure = read(names[i])
        if failure is not None:
            failures[i] = failure
            return np.zeros((size, size, 3), np.uint8), False
        return pixels, True

    def mapped(index):
        image, ok = tf.numpy_function(decode, [index], (tf.uint8, tf.bool), stateful=False)
        return tf.ensure_shape(image, (size, size, 3)), tf.ensure_shape(ok, ())

    pipeline = (tf.data.Dataset.range(len(names))
                .map(mapped, num_parallel_calls=workers, deterministic=True)
                .batch(DECODE_CHUNK)
                .prefetch(1))
    images = np.zeros((len(names), size, size, 3), np.uint8)
    ok = np.zeros(len(names), bool)
    started = time.perf_counter()
    done = 0
    with native_stderr_silenced(), tqdm(total=len(names), unit="img", desc="decoding", disable=not progress,
                                        file=sys.stderr, dynamic_ncols=True) as bar:
        for chunk, good in pipeline.as_numpy_iterator():
            images[done:done + len(chunk)] = chunk
            ok[done:done + len(chunk)] = good
            done += len(chunk)
            bar.update(len(chunk))
    return DecodedImages(images, ok, dict(sorted(failures.items())), time.perf_counter() - started, workers)


def training_dataset(images: np.ndarray, targets: dict, weights: dict, batch_size: int, seed: int,
                     shuffle: bool = True):
    """Batches of ``(images, {output: target}, {output: sample weight})`` over the rows given."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((images, targets, weights))
    if shuffle:
        data = data.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)
