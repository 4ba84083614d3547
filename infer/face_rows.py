"""``classify --detect``: run every face crop through the classifier, one row per face.

The crops come in batches from ``faces.iter_face_batches`` (detection in the decode
threads, overlapped with inference here). Each batch's rows are written with one
durable write; a file's rows may span two writes, which is why a resumed output is
checked with ``faces.incomplete_paths``. Aligned crops are saved as they are cut
(``--save-crops``), drawings once all of a file's faces are classified (``--draw``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from gender_cli.infer.classify import ClassifySummary, HeadOutputs
from gender_cli.infer.detect import FaceSettings
from gender_cli.infer.draw import FaceFiles
from gender_cli.infer.faces import FileFaces, error_row, face_columns, iter_face_batches
from gender_cli.infer.output import PredictionWriter, Row
from gender_cli.infer.session import LoadedModel


def classify_faces(
    paths: Sequence[Path],
    model: LoadedModel,
    writer: PredictionWriter,
    summary: ClassifySummary,
    settings: FaceSettings,
    files: FaceFiles,
    batch_size: int,
    workers: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """Detect, classify and write the rows of ``paths``, counting them in ``summary``."""
    so_far: dict[int, list[Row]] = {}  # file index -> the rows of its faces so far (for drawings)
    for batch in iter_face_batches(
        paths, batch_size, model.info.image_size, settings, workers, preview_side=files.preview_side,
        on_crop=files.save_crop if files.crops else None, fixed_shape=model.fixed_batch is not None,
    ):
        heads = HeadOutputs.run(model, batch.images, batch.used) if batch.used else None
        rows, finished = [], []
        for entry in batch.entries:
            if entry.slot is None:
                rows.append(error_row(entry))
            else:
                rows.append(heads.row(entry.file.path, entry.slot, face_columns(entry)))
                so_far.setdefault(entry.file.index, []).append(rows[-1])
            if entry.last:
                finished.append(entry.file)
        writer.write(rows)
        for file in finished:
            _count(summary, file)
            files.draw(file, so_far.pop(file.index, []))
        if on_batch is not None:
            on_batch(batch.files_done)


def _count(summary: ClassifySummary, file: FileFaces) -> None:
    if file.faces:
        summary.classified += 1
        summary.faces += len(file.faces)
        summary.aligned += sum(face.aligned for face in file.faces)
    else:
        summary.failed += 1
        summary.errors[file.error[0]] += 1
