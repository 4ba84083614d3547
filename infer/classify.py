"""Classify every file under some folders: one output row per file, errors included.

Pipeline: list the files (``files``), skip those already in a resumed output, decode
in background threads (``batches``), run the ONNX graph on fixed-shape batches
(``session``), and append each batch's rows durably (``output``). The decision rule
is the exported one: ``labels[1]`` when ``probabilities[:, 1] >= threshold``, else
``labels[0]``. Every head of the graph runs in the same pass; the columns follow
its metadata (``ModelInfo.gender_labels``, ``ModelInfo.value_columns``: ``age``).

``split_done`` (what a resumed output already holds) and ``classify_batch`` (one
decoded batch -> its rows) are shared with the Ray engine (``classify_ray``), so both
engines skip, decide and word errors alike.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gender_cli import contract, workspace
from gender_cli.errors import ModelFileError
from gender_cli.infer.batches import Batch, iter_batches
from gender_cli.infer.files import list_image_files
from gender_cli.infer.output import ExistingRows, Row, infer_format, open_output
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

    @property
    def images_per_second(self) -> float:
        return (self.classified + self.failed) / self.seconds if self.seconds > 0 else 0.0

    @property
    def all_classified(self) -> bool:
        return not self.errors

    def count(self, rows: Sequence[Row]) -> None:
        """Add rows written in this run."""
        for row in rows:
            if row.error is None:
                self.classified += 1
            else:
                self.failed += 1
                self.errors[row.category] += 1


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


def classify_batch(model: LoadedModel, batch: Batch) -> list[Row]:
    """One row per path of a decoded batch, every head from one pass; the graph runs
    unless every file of the batch failed."""
    info = model.info
    probabilities, labels, values = None, None, {}
    if len(batch.errors) < len(batch.paths):
        outputs = model.run_batch(batch.images, len(batch.paths), info.head_outputs)
        probabilities = outputs.get(contract.PROBABILITIES)
        labels = decide(probabilities, info.labels, info.threshold) if probabilities is not None else None
        values = {name: outputs[name] for name in info.value_columns}
    rows = []
    for index, path in enumerate(batch.paths):
        error = batch.errors.get(index)
        if error is None:
            rows.append(Row(str(path), labels[index] if labels else None,
                            None if probabilities is None else probabilities[index].tolist(), None,
                            {name: float(v[index]) for name, v in values.items()}))
        else:
            rows.append(Row(str(path), None, None, f"{error.category}: {error}"))
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
) -> ClassifySummary:
    """Classify every file under ``folders`` into ``output`` ("-" for stdout).

    ``on_start(n)`` is called once with the number of files still to classify;
    ``on_batch(n)`` is called after each batch's rows are safely written, with the
    number of files in it (progress bars; tests use it to interrupt a run).
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
    writer, existing = open_output(output, infer_format(output, fmt), info.gender_labels, resume=resume,
                                   values=info.value_columns)
    summary.truncated_bytes = existing.cut_bytes
    with writer:
        unlisted_rows, todo = split_done(files, unlistable, existing, summary)
        writer.write(unlisted_rows)
        summary.count(unlisted_rows)
        if on_start is not None:
            on_start(len(todo))

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
