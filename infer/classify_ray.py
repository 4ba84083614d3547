"""``classify --engine ray``: the local classification, run as a Ray Data pipeline.

    from_arrow(file names, a block per batch) -> map_batches(decode) on CPU tasks
                           -> map_batches(Classifier, concurrency=N, num_gpus=...) on actors
                           -> iter_batches on the driver -> the same writers as locally

The stages are in ``ray_stages`` (the local decode function and per-batch row logic),
the cluster sizing in ``ray_cluster``, the listing of local folders and URIs in
``sources``. The driver lists the files, checks the model, skips what a resumed output
already holds, and writes every row it receives (CSV/JSONL flushed per batch as
locally, Parquet as atomic part files), so an interruption leaves a valid output that
``resume`` completes.

Each block of ``batch_size`` file names is one decode task and one actor call, so the
batches are the local engine's. With ``detect`` the decode tasks find and crop the faces
(``ray_stages.decode_faces``), the actors classify crops, and the driver holds a
file's face rows until all of them have arrived, so each file's rows are written
together and a resumed output never holds part of a file. Rows arrive in completion order, not listing order;
sort by ``path`` when order matters. Ray Data retries the work of an actor that dies
(actors restart, their calls are retried); the driver only ever sees finished blocks,
so every file still gets exactly one row.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from gender_cli.errors import GenderCliError, first_line
from gender_cli.infer.classify import ClassifySummary, load_classifier, open_rows, split_done
from gender_cli.infer.detect import FACE_COLUMNS, FaceSettings
from gender_cli.infer.output import Row
from gender_cli.infer.ray_cluster import Connection, Plan, cluster_shape, connect, disconnect, plan
from gender_cli.infer.ray_stages import Classifier, decode, decode_faces, ship_model
from gender_cli.infer.row_columns import columns_to_rows, encode_names
from gender_cli.infer.session import ModelInfo
from gender_cli.infer.sources import Reader, list_sources


@dataclass
class RaySummary(ClassifySummary):
    address: str = ""
    cluster: str = ""  # what the cluster had: CPUs, GPUs, nodes
    plan: str = ""  # what this run used: actors and their resources
    startup_seconds: float = 0.0  # starting or joining Ray, not counted in ``seconds``


@dataclass(frozen=True)
class ClassifierFile:
    """A classifier checked on the driver: its path and contract."""

    path: Path
    info: ModelInfo


def check_classifier(model_path: str | os.PathLike | None) -> ClassifierFile:
    """Open the classifier on the driver once (CPU) to check it and read its contract."""
    model = load_classifier(model_path, "cpu", threads=1)
    return ClassifierFile(model.path, model.info)


def classify_ray(
    sources: Sequence[str | os.PathLike],
    model: ClassifierFile,
    output: str,
    fmt: str | None = None,
    batch_size: int = 64,
    recursive: bool = True,
    resize: str | None = None,
    resume: bool = False,
    device: str = "auto",
    ray_address: str | None = None,
    actors: int | None = None,
    gpus_per_actor: float | None = None,
    cpus_per_actor: float | None = None,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
    detect: FaceSettings | None = None,
    require_face: bool = False,
) -> RaySummary:
    """Classify every file under ``sources`` on Ray into ``output``; see the module docstring.

    ``on_start``/``on_batch`` are called as in ``classify.classify``; ``detect`` and
    ``require_face`` as there (one row per face).
    """
    info = model.info
    listing = list_sources(sources, recursive=recursive)
    files = _without_output(listing.files, output)
    summary = RaySummary(
        output=output, model=str(model.path), providers=[], notice=None, standin=info.standin,
        files=len(files) + len(listing.unlistable),
    )
    connection = connect(ray_address) if files else None
    try:
        run_plan = _plan(connection, summary, device, actors, gpus_per_actor, cpus_per_actor) if connection else None
        started = time.perf_counter()
        writer, existing = open_rows(output, fmt, info, resume, summary, detect, require_face)
        with writer:
            unlisted_rows, todo = split_done(files, listing.unlistable, existing, summary)
            writer.write(unlisted_rows)
            summary.count(unlisted_rows)
            if on_start is not None:
                on_start(len(todo))
            if todo:
                providers: set[str] = set()
                blocks = math.ceil(len(todo) / batch_size)
                run_plan = replace(run_plan, actors=min(run_plan.actors, blocks))  # an idle actor only costs
                summary.plan = run_plan.describe()
                dataset = _pipeline(todo, model, info, run_plan, batch_size, resize or info.resize,
                                    Reader(listing.roots), detect)
                whole = _WholeFiles() if detect is not None else None
                for block in _run(dataset):
                    providers.update(str(p) for p in block["provider"])
                    if whole is None:
                        summary.count_errors(block["error"])
                        writer.write_columns(block)
                        done = len(block["path"])
                    else:
                        files_rows = whole.add(columns_to_rows(block, info.value_columns, FACE_COLUMNS), block["aligned"])
                        writer.write([row for rows in files_rows for row, _ in rows])
                        _count_faces(summary, files_rows)
                        done = len(files_rows)
                    if on_batch is not None:
                        on_batch(done)
                if whole is not None and whole.pending:
                    raise GenderCliError(f"the Ray run lost face rows of {len(whole.pending)} file(s); rerun with --resume")
                summary.providers = sorted(providers)
        summary.seconds = time.perf_counter() - started
    finally:
        if connection is not None:
            disconnect(connection)
    return summary


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


def _count_faces(summary: RaySummary, files_rows: list[list[tuple[Row, bool]]]) -> None:
    for rows in files_rows:
        first = rows[0][0]
        if first.error is None:
            summary.classified += 1
            summary.faces += len(rows)
            summary.aligned += sum(levelled for _, levelled in rows)
        else:
            summary.failed += 1
            summary.errors[first.category] += 1


def _without_output(files: list[str], output: str) -> list[str]:
    """Leave out the prediction file (or Parquet parts) when they lie inside a classified folder."""
    if output == "-":
        return files
    target = os.path.realpath(output)
    return [f for f in files if not _inside(f, target)]


def _inside(name: str, target: str) -> bool:
    if "://" in name and not name.startswith("file://"):
        return False
    real = os.path.realpath(name.removeprefix("file://"))
    return real == target or real.startswith(target + os.sep)


def _plan(connection: Connection, summary: RaySummary, device, actors, gpus_per_actor, cpus_per_actor) -> Plan:
    shape = cluster_shape()
    result = plan(shape, device=device, actors=actors, gpus_per_actor=gpus_per_actor, cpus_per_actor=cpus_per_actor)
    summary.address = connection.address
    summary.startup_seconds = connection.startup_seconds
    summary.cluster = shape.describe()
    summary.plan = result.describe()
    return result


def _pipeline(todo: list[str], model: ClassifierFile, info: ModelInfo, run_plan: Plan, batch_size: int, resize: str,
              reader: Reader, detect: FaceSettings | None = None):
    import pyarrow as pa
    import ray.data

    shipped = ship_model(model.path)
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


def _run(dataset):
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
