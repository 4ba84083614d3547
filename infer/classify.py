"""Classify every file under some folders: one output row per file, errors included.

Pipeline: list the files (``files``), skip those already in a resumed output, decode
in background threads (``batches``), run the ONNX graph on fixed-shape batches
(``session``), and append each batch's rows durably (``output``). The decision rule
is the exported one: ``labels[1]`` when ``probabilities[:, 1] >= threshold``, else
``labels[0]``. Every head of the graph runs in the same pass; the columns follow
its metadata (``ModelInfo.gender_labels``, ``ModelInfo.value_columns``: ``age``).
With ``detect`` (face detection settings) the rows are one per face instead, with the
face columns (``faces``, ``face_rows``); OpenCV is imported only then.

``split_done`` (what a resumed output already holds) and ``classify_batch`` (one
decoded batch -> its rows) are shared with the Ray engine (``classify_ray``), so both
engines skip, decide and word errors alike.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gender_cli import contract, workspace
from gender_cli.errors import ModelFileError
from gender_cli.infer.batches import Batch, iter_batches
from gender_cli.infer.detect import FACE_COLUMNS, NO_FACE, FaceSettings, check_settings
from gender_cli.infer.files import list_image_files
from gender_cli.infer.output import ExistingRows, PredictionWriter, Row, category_of, infer_format, open_output
from gender_cli.infer.session import LoadedModel, open_session


@dataclass
class ClassifySummary:
    output: str
    model: str
    providers: list[str]
    notice: str | None
    standin: bool
    files: int = 0  # files found under the folders
    skipped: int = 0  # already in the resumed output
    classified: int = 0  # classified in this run
    failed: int = 0  # failed in this run
    errors: Counter = field(default_factory=Counter)  # category -> count, every row for these files
    seconds: float = 0.0
    truncated_bytes: int = 0  # partial last row cut from a resumed output
    detection: FaceSettings | None = None  # with detect: how faces were found and cropped
    faces: int = 0  # with detect: faces classified in this run
    aligned: int = 0  # with detect: faces whose eyes were found and levelled
    redone: int = 0  # with detect and resume: files whose rows were incomplete, done again
    tolerated: frozenset[str] = frozenset()  # error categories that do not fail the run

    @property
    def images_per_second(self) -> float:
        return (self.classified + self.failed) / self.seconds if self.seconds > 0 else 0.0

    @property
    def all_classified(self) -> bool:
        return not any(category not in self.tolerated for category in self.errors)

    def count(self, rows: Sequence[Row]) -> None:
        """Add rows written in this run."""
        self.count_errors(row.error for row in rows)

    def count_errors(self, errors: Iterable[str | None]) -> None:
        """Add rows written in this run, given by their ``error`` cells (empty: classified)."""
        for error in errors:
            if not error:
                self.classified += 1
            else:
                self.failed += 1
                self.errors[category_of(error)] += 1


def load_classifier(model_path: str | os.PathLike | None, device: str, threads: int | None = None) -> LoadedModel:
    """Open the given classifier, or the workspace's latest export; refuse a backbone."""
    path = Path(model_path) if model_path else workspace.default_classifier()
    model = open_session(path, device=device, threads=threads, allow_spinning=False)
    if model.info.kind != "classifier":
        raise ModelFileError(
            f"{path} is a {model.info.kind!r} graph (descriptors only), not a classifier; "
            "use a classifier-<precision>.onnx from 'gender-cli export' after 'gender-cli train'"
        )
    return model


def _without_output(files: list[Path], output: str) -> list[Path]:
    """Leave out the prediction file itself when it lies inside a classified folder."""
    if output == "-":
        return files
    name = Path(output).name
    target = os.path.realpath(output)
    return [p for p in files if p.name != name or os.path.realpath(p) != target]


def decide(probabilities: np.ndarray, labels: Sequence[str], threshold: float) -> list[str]:
    return [labels[1] if p >= threshold else labels[0] for p in probabilities[:, 1]]


@dataclass
class HeadOutputs:
    """Every head's answer for the images of one batch, from one pass of the graph."""

    labels: list[str] | None  # gender head: decided labels
    probabilities: np.ndarray | None  # gender head: (N, 2)
    values: dict[str, np.ndarray]  # value column (age) -> (N,)

    @classmethod
    def run(cls, model: LoadedModel, images: np.ndarray, count: int) -> HeadOutputs:
        """The heads' outputs for the first ``count`` images of a batch array."""
        info = model.info
        outputs = model.run_batch(images, count, info.head_outputs)
        probabilities = outputs.get(contract.PROBABILITIES)
        labels = decide(probabilities, info.labels, info.threshold) if probabilities is not None else None
        return cls(labels, probabilities, {name: outputs[name] for name in info.value_columns})

    def row(self, path: Path, index: int, extra: Sequence = ()) -> Row:
        """The output row of image ``index``."""
        return Row(str(path), self.labels[index] if self.labels else None,
                   None if self.probabilities is None else self.probabilities[index].tolist(), None,
                   {name: float(v[index]) for name, v in self.values.items()}, extra)


