"""``classify``: every file under some sources -> one output row per file, errors included.

One pipeline for the CLI and the Python API, whichever engine runs the model::

    ClassifyRequest (checked once) -> open_engine -> classify(request, engine)
        list the files (``sources``; the run's own outputs left out)
        hold the output's lock (``lock``; a second writer is refused)
        open the output (``writer.open_writer``; with resume: what it holds)
        skip the files a resumed output holds (``resume``: matched by file, not spelling)
        engine.blocks(files) -> write each block, count it      (``engine_local``, ``engine_ray``)
        -> ClassifySummary

Every file gets exactly one row (one per face with detection): an unreadable one an
error row, a folder that cannot be listed an ``unreadable`` row. Each block is written
durably before the next, so an interrupted run leaves a valid output that a run with
``resume`` completes.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gender_cli.infer.detect import FACE_COLUMNS, NO_FACE, FaceSettings, check_settings
from gender_cli.infer.engine import Engine
from gender_cli.infer.engine_local import LocalEngine
from gender_cli.infer.engine_ray import ClusterReport, RayEngine
from gender_cli.infer.lock import hold_output
from gender_cli.infer.request import ClassifyRequest
from gender_cli.infer.resume import done_files
from gender_cli.infer.rows import Block, Columns, Row, unlisted_row
from gender_cli.infer.sources import Reader, list_sources, without
from gender_cli.infer.writer import FORMATS, ExistingRows, RowWriter, open_writer


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run. ``opened``: whether the output was opened by then (its rows
    so far are complete and a resume finishes them); before, nothing was written."""

    def __init__(self, opened: bool):
        super().__init__()
        self.opened = opened


@dataclass
class ClassifySummary:
    """What a run did: the counts the CLI prints (and its exit status rests on)."""

    output: str
    model: str
    format: str
    engine: str
    providers: list[str]
    notice: str | None
    standin: bool
    files: int = 0  # files found under the sources
    skipped: int = 0  # already in the resumed output
    classified: int = 0  # classified in this run
    failed: int = 0  # failed in this run
    tolerated_files: int = 0  # files whose error is tolerated (no face, without require_face): neither of the above
    errors: Counter = field(default_factory=Counter)  # category -> count, every row for these files
    seconds: float = 0.0  # the run's wall time, less the engine's start-up
    truncated_bytes: int = 0  # partial last row cut from a resumed output
    detection: FaceSettings | None = None  # with detect: how faces were found and cropped
    faces: int = 0  # with detect: faces classified in this run
    aligned: int = 0  # with detect: faces whose eyes were found and levelled
    redone: int = 0  # with detect and resume: files whose rows were incomplete, done again
    tolerated: frozenset[str] = frozenset()  # error categories that do not fail the run
    cluster: ClusterReport | None = None  # with engine ray: what it ran on and used

    @property
    def images_per_second(self) -> float:
        return (self.classified + self.failed + self.tolerated_files) / self.seconds if self.seconds > 0 else 0.0

    @property
    def all_classified(self) -> bool:
        """Whether every file was classified (no error row but those tolerated)."""
        return not any(category not in self.tolerated for category in self.errors)

    def add(self, block: Block) -> None:
        """Count the files a block finished in this run."""
        for done in block.done:
            if done.category is None:
                self.classified += 1
                self.faces += done.faces
                self.aligned += done.aligned
            else:
                if done.category in self.tolerated:
                    self.tolerated_files += 1
                else:
                    self.failed += 1
                self.errors[done.category] += 1

    def add_existing(self, categories: Sequence[str | None]) -> None:
        """Count files a resumed output already holds (their errors stay in ``errors``)."""
        self.skipped += len(categories)
        self.errors.update(category for category in categories if category)


def open_engine(request: ClassifyRequest) -> Engine:
    """The request's engine with its classifier open (local) or checked (Ray)."""
    if request.engine == "ray":
        return RayEngine.open(request.model, request.device, request.batch, request.resize, request.ray)
    return LocalEngine.open(request.model, request.device, request.batch, request.workers, request.resize,
                            request.save_crops, request.draw)


