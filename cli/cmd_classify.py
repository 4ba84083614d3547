"""``gender-cli classify``: parse options, call the chosen engine, report on stderr.

Engines (``ENGINES``): ``local`` calls ``infer.classify.classify``; ``ray`` calls
``infer.classify_ray.classify_ray``. Both take the same output options and give the
same rows; the summary of a Ray run adds the cluster and the actors it used. Face
detection (``--detect``: one row per face) runs on both; ``--save-crops`` and ``--draw``
write files beside the run, so they are local-engine options.
"""

from __future__ import annotations

import os
import sys

import click

from gender_cli.atomic import FULL_DISK
from gender_cli.cli.help_format import epilog
from gender_cli.cli.messages import notice, threshold_notice, using_model, warn_if_standin
from gender_cli.cli.options import (
    RAY_OPTIONS, batch_option, check_output_location, detect_options, device_option, engine_option, model_option,
    quiet_option, ray_options, workers_option,
)
from gender_cli.infer.detect import FACE_COLUMNS, NO_FACE, settings_for_model, trained_on_faces_notice
from gender_cli.infer.images import RESIZE_MODES
from gender_cli.infer.output import FOLDER_FORMATS, FORMATS, STDOUT, infer_format
from gender_cli.infer.sources import is_uri

EXIT_SOME_FAILED = 3
EXIT_INTERRUPTED = 130


DEFAULT_OUTPUTS = {"parquet": "predictions.parquet"}  # format -> default output; else:
DEFAULT_OUTPUT = "predictions.csv"


class SourceType(click.ParamType):
    """A local file or folder that exists, or a URI (checked by the Ray engine)."""

    name = "source"

    def convert(self, value, param, ctx):
        if is_uri(value):
            return value
        return click.Path(exists=True, path_type=str).convert(value, param, ctx)