def classify_batch(model: LoadedModel, batch: Batch) -> list[Row]:
    """One row per path of a decoded batch, every head from one pass; the graph runs
    unless every file of the batch failed."""
    heads = HeadOutputs.run(model, batch.images, len(batch.paths)) if len(batch.errors) < len(batch.paths) else None
    rows = []
    for index, path in enumerate(batch.paths):
        error = batch.errors.get(index)
        rows.append(heads.row(path, index) if error is None else Row(str(path), None, None, f"{error.category}: {error}"))
    return rows


def split_done(
    files: Sequence, unlistable: Sequence[tuple[Path, OSError]], existing: ExistingRows, summary: ClassifySummary
) -> tuple[list[Row], list]:
    """(rows for folders that could not be listed, files still to classify), leaving out
    what a resumed output already holds; what it holds is counted into ``summary``."""
    unlisted_rows = [
        Row(str(path), None, None, f"unreadable: cannot list folder ({exc.strerror or exc})")
        for path, exc in unlistable
        if str(path) not in existing.categories
    ]
    summary.errors.update("unreadable" for path, _ in unlistable if str(path) in existing.categories)
    todo = []
    for path in files:
        if str(path) in existing.categories:
            summary.skipped += 1
            category = existing.categories[str(path)]
            if category:
                summary.errors[category] += 1
        else:
            todo.append(path)
    return unlisted_rows, todo


def open_rows(
    output: str, fmt: str | None, info, resume: bool, summary: ClassifySummary,
    detect: FaceSettings | None = None, require_face: bool = False,
) -> tuple[PredictionWriter, ExistingRows]:
    """Open ``output`` for a run's rows (one per face with ``detect``), as both engines
    do, and note in ``summary`` what the detection settings and a resume change."""
    face_output = {}
    if detect is not None:
        from gender_cli.infer.faces import incomplete_paths

        check_settings(detect)
        face_output = {"extra": FACE_COLUMNS, "incomplete": incomplete_paths}
        summary.detection = detect
        summary.tolerated = frozenset() if require_face else frozenset({NO_FACE})
    writer, existing = open_output(output, infer_format(output, fmt), info.gender_labels, resume=resume,
                                   values=info.value_columns, **face_output)
    summary.truncated_bytes = existing.cut_bytes
    summary.redone = existing.redone
    return writer, existing


def classify(
    folders: Sequence[str | os.PathLike],
    model: LoadedModel,
    output: str,
    fmt: str | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    recursive: bool = True,
    resize: str | None = None,
    resume: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
    detect: FaceSettings | None = None,
    require_face: bool = False,
    save_crops: str | os.PathLike | None = None,
    draw: str | os.PathLike | None = None,
) -> ClassifySummary:
    """Classify every file under ``folders`` into ``output`` ("-" for stdout).

    ``on_start(n)`` is called once with the number of files still to classify;
    ``on_batch(n)`` is called after each batch's rows are safely written, with the
    number of files in it (progress bars; tests use it to interrupt a run).
    With ``detect``: one row per face, ``no_face`` rows fail the run only with
    ``require_face``; ``save_crops`` and ``draw`` are folders for the aligned crops
    and for the photos with their boxes and labels.
    """
    started = time.perf_counter()
    info = model.info
    batch_size = model.fixed_batch or batch_size  # a graph exported with a static N
    unlistable: list[tuple[Path, OSError]] = []
    files = _without_output(list_image_files(folders, recursive=recursive, unlistable=unlistable), output)
    summary = ClassifySummary(
        output=output,
        model=str(model.path),
        providers=model.providers,
        notice=model.notice,
        standin=info.standin,
        files=len(files) + len(unlistable),
    )
    if detect is not None:
        from gender_cli.infer.draw import outside

        files = outside(files, (save_crops, draw))
        summary.files = len(files) + len(unlistable)
    writer, existing = open_rows(output, fmt, info, resume, summary, detect, require_face)
    with writer:
        unlisted_rows, todo = split_done(files, unlistable, existing, summary)
        writer.write(unlisted_rows)
        summary.count(unlisted_rows)
        if on_start is not None:
            on_start(len(todo))

        if detect is not None:
            from gender_cli.infer.draw import FaceFiles
            from gender_cli.infer.face_rows import classify_faces

            face_files = FaceFiles(save_crops, draw, info.labels)
            classify_faces(todo, model, writer, summary, detect, face_files, batch_size, workers, on_batch)
            summary.seconds = time.perf_counter() - started
            return summary
        for batch in iter_batches(
            todo, batch_size, size=info.image_size, resize=resize or info.resize, workers=workers,
            fixed_shape=model.fixed_batch is not None,
        ):
            rows = classify_batch(model, batch)
            summary.count(rows)
            writer.write(rows)
            if on_batch is not None:
                on_batch(len(batch.paths))
    summary.seconds = time.perf_counter() - started
    return summary
