"""Where each verb leaves its output and where the next verb finds it.

The workspace is ``$GENDER_CLI_HOME`` (default ``~/.gender-cli``)::

    converted/            convert: network/ (layer table, TF-free), head/ (ready classifiers),
                          model.keras (with --keras)
    models/               export: backbone-<descriptor>[-<precision>].onnx, classifier-<precision>.onnx,
                          default (the name of the classifier verbs use without --model)
    runs/NNN/             train: one numbered folder per run (head, metrics, plots)
    evaluations/, audits/, reports/   <name>-NNN/ per evaluate, audit and report run
    cache/descriptors/    train: cached backbone descriptors
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from gender_cli.errors import GenderCliError, MissingArtifactError

ENV_VAR = "GENDER_CLI_HOME"


def home() -> Path:
    return Path(os.environ.get(ENV_VAR) or Path.home() / ".gender-cli").expanduser()


def converted_dir() -> Path:
    return home() / "converted"


def network_dir() -> Path:
    """The framework-free layer table written by ``convert`` (read by ``export``)."""
    return converted_dir() / "network"


def converted_head_dir() -> Path:
    """The head ``convert`` writes when the source is a ready classifier (deepface's gender model)."""
    return converted_dir() / "head"


def keras_model_path() -> Path:
    return converted_dir() / "model.keras"


def models_dir() -> Path:
    return home() / "models"


def backbone_path(descriptor: str, precision: str = "fp32") -> Path:
    """fp32 backbones (what ``train`` extracts descriptors with) keep the short name."""
    suffix = "" if precision == "fp32" else f"-{precision}"
    return models_dir() / f"backbone-{descriptor}{suffix}.onnx"


def classifier_path(precision: str) -> Path:
    return models_dir() / f"classifier-{precision}.onnx"


def runs_dir() -> Path:
    return home() / "runs"


def descriptor_cache_dir() -> Path:
    return home() / "cache" / "descriptors"


_RUN_NAME = re.compile(r"^\d{3,}$")


def _numbered_runs() -> list[Path]:
    if not runs_dir().is_dir():
        return []
    runs = [p for p in runs_dir().iterdir() if p.is_dir() and _RUN_NAME.match(p.name)]
    return sorted(runs, key=lambda p: int(p.name))


def new_run_dir() -> Path:
    """Create and return the next numbered run folder (``runs/001``, ``runs/002``, ...)."""
    runs = _numbered_runs()
    number = int(runs[-1].name) + 1 if runs else 1
    path = runs_dir() / f"{number:03d}"
    path.mkdir(parents=True, exist_ok=False)
    return path


def new_output_dir(kind: str, stem: str) -> Path:
    """Create and return ``$GENDER_CLI_HOME/<kind>/<stem>-NNN`` (the next free number):
    where evaluate, audit and report write without ``-o``."""
    base = home() / kind
    base.mkdir(parents=True, exist_ok=True)
    n = 1
    while (base / f"{stem}-{n:03d}").exists():
        n += 1
    path = base / f"{stem}-{n:03d}"
    path.mkdir()
    return path


def latest_head_dir() -> Path:
    """The newest run folder that holds a finished head (gender, age or both)."""
    from gender_cli.head_spec import heads_in

    for run in reversed(_numbered_runs()):
        if heads_in(run):
            return run
    raise MissingArtifactError(
        f"no trained head in {runs_dir()}; run 'gender-cli train DATA/' first"
    )


DEFAULT_POINTER = "default"  # models/default: the file name of the default classifier


def default_pointer() -> Path:
    return models_dir() / DEFAULT_POINTER


def set_default_classifier(path: Path) -> Path:
    """Make ``path`` (a file in models/) what classify, bench and evaluate use by default."""
    from gender_cli.atomic import write_bytes_atomically

    path = Path(path)
    if path.resolve().parent != models_dir().resolve():
        raise GenderCliError(f"the default classifier must be in {models_dir()}, not {path}")
    return write_bytes_atomically(default_pointer(), f"{path.name}\n".encode())


def default_classifier() -> Path:
    """The classifier the user chose (``models/default``), else ``classifier-fp32.onnx``.

    Never the newest file: exporting an fp16 or int8 variant does not change what
    classify runs; ``export --set-default`` does.
    """
    pointer = default_pointer()
    if pointer.is_file():
        name = pointer.read_text().strip()
        path = models_dir() / name
        if not name or not path.is_file():
            raise MissingArtifactError(
                f"{pointer} names {name!r}, which is not in {models_dir()}; choose one with "
                "'gender-cli export --set-default' or pass --model FILE.onnx"
            )
        return path
    fp32 = classifier_path("fp32")
    if fp32.is_file():
        return fp32
    others = sorted(p.name for p in models_dir().glob("classifier-*.onnx")) if models_dir().is_dir() else []
    if others:
        raise MissingArtifactError(
            f"no default classifier in {models_dir()} (it holds {', '.join(others)}); pass "
            "--model FILE.onnx or make one the default with 'gender-cli export --precision P --set-default'"
        )
    raise MissingArtifactError(
        f"no exported classifier in {models_dir()}; make one with 'gender-cli convert' "
        "then 'gender-cli train DATA/' (it exports classifier-fp32.onnx; 'gender-cli export' makes "
        "the fp16 and int8 ones), or pass --model FILE.onnx"
    )


def require_network_dir() -> Path:
    path = network_dir()
    if not (path / "network.json").is_file():
        raise MissingArtifactError(
            f"no converted model in {converted_dir()}; run 'gender-cli convert vgg_face.mat' first"
        )
    return path
