"""``gender-cli classify``: options -> a ``ClassifyRequest`` -> the run; the summary on stderr.

The request checks the options, ``infer.classify`` runs it on the chosen engine
(``local`` or ``ray``, same rows) and returns the summary this module prints. The
Python API's ``Classifier.classify`` builds the same request and runs the same code.
"""

from __future__ import annotations

import sys

import click

from gender_cli.atomic import FULL_DISK
from gender_cli.cli.help_format import epilog
from gender_cli.cli.main import INTERRUPTED
from gender_cli.cli.messages import notice, threshold_notice, using_model, warn_if_standin
from gender_cli.cli.options import (
    batch_option, default_of, detect_options, device_option, engine_option, model_option, quiet_option, ray_options,
    request_errors, workers_option,
)
from gender_cli.infer.detect import FACE_COLUMNS, NO_FACE, trained_on_faces_notice
from gender_cli.infer.engine_ray import RayOptions
from gender_cli.infer.images import RESIZE_MODES
from gender_cli.infer.request import ClassifyRequest
from gender_cli.infer.sources import is_uri
from gender_cli.infer.writer import DEFAULT_FORMAT, FORMATS, STDOUT

EXIT_SOME_FAILED = 3
EXIT_INTERRUPTED = INTERRUPTED


class SourceType(click.ParamType):
    """A local file or folder that exists, or a URI (listed when the run starts)."""

    name = "source"

    def convert(self, value, param, ctx):
        if is_uri(value):
            return value
        return click.Path(exists=True, path_type=str).convert(value, param, ctx)


def _default_outputs() -> str:
    others = [f"{spec.default_output}{'/' if spec.folder else ''} for {name}"
              for name, spec in FORMATS.items() if name != DEFAULT_FORMAT]
    return f"{FORMATS[DEFAULT_FORMAT].default_output} ({', '.join(others)})"


def _extensions() -> str:
    return ", ".join(f"{'/'.join(spec.extensions)} -> {name}" for name, spec in FORMATS.items()
                     if name != DEFAULT_FORMAT)


@click.command(
    "classify",
    epilog=epilog(
        "gender-cli classify photos/ -o predictions.csv",
        {
            0: "every file was classified",
            1: "the model is missing or invalid, the output cannot be written or another run is writing it, "
               "a resume matches none of the output's rows, or the Ray run failed",
            2: "usage error (bad option, output exists without --resume/--force)",
            3: "some files could not be read or decoded (their rows say why); with --detect "
               "--require-face, also files without a face",
            130: "interrupted: the rows written so far are complete; rerun with --resume",
        },
    ),
)
@click.argument("folders", nargs=-1, required=True, metavar="SRC...", type=SourceType())
@model_option
@click.option(
    "-o",
    "--output",
    default=None,
    help="Where to write one row per file: path, label, p_<label> per label, age (graphs with "
    "the age head), error (with --detect one row per face, with "
    f"{', '.join(FACE_COLUMNS)} after path). label is the second label when its probability "
    "reaches the graph's threshold, else the first; 'gender-cli train' calibrates the head and sets "
    "that threshold to 0.5, so the label is the larger probability (a graph made before keeps its "
    "own threshold, and a notice says so). '-' writes to stdout; parquet output is a folder, local or "
    "in an object store (s3://bucket/run/; CSV and JSONL are written locally). Default: "
    f"{_default_outputs()}.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(list(FORMATS)),
    default=None,
    help=f"Output format. Default: from the output's extension ({_extensions()}), else {DEFAULT_FORMAT}. "
    "parquet writes a folder of part files (needs pyarrow, in the [ray] extra).",
)
@batch_option(default_of(ClassifyRequest, "batch"))
@device_option
@workers_option
@click.option(
    "--recursive/--no-recursive",
    default=default_of(ClassifyRequest, "recursive"),
    show_default=True,
    help="Look inside sub-folders (symlinks are followed, each folder once).",
)
@click.option(
    "--resize",
    type=click.Choice(RESIZE_MODES),
    default=None,
    help="How images reach the model's input size: 'stretch' the whole image (aspect "
    "ignored; right for face crops) or 'center-crop' after scaling the short side. "
    "Default: what the model's metadata says (stretch).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted run: keep the output's rows, skip their files, append the rest.",
)
@click.option("--force", is_flag=True, help="Replace an existing output file instead of refusing.")
@detect_options()
@click.option("--require-face", is_flag=True,
              help="With --detect: a file without a face fails the run (exit status 3) like an unreadable one.")
@click.option("--save-crops", type=click.Path(file_okay=False, path_type=str), default=None,
              help="With --detect (local engine): write each aligned face crop (what the model saw) as PNG "
                   "under this folder.")