@click.command(
    "classify",
    epilog=epilog(
        "gender-cli classify photos/ -o predictions.csv",
        {
            0: "every file was classified",
            1: "the model is missing or invalid, the output cannot be written, or the Ray run failed",
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
    "own threshold, and a notice says so). '-' writes to stdout; parquet output is a folder. Default: "
    f"{DEFAULT_OUTPUT} ({DEFAULT_OUTPUTS['parquet']}/ for parquet).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Output format. Default: from the output's extension (.jsonl/.ndjson -> jsonl, "
    ".parquet -> parquet), else csv. parquet writes a folder of part files (needs pyarrow, "
    "in the [ray] extra).",
)
@batch_option(64)
@device_option
@workers_option
@click.option(
    "--recursive/--no-recursive",
    default=True,
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

    SRC is a folder or file; with --engine ray also a URI that pyarrow reads
    (file://, s3://, gs://, ...).
    """
    if resume and force:
        raise click.UsageError("--resume and --force contradict each other; choose one")
    fmt = fmt or (infer_format(output, None) if output else None)
    output = output or DEFAULT_OUTPUTS.get(fmt, DEFAULT_OUTPUT)
    _check_engine_options(engine, folders, workers, ray)
    _check_output(output, infer_format(output, fmt), resume, force)
    faces = _check_detect_options(detect, require_face, save_crops, draw, engine, infer_format(output, fmt))

    bar = _ProgressBar(disabled=quiet)
    options = dict(
        fmt=fmt, batch_size=batch, recursive=recursive, resize=resize, resume=resume,
        on_start=bar.start, on_batch=bar.update,
    )
    try:
        summary = ENGINES[engine](folders, model_path, output, device, workers, quiet, ray, options, faces)
    except KeyboardInterrupt:
        bar.close()
        click.echo(
            f"Interrupted. Every row in {output} is complete; rerun with --resume to finish.", err=True
        )
        sys.exit(EXIT_INTERRUPTED)
    except OSError as exc:
        bar.close()
        if exc.filename != output or exc.errno not in FULL_DISK:
            raise
        raise click.ClickException(
            f"cannot write {output}: {exc.strerror}. Every row before it is complete: free some "
            "space, then rerun the same command with --resume"
        ) from None
    bar.close()
    if summary.files == 0:
        click.echo(f"Warning: no files found under {', '.join(folders)}", err=True)
    if not quiet:
        click.echo(_format_summary(summary), err=True)
    if not summary.all_classified:
        sys.exit(EXIT_SOME_FAILED)


def _check_engine_options(engine: str, sources, workers, ray: dict) -> None:
    if engine == "ray":
        if workers is not None:
            raise click.UsageError("--workers sets the local engine's decode threads; with --engine ray, decoding runs as Ray tasks")
        return
    for name in RAY_OPTIONS:
        if ray[name] is not None:
            raise click.UsageError(f"--{name.replace('_', '-')} applies to --engine ray")
    uris = [s for s in sources if is_uri(s)]
    if uris:
        raise click.UsageError(f"{uris[0]}: URIs need --engine ray (the local engine reads local folders)")


def _check_detect_options(detect, require_face, save_crops, draw, engine: str, fmt: str) -> dict:
    """The face options for the local engine ({} without --detect), or a usage error."""
    face_only = {"--require-face": require_face, "--save-crops": save_crops, "--draw": draw}
    if detect is None:
        if any(face_only.values()):
            raise click.UsageError(f"{', '.join(k for k, v in face_only.items() if v)}: only with --detect")
        return {}
    if engine != "local" and (save_crops or draw):
        raise click.UsageError("--save-crops and --draw write beside the run: use them with --engine local")
    if fmt in FOLDER_FORMATS:
        raise click.UsageError(f"--detect writes one row per face as CSV or JSONL, not --format {fmt}")
    for param, folder in (("--save-crops", save_crops), ("--draw", draw)):
        if folder:
            check_output_location(folder, param)
    return {"detect": detect, "require_face": require_face, "save_crops": save_crops, "draw": draw}


def _check_output(output: str, fmt: str, resume: bool, force: bool) -> None:
    if output == STDOUT:
        if resume:
            raise click.UsageError("--resume needs an output file, not '-'")
        if fmt in FOLDER_FORMATS:
            raise click.UsageError(f"--format {fmt} writes a folder of files; give -o FOLDER, not '-'")
        return
    if fmt in FOLDER_FORMATS:
        if os.path.exists(output) and not os.path.isdir(output):
            raise click.UsageError(f"--output {output} is a file; --format {fmt} writes a folder")
        exists = os.path.isdir(output) and bool(os.listdir(output))
    else:
        if os.path.isdir(output):
            raise click.UsageError(f"--output {output} is a folder; give a file name")
        exists = os.path.exists(output)
    if exists and not (resume or force):
        raise click.UsageError(
            f"{output} already exists; pass --resume to continue it or --force to replace it"
        )


def _run_local(sources, model_path, output, device, workers, quiet, ray, options, faces):
    from gender_cli.infer.classify import classify, load_classifier

    model = load_classifier(model_path, device)
    detect = _announce(model.path, model.info, quiet, faces, model.notice)
    return classify(sources, model, output, workers=workers, **options, **dict(faces, detect=detect))


def _run_ray(sources, model_path, output, device, workers, quiet, ray, options, faces):
    from gender_cli.infer.classify_ray import check_classifier, classify_ray
    from gender_cli.infer.ray_cluster import require_ray

    require_ray()
    model = check_classifier(model_path)
    detect = _announce(model.path, model.info, quiet, faces)
    return classify_ray(sources, model, output, device=device, detect=detect,
                        require_face=faces.get("require_face", False), **ray, **options)


def _announce(path, info, quiet: bool, faces: dict, device_notice: str | None = None):
    """Say which model runs (and what to know about it); return the detection settings
    to use: those given, then the model's (None without --detect)."""
    using_model(path, info.precision, quiet)
    warn_if_standin(info.standin)
    notice(device_notice, quiet)
    notice(threshold_notice(info.gender_labels, info.threshold), quiet)
    detect = settings_for_model(faces.get("detect"), info.raw)
    if detect is None:
        notice(trained_on_faces_notice(info.raw), quiet)
    return detect


ENGINES = {"local": _run_local, "ray": _run_ray}


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


def _format_summary(summary) -> str:
    lines = [
        f"files: {summary.files}  classified: {summary.classified}  failed: {summary.failed}"
        + (f"  already done (--resume): {summary.skipped}" if summary.skipped else ""),
        f"speed: {summary.images_per_second:.1f} img/s  providers: {', '.join(summary.providers) or '-'}",
    ]
    if getattr(summary, "plan", None):
        lines.append(
            f"ray: {summary.address}, {summary.cluster}; used {summary.plan}; "
            f"start-up {summary.startup_seconds:.1f} s (not in img/s)"
        )
    if summary.errors:
        lines.append(
            "errors: " + ", ".join(f"{category} {count}" for category, count in sorted(summary.errors.items()))
        )
    if summary.truncated_bytes:
        lines.append(f"resume: removed a partial last row ({summary.truncated_bytes} bytes)")
    if getattr(summary, "detection", None):
        lines.insert(1, _format_faces(summary))
    if getattr(summary, "redone", 0):
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
