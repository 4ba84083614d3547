"""End-to-end figures with face detection (``bench --images DIR --detect``).

Two passes over the same files with the same classifier: the plain pipeline
(``classify``: decode, resize, inference) and the face pipeline (``classify
--detect``: decode, detect, align and crop, inference). Photos per second of both
give the share of the end-to-end time that detection takes, ``1 - with / without``
(wall clock, with decoding, detection and inference overlapped as they run). The
decode threads also time each stage of each file in CPU seconds (decode, detect,
crop; ``time.thread_time``, so waiting for the GIL or for a core is not counted),
which says what each stage costs on its own.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gender_cli.infer.batches import iter_batches
from gender_cli.infer.detect import FaceSettings, check_settings
from gender_cli.infer.faces import STAGES, FileFaces, iter_face_batches
from gender_cli.infer.session import LoadedModel
from gender_cli.system import available_cpus

FACE_COUNT_BINS = ("0", "1", "2", "3+")


def bench_faces(
    model: LoadedModel,
    files: list[Path],
    folder: str,
    batch: int,
    settings: FaceSettings,
    workers: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    on_file: Callable[[FileFaces], None] | None = None,
    plain_images_per_second: float | None = None,
) -> dict[str, Any]:
    """Figures of the plain and the face pipeline over ``files`` (the plain one is not
    run when its rate is given: it does not depend on the detector);
    ``progress(stage, files done, files)``; ``on_file`` sees every file's faces."""
    from gender_cli.bench.bench import pass_stats

    check_settings(settings)
    size = model.info.image_size
    fixed = model.fixed_batch is not None
    report = progress or (lambda stage, done, total: None)

    warm = np.zeros((batch, *size, 3), np.uint8)
    model.run_batch(warm, batch)  # the session's first run allocates: keep it out of both passes
    if plain_images_per_second is None:
        started = time.perf_counter()
        done = 0
        report("without detection", 0, len(files))
        for decoded in iter_batches(files, batch, size=size, resize=model.info.resize, workers=workers,
                                    fixed_shape=fixed):
            model.run_batch(decoded.images, len(decoded))
            done += len(decoded)
            report("without detection", done, len(files))
        plain_images_per_second = len(files) / (time.perf_counter() - started)

    cpu_seconds = dict.fromkeys(STAGES, 0.0)
    inference_seconds = 0.0
    counts: Counter = Counter()
    errors: Counter = Counter()
    faces = 0
    per_batch = []
    done = 0
    report("end-to-end", 0, len(files))
    started = time.perf_counter()
    mark = started
    for decoded in iter_face_batches(files, batch, size, settings, workers, fixed_shape=fixed):
        if decoded.used:
            before = time.perf_counter()
            model.run_batch(decoded.images, decoded.used)  # as classify --detect runs it
            inference_seconds += time.perf_counter() - before
        for entry in decoded.entries:
            if not entry.last:
                continue
            file = entry.file
            for stage, seconds in file.cpu_seconds.items():
                cpu_seconds[stage] += seconds
            faces += len(file.faces)
            counts[FACE_COUNT_BINS[min(len(file.faces), len(FACE_COUNT_BINS) - 1)]] += 1
            if file.error:
                errors[file.error[0]] += 1
            if on_file is not None:
                on_file(file)
        now = time.perf_counter()
        per_batch.append(now - mark)
        mark = now
        done += decoded.files_done
        report("end-to-end", done, len(files))
    total = time.perf_counter() - started
    stats = pass_stats(per_batch, batch, len(files), total)
    return {
        "mode": "end-to-end with face detection",
        "input": str(folder),
        "files": len(files),
        "faces": faces,
        "files_by_face_count": {key: counts.get(key, 0) for key in FACE_COUNT_BINS},
        "errors": dict(errors),
        "detection": settings.describe(),
        "decode_workers": workers or available_cpus(),
        "faces_per_second": faces / total,
        "plain_images_per_second": plain_images_per_second,
        "detection_share": max(0.0, 1 - stats["images_per_second"] / plain_images_per_second),
        "cpu_ms_per_image": {stage: 1000 * seconds / len(files) for stage, seconds in cpu_seconds.items()},
        "inference_ms_per_image": 1000 * inference_seconds / len(files),
        **stats,
    }