@click.option("--draw", type=click.Path(file_okay=False, path_type=str), default=None,
              help="With --detect (local engine): write each photo with its boxes and labels as JPEG under "
                   "this folder.")
@engine_option
@ray_options
@quiet_option
def classify(folders, model_path, output, fmt, batch, device, workers, recursive, resize, resume, force, detect,
             require_face, save_crops, draw, engine, quiet, **ray):
    """Classify every file under SRC... (one row per file, or per face with --detect;
    unreadable files get an error row).

    SRC is a folder or file, file:// URI, or a URI that pyarrow reads (s3://, gs://,
    ...; needs pyarrow, in the [ray] extra).
    """
    from gender_cli.infer import classify as run

    with request_errors():
        request = ClassifyRequest(
            folders, model=model_path, output=output, format=fmt, resume=resume, force=force, batch=batch,
            device=device, workers=workers, recursive=recursive, resize=resize, detect=detect,
            require_face=require_face, save_crops=save_crops, draw=draw, engine=engine, ray=RayOptions(**ray),
        )
    bar = _ProgressBar(disabled=quiet)
    engine = None
    try:
        engine = run.open_engine(request)
        _announce(engine, request, quiet)
        with request_errors():  # the output's check, repeated once the run holds its lock
            summary = run.classify(request, engine=engine, on_start=bar.start, on_batch=bar.update)
    except KeyboardInterrupt as exc:
        summary, opened = None, getattr(exc, "opened", False)  # not the exception: its frames hold the session
    except OSError as exc:
        bar.close()
        if exc.filename != request.output or exc.errno not in FULL_DISK:
            raise
        raise click.ClickException(
            f"cannot write {request.output}: {exc.strerror}. Every row before it is complete: free some "
            "space, then rerun the same command with --resume"
        ) from None
    bar.close()
    if summary is None:  # interrupted
        if opened:
            click.echo(f"Interrupted. Every row in {request.output} is complete; rerun with --resume to finish.",
                       err=True)
        else:
            click.echo(f"Interrupted before {request.output} was opened: nothing was written.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if summary.files == 0:
        click.echo(f"Warning: no files found under {', '.join(folders)}", err=True)
    if not quiet:
        click.echo(format_summary(summary), err=True)
    if not summary.all_classified:
        sys.exit(EXIT_SOME_FAILED)


def _announce(engine, request: ClassifyRequest, quiet: bool) -> None:
    """Say which model runs and what to know about it (stand-in weights, the device, a
    model trained on faces run without detection)."""
    info = engine.info
    using_model(engine.model_path, info.precision, quiet)
    warn_if_standin(info.standin)
    notice(engine.notice, quiet)
    notice(threshold_notice(info.gender_labels, info.threshold), quiet)
    if request.detect is None:
        notice(trained_on_faces_notice(info.raw), quiet)


class _ProgressBar:
    def __init__(self, disabled: bool):
        self.disabled = disabled
        self.bar = None

    def start(self, total: int) -> None:
        if not self.disabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True)

    def update(self, count: int) -> None:
        if self.bar is not None:
            self.bar.update(count)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def format_summary(summary) -> str:
    """The lines the CLI prints after a run (``ClassifySummary``)."""
    lines = [
        f"files: {summary.files}  classified: {summary.classified}  failed: {summary.failed}"
        + (f"  already done (--resume): {summary.skipped}" if summary.skipped else ""),
        f"speed: {summary.images_per_second:.1f} img/s  providers: {', '.join(summary.providers) or '-'}",
    ]
    if summary.cluster is not None:
        ray = summary.cluster
        lines.append(
            f"ray: {ray.address}, {ray.cluster}; used {ray.plan}; start-up {ray.startup_seconds:.1f} s (not in img/s)"
        )
    if summary.errors:
        lines.append(
            "errors: " + ", ".join(f"{category} {count}" for category, count in sorted(summary.errors.items()))
        )
    if summary.truncated_bytes:
        lines.append(f"resume: removed a partial last row ({summary.truncated_bytes} bytes)")
    if summary.detection is not None:
        lines.insert(1, _format_faces(summary))
    if summary.redone:
        lines.append(f"resume: {summary.redone} file(s) had only part of their face rows; done again")
    destination = "stdout" if summary.output == STDOUT else summary.output
    lines.append(f"rows written to {destination}")
    return "\n".join(lines)


def _format_faces(summary) -> str:
    tolerated = " (not a failure without --require-face)" if summary.tolerated else ""
    return (
        f"faces: {summary.faces} in {summary.classified} files, no face: {summary.errors.get(NO_FACE, 0)}{tolerated}; "
        f"{summary.detection.summary()} (eyes found for {summary.aligned} of {summary.faces})"
    )
