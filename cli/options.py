"""Option bundles shared by several verbs, so one flag means one thing everywhere.

Defaults come from the library (a request's dataclass fields, its module constants),
never from literals here, so ``--help`` and the Python API agree.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from contextlib import contextmanager
from pathlib import Path

import click

from gender_cli.atomic import location_problem
from gender_cli.devices import DEFAULT_DEVICE, DEVICE_HELP, DEVICES
from gender_cli.errors import Option, RequestError
from gender_cli.infer import detect as face_detect
from gender_cli.infer.engine import DEFAULT_ENGINE, ENGINES
from gender_cli.infer.ray_cluster import DECODE_CPUS, GPU_ACTOR_CPUS
from gender_cli.infer.request import MAX_BATCH


def default_of(cls, name: str):
    """The default of dataclass field ``name``: where an option's default lives."""
    for item in dataclasses.fields(cls):
        if item.name == name:
            return item.default_factory() if item.default is dataclasses.MISSING else item.default
    raise KeyError(f"{cls.__name__} has no field {name!r}")


@contextmanager
def request_errors(arguments: dict[str, str] | None = None):
    """A library :class:`RequestError` as Click's usage error (exit status 2), its options
    spelled as flags; one at fault of a single option as that option's bad value
    (``arguments``: how the command names the options that are its arguments)."""
    try:
        yield
    except RequestError as exc:
        message = exc.spelled(cli=True)
        if exc.option:
            hint = (arguments or {}).get(exc.option) or Option(exc.option).spelled(cli=True)
            raise click.BadParameter(message, param_hint=hint) from None
        raise click.UsageError(message) from None


def device_option(fn):
    return click.option(
        "--device",
        type=click.Choice(DEVICES),
        default=DEFAULT_DEVICE,
        show_default=True,
        help=DEVICE_HELP,
    )(fn)


def batch_option(default: int):
    def decorator(fn):
        return click.option(
            "--batch",
            type=click.IntRange(1, MAX_BATCH),
            default=default,
            show_default=True,
            help="Images per inference batch (fewer for a smaller job; on CUDA a short "
            "last batch is padded to keep one shape, on the CPU it runs as it is).",
        )(fn)

    return decorator


def model_option(fn):
    return click.option(
        "--model",
        "model_path",
        type=click.Path(dir_okay=False, path_type=str),
        default=None,
        help="Exported classifier (.onnx). Default: the workspace's latest "
        "'gender-cli export' output.",
    )(fn)


def quiet_option(fn):
    return click.option(
        "--quiet", "-q", is_flag=True, help="No progress bar or summary on stderr."
    )(fn)


def workers_option(fn):
    return click.option(
        "--workers",
        type=click.IntRange(1, 256),
        default=None,
        help="Image decoding threads running beside inference. Default: number of CPU cores (four per core "
        "for files in an object store, whose reads wait on the network).",
    )(fn)


def engine_option(fn):
    return click.option(
        "--engine",
        type=click.Choice(list(ENGINES)),
        default=DEFAULT_ENGINE,
        show_default=True,
        help="'local': decode threads and one onnxruntime session in this process. 'ray': the same "
        "decode and graph as Ray Data stages (CPU decode tasks, inference actors) on a Ray "
        "cluster; needs the [ray] extra.",
    )(fn)


# Options that only --engine ray reads: RayOptions field -> the click option that declares it.
RAY_OPTIONS = {
    "address": click.option(
        "--ray-address",
        "address",
        default=None,
        metavar="ADDR",
        help="Ray cluster to run on (--engine ray). Default: $RAY_ADDRESS; without either, a local "
        "Ray is started for the run and stopped after it.",
    ),
    "actors": click.option(
        "--actors",
        type=click.IntRange(1, 4096),
        default=None,
        help="Inference actors, each holding one onnxruntime session (--engine ray). Default: one "
        "per GPU, or one per node on a cluster without GPUs.",
    ),
    "gpus_per_actor": click.option(
        "--gpus-per-actor",
        type=click.FloatRange(0, 64),
        default=None,
        help="GPUs each inference actor reserves; fractions share a GPU (--engine ray). Default: 1 "
        "when the cluster has GPUs, else 0.",
    ),
    "cpus_per_actor": click.option(
        "--cpus-per-actor",
        type=click.FloatRange(0.1, 1024),
        default=None,
        help="CPUs each inference actor reserves, rounded up into onnxruntime threads (--engine "
        f"ray). Default: {GPU_ACTOR_CPUS:g} with a GPU; on CPUs, a node's cores less one decode task "
        f"({DECODE_CPUS:g} CPU).",
    ),
}