def classify(
    request: ClassifyRequest,
    engine: Engine | None = None,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> ClassifySummary:
    """Run ``request`` (see the module docstring) on ``engine`` (default: the request's,
    opened here) and return what it did.

    ``on_start(n)`` is called once with the number of files still to classify;
    ``on_batch(n)`` after each block's rows are safely written, with the number of
    files it finished (progress bars; tests use it to interrupt a run).
    """
    engine = engine or open_engine(request)
    with hold_output(request.output, FORMATS[request.format].folder):
        request.check_output()  # again: another run may have written it since the request was made
        return _run(request, engine, on_start, on_batch)


def _run(request: ClassifyRequest, engine: Engine, on_start: Callable[[int], None] | None,
         on_batch: Callable[[int], None] | None) -> ClassifySummary:
    started = time.perf_counter()
    info = engine.info
    detect = request.face_settings(info.raw)
    listing = list_sources(request.sources, recursive=request.recursive)
    files = without(listing.files, [request.output, *((request.save_crops, request.draw) if detect else ())])
    summary = ClassifySummary(
        output=request.output, model=str(engine.model_path), format=request.format, engine=engine.name,
        providers=list(engine.providers), notice=engine.notice, standin=info.standin,
        files=len(files) + len(listing.unlistable),
    )
    startup, opened = 0.0, False
    try:
        if files:
            startup = engine.start(len(files))
        writer, existing = _open_rows(request, info, summary, detect)
        opened = True
        with writer:
            unlisted, todo = _split_done(files, listing.unlistable, existing, summary, request.output)
            _write(writer, Block.of_rows(unlisted), summary)
            if on_start is not None:
                on_start(len(todo))
            if todo:
                for block in engine.blocks(todo, Reader(listing.roots), detect):
                    _write(writer, block, summary)
                    if on_batch is not None:
                        on_batch(len(block.done))
    except KeyboardInterrupt:
        raise Interrupted(opened) from None
    finally:
        engine.stop()
    summary.providers = list(engine.providers)
    summary.cluster = engine.cluster
    summary.seconds = time.perf_counter() - started - startup
    return summary


def _write(writer: RowWriter, block: Block, summary: ClassifySummary) -> None:
    if block.columns is not None:
        writer.write_columns(block.columns)
    elif block.rows:
        writer.write(block.rows)
    summary.add(block)


def _open_rows(request: ClassifyRequest, info, summary: ClassifySummary,
               detect: FaceSettings | None) -> tuple[RowWriter, ExistingRows]:
    """Open the output for the run's rows (one per face with ``detect``) and note in
    ``summary`` what the detection settings and a resume change."""
    columns, incomplete = Columns(info.gender_labels, info.value_columns), None
    if detect is not None:
        from gender_cli.infer.faces import incomplete_paths

        check_settings(detect)
        columns, incomplete = Columns(info.gender_labels, info.value_columns, FACE_COLUMNS), incomplete_paths
        summary.detection = detect
        summary.tolerated = frozenset() if request.require_face else frozenset({NO_FACE})
    writer, existing = open_writer(request.output, request.format, columns, request.resume, incomplete)
    summary.truncated_bytes = existing.cut_bytes
    summary.redone = existing.redone
    return writer, existing


def _split_done(files: Sequence[str], unlistable: Sequence[tuple[str, OSError]], existing: ExistingRows,
                summary: ClassifySummary, output: str) -> tuple[list[Row], list[str]]:
    """(rows for folders that could not be listed, files still to classify), leaving out
    what a resumed output already holds (matched by ``resume.done_files``); what it holds
    is counted into ``summary``."""
    held = done_files([*files, *(str(path) for path, _ in unlistable)], existing.categories, output)
    unlisted = [unlisted_row(path, exc) for path, exc in unlistable if str(path) not in held]
    summary.errors.update("unreadable" for path, _ in unlistable if str(path) in held)
    todo = [path for path in files if path not in held]
    summary.add_existing([held[path] for path in files if path in held])
    return unlisted, todo
