"""What both engines share: the output row, its columns, and the rows of a decoded batch.

A row is one file (or, with face detection, one face of a file): ``path`` as the
listing spelled it, the decided ``label`` and the gender head's ``probabilities`` in
the model's label order, one value per value head (``age``, in years), the face
columns (``extra``) and ``error``: empty, or ``"category: message"``. The decision rule
is the exported one: ``labels[1]`` when ``probabilities[:, 1] >= threshold``, else
``labels[0]``. Every head of the graph runs in the same pass (:class:`HeadOutputs`).

An engine hands its rows over in :class:`Block` objects: the rows written together,
and the files they finish (a file's face rows may span two blocks; it counts once, in
the block that finishes it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from gender_cli import contract
from gender_cli.infer.images import input_name

if TYPE_CHECKING:
    from gender_cli.infer.batches import Batch
    from gender_cli.infer.session import LoadedModel


@dataclass
class Row:
    path: str
    label: str | None
    probabilities: Sequence[float] | None
    error: str | None
    values: dict[str, float] | None = None  # value column -> value (age in years)
    extra: Sequence = ()  # values of the extra columns, in their order (fewer: the rest empty)
    index: int | None = None  # position of its input in the engine's list (not written)

    @property
    def category(self) -> str | None:
        return category_of(self.error)


def category_of(error: str | None) -> str | None:
    """The category of an ``error`` cell (``"category: message"``), None when empty."""
    return error.split(":", 1)[0] if error else None


@dataclass(frozen=True)
class Columns:
    """What an output's rows hold: the gender head's ``labels`` in output order (none
    without a gender head), one column per value head (``values``: ``age``) and the
    ``extra`` columns after ``path`` (the face columns of a run with detection)."""

    labels: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("labels", "values", "extra"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def names(self) -> list[str]:
        """``path``, ``extra``, ``label`` and ``p_<label>`` (with a gender head), the
        value columns, ``error``."""
        gender = ["label", *[f"p_{label}" for label in self.labels]] if self.labels else []
        return ["path", *self.extra, *gender, *self.values, "error"]


class FileDone(NamedTuple):
    """A file whose rows are all written: its error category (None: classified) and,
    with face detection, how many faces it had and for how many the eyes were levelled."""

    category: str | None
    faces: int = 0
    aligned: int = 0


@dataclass
class Block:
    """Rows an engine finished, written together: ``rows`` (``Row`` objects) or
    ``columns`` (``row_columns``, as the Ray engine's blocks arrive), and ``done``, the
    files these rows finish."""

    rows: Sequence[Row] = ()
    columns: dict[str, np.ndarray] | None = None
    done: list[FileDone] = field(default_factory=list)

    @classmethod
    def of_rows(cls, rows: Sequence[Row]) -> Block:
        """A block of one row per file."""
        return cls(rows, done=[FileDone(row.category) for row in rows])


def unlisted_row(path: str, exc: OSError) -> Row:
    """The row of a folder that could not be listed (it stands for the files in it)."""
    return Row(str(path), None, None, f"unreadable: cannot list folder ({exc.strerror or exc})")


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

    def row(self, path: str, slot: int, extra: Sequence = (), index: int | None = None) -> Row:
        """The output row of the image in batch slot ``slot``."""
        return Row(path, self.labels[slot] if self.labels else None,
                   None if self.probabilities is None else self.probabilities[slot].tolist(), None,
                   {name: float(v[slot]) for name, v in self.values.items()}, extra, index)


def error_text(error) -> str:
    """An error cell: ``"category: message"`` of an image error (or any object with a
    ``category`` whose ``str()`` is its message)."""
    return f"{error.category}: {error}"


def batch_rows(model: LoadedModel, batch: Batch) -> list[Row]:
    """One row per input of a decoded batch, every head from one pass; the graph runs
    unless every input of the batch failed."""
    heads = HeadOutputs.run(model, batch.images, len(batch.paths)) if len(batch.errors) < len(batch.paths) else None
    rows = []
    for slot, item in enumerate(batch.paths):
        error = batch.errors.get(slot)
        index = batch.start + slot
        name = input_name(item, index)
        rows.append(heads.row(name, slot, index=index) if error is None
                    else Row(name, None, None, error_text(error), index=index))
    return rows