def ray_options(fn):
    for option in reversed(RAY_OPTIONS.values()):
        fn = option(fn)
    return fn


def check_output_location(path: str | Path, param_hint: str) -> None:
    """Refuse an output path that cannot be written, before the work rather than after it:
    exit status 1, as every verb (classify included) gives for an output it cannot write.

    The nearest existing folder at or above the output must be a folder we may write in
    (the rest of the path is created later).
    """
    problem = location_problem(path)
    if problem:
        raise click.ClickException(f"{param_hint}: {problem}")


def detect_options(max_faces: bool = True):
    """``--detect`` and the detection settings, handed to the command as one ``detect``
    argument: None without --detect, else {detector, min_face, margin, max_faces} with
    None for each value not given (the model's metadata or the defaults fill them).
    ``max_faces=False`` leaves --max-faces out (training and evaluation use each
    image's largest face)."""
    specs = face_detect.DETECTORS.values()
    what = ("Find, align and crop every face first (for ordinary photos): one row per face." if max_faces else
            "Find, align and crop each image's largest face first (for ordinary photos); images without one "
            "are left out.")
    options = [
        click.option("--detect", is_flag=True, help=what),
        click.option("--detector", type=click.Choice(list(face_detect.DETECTORS)), default=None,
                     help="Face detector (with --detect): " + "; ".join(f"{d.name}: {d.help}" for d in specs)
                     + f". Default: the model's (train --detect), else {face_detect.DEFAULT_DETECTOR}."),
        click.option("--min-face", type=click.IntRange(face_detect.MIN_FACE_FLOOR, None), default=None,
                     help="Smallest face to look for, in pixels of the photo (with --detect). Default: the "
                     "model's, else the detector's: " + ", ".join(f"{d.name} {d.min_face}" for d in specs) + "."),
        click.option("--margin", type=click.FloatRange(*face_detect.MARGIN_RANGE), default=None,
                     help="The detected box grows by this fraction of its side before the crop (with "
                     f"--detect; {face_detect.DEFAULT_MARGIN} = {face_detect.DEFAULT_MARGIN * 50:g} % each way, the "
                     "VGG convention); for dlib's face network, dlib's chip padding. Default: the model's, else "
                     + ", ".join(f"{c.margin:g} ({c.name} crops)" for c in face_detect.CROPS.values()) + "."),
    ]
    if max_faces:
        options.append(click.option("--max-faces", type=click.IntRange(1, None), default=None,
                                    help="Keep only the N largest faces of each photo (with --detect). Default: all."))

    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(*args, detect, detector, min_face, margin, max_faces=None, **kwargs):
            given = {"detector": detector, "min_face": min_face, "margin": margin, "max_faces": max_faces}
            if not detect:
                named = [f"--{name.replace('_', '-')}" for name, value in given.items() if value is not None]
                if named:
                    raise click.UsageError(f"{', '.join(named)}: only with --detect")
                return fn(*args, detect=None, **kwargs)
            return fn(*args, detect=given, **kwargs)

        for option in reversed(options):
            wrapper = option(wrapper)
        return wrapper

    return decorator


def parsed_by(module: str, name: str):
    """A Click callback that parses the option's value with ``module.name`` (imported only
    when the option is given); its ValueError becomes a usage error naming the option."""

    def callback(ctx, param, value):
        if value is None:
            return None
        try:
            return getattr(importlib.import_module(module), name)(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return callback


def labelled_data_options(verb: str):
    """``--layout``, ``--split`` and ``--splits``: which labelled images a verb that scores a
    classifier on DATA (evaluate, audit) takes; ``verb`` starts their help ("Evaluate")."""
    import inspect

    from gender_cli.train.datasets import LAYOUT_CHOICES
    from gender_cli.train.scoring import EVAL_SPLITS, score

    layout = inspect.signature(score).parameters["layout"].default  # the library's default
    options = [
        click.option("--layout", type=click.Choice(LAYOUT_CHOICES), default=layout, show_default=True,
                     help="How DATA is labelled (as for 'gender-cli train'); 'auto' detects it."),
        click.option("--split", type=click.Choice(EVAL_SPLITS), default=None,
                     help=f"{verb} the test split (of --splits, or of the manifest's split column) or all "
                     "images. Default: test when split information exists, else all."),
        click.option("--splits", "splits_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                     default=None, help=f"A training run's splits.csv: {verb.lower()} that run's held-out test "
                     "images."),
    ]

    def decorator(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorator
