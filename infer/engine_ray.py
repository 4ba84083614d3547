"""The Ray engine (``--engine ray``): the local classification, run as a Ray Data pipeline.

    from_arrow(file names, a block per batch) -> map_batches(decode) on CPU tasks
                           -> map_batches(Classifier, concurrency=N, num_gpus=...) on actors
                           -> iter_batches on the driver -> blocks for the run's writer

The stages are in ``ray_stages`` (the local decode function and per-batch row logic),
the cluster sizing in ``ray_cluster``. The driver checks the model once (CPU), and the
run (``classify``) lists the files and writes every row it receives, as with the local
engine, so an interruption leaves a valid output that ``resume`` completes.

Each block of ``batch`` file names is one decode task and one actor call, so the
batches are the local engine's. With face detection the decode tasks find and crop the
faces (``ray_stages.decode_faces``), the actors classify crops, and the driver holds a
file's face rows until all of them have arrived, so each file's rows are handed over
together and a resumed output never holds part of a file. Rows arrive in completion
order, not listing order; sort by ``path`` when order matters. Ray Data retries the
work of an actor that dies (actors restart, their calls are retried); the driver only
ever sees finished blocks, so every file still gets exactly one row.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gender_cli.devices import DEFAULT_DEVICE
from gender_cli.errors import GenderCliError, first_line
from gender_cli.infer.batches import DEFAULT_BATCH
from gender_cli.infer.detect import FACE_COLUMNS, FaceSettings
from gender_cli.infer.images import DEFAULT_RESIZE
from gender_cli.infer.ray_cluster import Connection, Plan, cluster_shape, connect, disconnect, plan, require_ray
from gender_cli.infer.ray_stages import Classifier, decode, decode_faces, ship_model
from gender_cli.infer.row_columns import columns_to_rows, encode_names
from gender_cli.infer.rows import Block, FileDone, Row, category_of
from gender_cli.infer.sources import Reader

if TYPE_CHECKING:  # onnxruntime is imported when the model is checked, not with the CLI's options
    from gender_cli.infer.session import ModelInfo


@dataclass(frozen=True)
class RayOptions:
    """Where and how big a Ray run is; None values are sized from the cluster
    (``ray_cluster``: one actor per GPU, or per node without GPUs)."""

    address: str | None = None  # a running cluster; default $RAY_ADDRESS, else a local Ray for the run
    actors: int | None = None  # inference actors, each holding one onnxruntime session
    gpus_per_actor: float | None = None
    cpus_per_actor: float | None = None

    def given(self) -> list[str]:
        """The names of the options set, as the CLI spells them (``ray_address``, ``actors``, ...)."""
        return [("ray_address" if name == "address" else name)
                for name in self.__dataclass_fields__ if getattr(self, name) is not None]


@dataclass
class ClusterReport:
    """What a Ray run ran on and used (the summary prints it)."""

    address: str = ""
    cluster: str = ""  # what the cluster had: CPUs, GPUs, nodes
    plan: str = ""  # what this run used: actors and their resources
    startup_seconds: float = 0.0  # starting or joining Ray, not counted in the run's seconds


class RayEngine:
    """Runs a classifier file over files on a Ray cluster (see the module docstring)."""

    name = "ray"

    def __init__(self, model_path: Path, info: ModelInfo, batch: int, device: str = DEFAULT_DEVICE,
                 resize: str | None = None, options: RayOptions = RayOptions()):
        self.model_path = model_path
        self.info = info
        self.batch = batch
        self.device = device
        self.resize = resize or info.resize or DEFAULT_RESIZE
        self.options = options
        self.notice: str | None = None  # the actors choose their provider; the driver has nothing to say
        self.providers: list[str] = []  # those that ran, known once blocks come back
        self.cluster: ClusterReport | None = None
        self._connection: Connection | None = None
        self._plan: Plan | None = None

    @classmethod
    def open(cls, model: str | os.PathLike | None, device: str = DEFAULT_DEVICE, batch: int = DEFAULT_BATCH,
             resize: str | None = None, options: RayOptions = RayOptions()) -> RayEngine:
        """Check the classifier on the driver once (CPU) and read its contract; Ray itself
        starts with the run (:meth:`start`)."""
        from gender_cli.infer.session import load_classifier

        require_ray()
        checked = load_classifier(model, "cpu", threads=1)
        return cls(checked.path, checked.info, batch, device, resize, options)

    def start(self, files: int) -> float:
        """Start or join Ray and size the run on the cluster; returns the seconds it took."""
        self._connection = connect(self.options.address)
        shape = cluster_shape()
        self._plan = plan(shape, device=self.device, actors=self.options.actors,
                          gpus_per_actor=self.options.gpus_per_actor, cpus_per_actor=self.options.cpus_per_actor)
        self.cluster = ClusterReport(self._connection.address, shape.describe(), self._plan.describe(),
                                     self._connection.startup_seconds)
        return self._connection.startup_seconds

    def stop(self) -> None:
        if self._connection is not None:
            disconnect(self._connection)
            self._connection = None

    def blocks(self, inputs: Sequence[str], read: Reader | None = None,
               detect: FaceSettings | None = None) -> Iterator[Block]:
        """The rows of the files ``inputs`` (names as listed), a block per finished Ray
        block, in completion order; ``read`` (picklable) travels to the decode tasks."""
        if self._plan is None:
            raise GenderCliError("the Ray engine was not started")
        run_plan = replace(self._plan, actors=min(self._plan.actors, math.ceil(len(inputs) / self.batch)))
        self.cluster.plan = run_plan.describe()  # an idle actor only costs
        dataset = _pipeline(list(inputs), self.model_path, self.info, run_plan, self.batch, self.resize,
                            read or Reader(), detect)
        providers: set[str] = set()
        whole = _WholeFiles() if detect is not None else None
        for columns in _run(dataset):
            providers.update(str(p) for p in columns["provider"])
            self.providers = sorted(providers)
            if whole is None:
                yield Block(columns=columns, done=[FileDone(category_of(str(e)) if e else None) for e in columns["error"]])
            else:
                files = whole.add(columns_to_rows(columns, self.info.value_columns, FACE_COLUMNS), columns["aligned"])
                yield Block([row for rows in files for row, _ in rows], done=[_face_outcome(rows) for rows in files])
        if whole is not None and whole.pending:
            raise GenderCliError(f"the Ray run lost face rows of {len(whole.pending)} file(s); rerun with --resume")


class _WholeFiles:
    """Holds each file's face rows until all of them have arrived (a file's faces may
    come in different blocks), then hands them over in face order."""

    def __init__(self):
        self.pending: dict[str, list[tuple[Row, bool]]] = {}

    def add(self, rows: list[Row], aligned) -> list[list[tuple[Row, bool]]]:
        """The files made whole by ``rows``: each a list of (row, eyes levelled)."""
        whole = []
        for row, levelled in zip(rows, aligned):
            face, faces = row.extra[0], row.extra[1]
            if face is None:  # a file without a crop: its one error row
                whole.append([(row, False)])
                continue
            group = self.pending.setdefault(row.path, [])
            group.append((row, bool(levelled)))
            if len(group) == faces:
                whole.append(sorted(self.pending.pop(row.path), key=lambda item: item[0].extra[0]))
        return whole


def _face_outcome(rows: list[tuple[Row, bool]]) -> FileDone:
    first = rows[0][0]
    if first.error is not None:
        return FileDone(first.category)
    return FileDone(None, len(rows), sum(levelled for _, levelled in rows))


def _pipeline(todo: list[str], model_path: Path, info: ModelInfo, run_plan: Plan, batch_size: int, resize: str,
              reader: Reader, detect: FaceSettings | None = None):
    import pyarrow as pa
    import ray.data

    shipped = ship_model(model_path)
    height, width = info.image_size
    chunks = [
        pa.table({"path": pa.array(encode_names(todo[start : start + batch_size]), pa.binary())})
        for start in range(0, len(todo), batch_size)
    ]
    return (
        ray.data.from_arrow(chunks)  # one block per batch: the local engine's batches
        .map_batches(
            decode if detect is None else decode_faces,
            batch_size=batch_size,
            batch_format="numpy",
            num_cpus=run_plan.decode_cpus,
            # The decoded batch's bytes. Also keeps Ray Data from fusing decoding into the
            # actors (it fuses stages whose resource requests are equal), which would
            # serialise decoding with inference.
            memory=batch_size * height * width * 3,
            fn_kwargs={"size": info.image_size, "reader": reader,
                       **({"resize": resize} if detect is None else {"settings": detect})},
        )
        .map_batches(
            Classifier,
            batch_size=batch_size,
            batch_format="numpy",
            concurrency=run_plan.actors,
            num_cpus=run_plan.cpus_per_actor,
            num_gpus=run_plan.gpus_per_actor or None,
            fn_constructor_kwargs={
                "model": shipped,
                "device": run_plan.device,
                "threads": run_plan.threads,
                "batch_size": batch_size,
            },
        )
    )


def _run(dataset) -> Iterator[dict[str, np.ndarray]]:
    """The dataset's blocks as they finish; Ray's failures as one-line errors."""
    import ray.exceptions

    try:
        yield from dataset.iter_batches(batch_size=None, batch_format="numpy")
    except ray.exceptions.RayError as exc:
        raise GenderCliError(f"the Ray run failed: {_cause(exc)}") from None


def _cause(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and cause is not exc:
        return _cause(cause)
    return first_line(exc)
