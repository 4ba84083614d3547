"""``gender-cli classify``: parse options, call infer.classify, report on stderr."""

from __future__ import annotations

import os
import sys

import click

from gender_cli.cli.options import (
    batch_option, check_output_location, detect_options, device_option, model_option, quiet_option, workers_option,
)
from gender_cli.infer.detect import FACE_COLUMNS, NO_FACE
from gender_cli.infer.images import RESIZE_MODES
from gender_cli.infer.output import FORMATS, STDOUT
from gender_cli.cli.help_format import epilog
from gender_cli.atomic import FULL_DISK
from gender_cli.cli.messages import notice, using_model, warn_if_standin

EXIT_SOME_FAILED = 3
EXIT_INTERRUPTED = 130


@click.command(
    "classify",
    epilog=epilog(
        "gender-cli classify photos/ -o predictions.csv",
        {
            0: "every file was classified",
            1: "the model is missing or invalid, or the output cannot be written",
            2: "usage error (bad option, output exists without --resume/--force)",
            3: "some files could not be read or decoded (their rows say why); with --detect "
               "--require-face, also files without a face",
            130: "interrupted: the rows written so far are complete; rerun with --resume",
        },
    ),
)
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, path_type=str))
@model_option
@click.option(
    "-o",
    "--output",
    default="predictions.csv",
    show_default=True,
    help="Where to write one row per file: path, label, p_<label> per label, age (graphs with "
    "the age head), error (with --detect one row per face, with "
    f"{', '.join(FACE_COLUMNS)} after path). '-' writes to stdout.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Output format. Default: from the output's extension (.jsonl/.ndjson -> jsonl), else csv.",
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
              help="With --detect: write each aligned face crop (what the model saw) as PNG under this folder.")
@click.option("--draw", type=click.Path(file_okay=False, path_type=str), default=None,
              help="With --detect: write each photo with its boxes and labels as JPEG under this folder.")
@quiet_option
def classify(folders, model_path, output, fmt, batch, device, workers, recursive, resize, resume, force, detect,
             require_face, save_crops, draw, quiet):
    """Classify every file under FOLDER... (one row per file, or per face with --detect;
    unreadable files get an error row)."""
    from gender_cli.infer.classify import classify, load_classifier
    from gender_cli.infer.detect import settings_for_model, trained_on_faces_notice

    if resume and force:
        raise click.UsageError("--resume and --force contradict each other; choose one")
    if output == STDOUT and resume:
        raise click.UsageError("--resume needs an output file, not '-'")
    if output != STDOUT and os.path.isdir(output):
        raise click.UsageError(f"--output {output} is a folder; give a file name")
    if output != STDOUT and os.path.exists(output) and not (resume or force):
        raise click.UsageError(
            f"{output} already exists; pass --resume to continue it or --force to replace it"
        )

    face_only = {"--require-face": require_face, "--save-crops": save_crops, "--draw": draw}
    if detect is None and any(face_only.values()):
        raise click.UsageError(f"{', '.join(k for k, v in face_only.items() if v)}: only with --detect")
    for param, folder in (("--save-crops", save_crops), ("--draw", draw)):
        if folder:
            check_output_location(folder, param)

    model = load_classifier(model_path, device)
    using_model(model.path, model.info.precision, quiet)
    warn_if_standin(model.info.standin)
    notice(model.notice, quiet)
    settings = settings_for_model(detect, model.info.raw)
    if settings is None:
        notice(trained_on_faces_notice(model.info.raw), quiet)

    bar = _ProgressBar(disabled=quiet)
    try:
        summary = classify(
            folders,
            model,
            output,
            fmt=fmt,
            batch_size=batch,
            workers=workers,
            recursive=recursive,
            resize=resize,
            resume=resume,
            on_start=bar.start,
            on_batch=bar.update,
            detect=settings,
            require_face=require_face,
            save_crops=save_crops,
            draw=draw,
        )
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
        f"speed: {summary.images_per_second:.1f} img/s  providers: {', '.join(summary.providers)}",
    ]
    if summary.errors:
        lines.append(
            "errors: " + ", ".join(f"{category} {count}" for category, count in sorted(summary.errors.items()))
        )
    if summary.truncated_bytes:
        lines.append(f"resume: removed a partial last row ({summary.truncated_bytes} bytes)")
    if summary.detection:
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
