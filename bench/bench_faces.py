"""End-to-end figures with face detection (``bench --images DIR --detect``).

Two passes over the folder through ``infer.faces.iter_face_batches``, the pipeline
``classify --detect`` uses: first decode + detect + crop alone, then with inference.
The second pass gives img/s (files) and faces/s, and the share of the work spent in
the detector: the decode threads time each stage of each file (decode, detect,
crop), the main thread times each inference call, and the share is detector seconds
over all of these seconds (thread-seconds: with several decode threads the stages
overlap each other and inference, so the shares say where the CPU goes, not which
stage the wall clock waits on).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gender_cli.infer.detect import FaceSettings, check_available
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
) -> dict[str, Any]:
    """Figures of one detect-only pass and one end-to-end pass over ``files``;
    ``progress(stage, files done, files)``; ``on_file`` sees every file's result of the
    end-to-end pass."""
    from gender_cli.bench.bench import latency_stats

    check_available(settings.detector)
    size = model.info.image_size
    fixed = model.fixed_batch is not None
    report = progress or (lambda stage, done, total: None)

    started = time.perf_counter()
    done = 0
    report("detect only", 0, len(files))
    for decoded in iter_face_batches(files, batch, size, settings, workers, fixed_shape=fixed):
        done += decoded.files_done
        report("detect only", done, len(files))
    detect_only = time.perf_counter() - started

    stage_seconds = dict.fromkeys(STAGES, 0.0)
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
            for stage, seconds in file.seconds.items():
                stage_seconds[stage] += seconds
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
    work = sum(stage_seconds.values()) + inference_seconds
    stats = latency_stats(per_batch, batch)
    stats["images_per_second"] = len(files) / total
    stats["seconds"] = total
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
        "detect_only_images_per_second": len(files) / detect_only,
        "ms_per_image": {
            **{stage: 1000 * seconds / len(files) for stage, seconds in stage_seconds.items()},
            "inference": 1000 * inference_seconds / len(files),
        },
        "detection_share": stage_seconds["detect"] / work if work > 0 else 0.0,
        **stats,
    }
