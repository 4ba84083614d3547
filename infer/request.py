"""What a ``classify`` run is asked to do, checked once: :class:`ClassifyRequest`.

The CLI builds one from its options and ``Classifier.classify`` from its arguments; the
run (``classify.classify``) trusts it. Each field's default is the one default of that
option: the CLI's ``--help`` reads it from here. Options that contradict each other,
or an output that the request may not touch as asked, raise
:class:`~gender_cli.errors.RequestError` before anything is opened or written.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from gender_cli.atomic import location_problem
from gender_cli.devices import DEFAULT_DEVICE, DEVICES
from gender_cli.errors import Option, RequestError
from gender_cli.infer.batches import DEFAULT_BATCH
from gender_cli.infer.detect import FaceOptions, FaceSettings, settings_for_model
from gender_cli.infer.engine import DEFAULT_ENGINE, ENGINES
from gender_cli.infer.engine_ray import RayOptions
from gender_cli.infer.images import RESIZE_MODES
from gender_cli.infer.lock import LOCK_NAME
from gender_cli.infer.sources import is_remote
from gender_cli.infer.writer import FORMATS, STDOUT, resolve_format

MAX_BATCH = 4096


@dataclass(frozen=True)
class ClassifyRequest:
    """One ``classify`` run: every file under ``sources`` -> one row per file (per face
    with ``detect``) in ``output``.

    Example::

        request = ClassifyRequest(["photos/"], output="rows.jsonl", batch=32)
        summary = classify(request)        # gender_cli.infer.classify
    """

    sources: Sequence[str | os.PathLike]  # folders, files, or URIs pyarrow reads (s3://, file://, ...)
    model: str | os.PathLike | None = None  # an exported classifier; None: the workspace's default one
    output: str | None = None  # a file, a parquet folder (or s3://bucket/run/), "-": stdout; None: the format's default
    format: str | None = None  # csv, jsonl or parquet; None: from the output's extension, else csv
    resume: bool = False  # keep the output's rows, skip their files, append the rest
    force: bool = False  # replace an existing output
    batch: int = DEFAULT_BATCH  # images per inference batch
    device: str = DEFAULT_DEVICE  # auto, cuda or cpu
    workers: int | None = None  # decode threads of the local engine; None: one per core (4 for object stores)
    recursive: bool = True  # look inside sub-folders
    resize: str | None = None  # stretch or center-crop; None: what the model's metadata says
    detect: FaceOptions | bool | dict | None = None  # find, align and crop every face first (FaceOptions.of)
    require_face: bool = False  # with detect: a file without a face fails the run
    save_crops: str | None = None  # with detect, local engine: write each aligned crop under this folder
    draw: str | None = None  # with detect, local engine: write each photo with its boxes under this folder
    engine: str = DEFAULT_ENGINE  # local or ray
    ray: RayOptions = field(default_factory=RayOptions)  # with engine ray: where and how big

    def __post_init__(self) -> None:
        self._set("sources", source_names(self.sources))
        self._set("detect", FaceOptions.of(self.detect))
        if self.model is not None:
            self._set("model", os.fspath(self.model))
        for name in ("save_crops", "draw"):
            if getattr(self, name) is not None:
                self._set(name, os.fspath(getattr(self, name)))
        if self.output is not None:
            self._set("output", os.fspath(self.output))
        self._check_values()
        fmt = resolve_format(self.output, self.format)
        self._set("format", fmt)
        self._set("output", self.output or FORMATS[fmt].default_output)
        self._check_engine()
        self.check_output()
        self._check_faces()

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)  # normalising a frozen request, once

    # -- checks, in the order the CLI has always reported them
    def _check_values(self) -> None:
        if not self.sources:
            raise RequestError("give at least one folder, file or URI to classify")
        if self.resume and self.force:
            raise RequestError(Option("resume"), " and ", Option("force"), " contradict each other; choose one")
        for name, value, choices in (("device", self.device, DEVICES), ("engine", self.engine, ENGINES),
                                     ("format", self.format, (None, *FORMATS)),
                                     ("resize", self.resize, (None, *RESIZE_MODES))):
            if value not in choices:
                raise RequestError(f"must be one of {', '.join(c for c in choices if c)}, not {value!r}", option=name)
        if not 1 <= self.batch <= MAX_BATCH:
            raise RequestError(f"must lie in 1..{MAX_BATCH}, not {self.batch}", option="batch")
        if self.workers is not None and self.workers < 1:
            raise RequestError(f"must be at least 1, not {self.workers}", option="workers")

    def _check_engine(self) -> None:
        if self.engine == "ray":
            if self.workers is not None:
                raise RequestError(Option("workers"), " sets the local engine's decode threads; with ",
                                   Option("engine", "ray"), ", decoding runs as Ray tasks")
            return
        for name in self.ray.given():
            raise RequestError(Option(name), " applies to ", Option("engine", "ray"))

    def check_output(self) -> None:
        """Refuse an output the request may not touch as asked (one that holds rows,
        without ``resume`` or ``force``); the run checks again once it holds the output's lock."""
        output, spec = self.output, FORMATS[self.format]
        if output == STDOUT:
            if self.resume:
                raise RequestError(Option("resume"), " needs an output file, not '-'")
            if spec.folder:
                raise RequestError(Option("format", self.format), " writes a folder of files; give ",
                                   Option("output"), " FOLDER, not '-'")
            return
        if is_remote(output):
            exists = self._check_remote_output()
        elif spec.folder:
            if os.path.exists(output) and not os.path.isdir(output):
                raise RequestError(Option("output"), f" {output} is a file; ", Option("format", self.format),
                                   " writes a folder")
            exists = os.path.isdir(output) and any(name != LOCK_NAME for name in os.listdir(output))
        else:
            if os.path.isdir(output):
                raise RequestError(Option("output"), f" {output} is a folder; give a file name")
            exists = os.path.exists(output) and os.path.getsize(output) > 0  # an empty file holds no rows
        if exists and not (self.resume or self.force):
            raise RequestError(f"{output} already exists; pass ", Option("resume", True), " to continue it or ",
                               Option("force", True), " to replace it")

    def _check_remote_output(self) -> bool:
        """Whether the object-store output holds files already; only a folder of parts can go there."""
        if not FORMATS[self.format].folder:
            raise RequestError(Option("format", self.format), f" cannot write to {self.output}: an object cannot be "
                               "appended to, so rows could not be kept as they come; use ", Option("format", "parquet"),
                               " (a folder of parts, each written whole) or write the file locally")
        from gender_cli.infer.parquet_parts import holds_files

        return holds_files(self.output)

    def _check_faces(self) -> None:
        beside = {"require_face": self.require_face, "save_crops": self.save_crops, "draw": self.draw}
        if self.detect is None:
            given = [Option(name) for name, value in beside.items() if value]
            if given:
                raise RequestError(*_joined(given), ": only with ", Option("detect"))
            return
        if self.resize is not None:
            raise RequestError(Option("resize", self.resize), " does not apply with ", Option("detect"),
                               ": each face's square crop is resized whole")
        if self.engine != "local" and (self.save_crops or self.draw):
            raise RequestError(Option("save_crops"), " and ", Option("draw"), " write beside the run: use them with ",
                               Option("engine", "local"))
        if not FORMATS[self.format].faces:
            raise RequestError(Option("detect"), " writes one row per face as CSV or JSONL, not ",
                               Option("format", self.format))
        for name in ("save_crops", "draw"):
            folder = getattr(self, name)
            problem = location_problem(folder) if folder else None
            if problem:
                raise RequestError(problem, option=name)

    def face_settings(self, raw_metadata: dict[str, str]) -> FaceSettings | None:
        """The settings to detect with for a model: those asked for, then the model's
        (``raw_metadata``), then the defaults; None without detection."""
        return settings_for_model(self.detect, raw_metadata)


def source_names(sources: str | os.PathLike | Sequence[str | os.PathLike]) -> tuple[str, ...]:
    """One source or several, as the names a run lists (paths as spelled, URIs as given)."""
    sources = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    return tuple(os.fspath(source) for source in sources)


def _joined(parts: list) -> list:
    """``a, b, c`` as message parts."""
    out: list = []
    for index, part in enumerate(parts):
        out += [", "] * bool(index) + [part]
    return out
