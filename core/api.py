"""The verbs as Python functions: ``convert``, ``train``, ``export``, ``evaluate``.

Each runs the code its ``gender-cli`` verb runs, finds its inputs in the workspace the
same way (``$GENDER_CLI_HOME``) and returns a result object instead of printing::

    import gender_cli

    gender_cli.convert("vgg_face.mat")                  # -> ConvertResult
    run = gender_cli.train("data/", epochs=50)          # -> TrainResult (run.metrics, run.classifier_path)
    gender_cli.export(precision="int8", calibration="faces/")   # -> ExportResult
    gender_cli.evaluate("test/", model=run.classifier_path)     # -> EvaluateResult

``gender_cli.convert`` and friends are these functions (the subpackages of the same
names can be called). Classification is :class:`gender_cli.Classifier`. Problems the
caller can fix raise :class:`~gender_cli.errors.GenderCliError` (options that
contradict each other: its subclass ``RequestError``); nothing here imports
TensorFlow unless the work needs it (training, a Keras head, ``keras=True``).
"""

from __future__ import annotations

import inspect
import os
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gender_cli import contract, workspace
from gender_cli.errors import GenderCliError, Option, RequestError

if TYPE_CHECKING:
    from gender_cli.export.export import ExportResult
    from gender_cli.infer.detect import FaceOptions
    from gender_cli.train.evaluate import EvaluateResult
    from gender_cli.train.train import TrainResult


@dataclass(frozen=True)
class ConvertResult:
    """What ``convert`` wrote: the layer table (``network_dir``, what ``export`` and
    ``train`` read), a ready classifier's head (``head_dir``, else None), ``model.keras``
    (with ``keras=True``), and ``summary``, every figure (layers, parameters,
    preprocessing, sha256, disk bytes, seconds)."""

    source: Path
    format: str
    network_dir: Path
    head_dir: Path | None
    keras_model: Path | None
    standin: bool
    summary: dict[str, Any]

    @classmethod
    def from_summary(cls, summary: dict[str, Any]) -> ConvertResult:
        def path(key: str) -> Path | None:
            return Path(summary[key]) if summary.get(key) else None

        return cls(Path(summary["source"]), summary["format"], Path(summary["network_dir"]), path("head_dir"),
                   path("keras_model"), bool(summary["standin"]), summary)


def _installed_dlib() -> Path:
    from gender_cli.convert.dlib_resnet import FILE_NAME
    from gender_cli.infer.detect import dlib_model

    return dlib_model(FILE_NAME)


# names ``convert`` takes for real weights that a package installs (when no file has that name)
INSTALLED = {"dlib": _installed_dlib}


def default_weights() -> Path:
    """The one weights file of a known name in the current folder (``convert``'s default source)."""
    from gender_cli.convert.formats import FORMATS

    present = [Path(f.default_file) for f in FORMATS.values() if Path(f.default_file).exists()]
    if len(present) == 1:
        return present[0]
    if present:
        raise RequestError(f"several weights files here ({', '.join(map(str, present))}); name the one to convert: "
                           "gender-cli convert FILE")
    lines = "; ".join(f"{f.default_file} ({f.what}, {f.origin})" for f in FORMATS.values())
    raise GenderCliError(
        f"no weights file in the current folder. gender-cli converts {lines}. "
        "Without real weights, make a stand-in with random weights: 'gender-cli make-standin', "
        "then run 'gender-cli convert vgg_face.mat'"
    )


def convert(
    src: str | os.PathLike | None = None,
    output: str | os.PathLike | None = None,
    prototxt: str | os.PathLike | None = None,
    mean: tuple[float, float, float] | None = None,
    keras: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ConvertResult:
    """Convert VGG-Face weights in any supported form (MatConvNet ``.mat``, Caffe
    ``.caffemodel``, keras-vggface or deepface HDF5, deepface's gender model) or dlib's
    face network (``.dat``) into the layer table the other verbs read.

    ``src``: the weights file, or a folder an earlier convert wrote (None: the one file of
    a known name in the current folder; ``"dlib"``: dlib's face network as the [detect]
    extra installs it, real weights); ``output``: the folder to write (None: the
    workspace's ``converted/``); ``prototxt``: a Caffe deploy file; ``mean``: the RGB mean
    for a file without one; ``keras``: also write ``model.keras`` (TensorFlow);
    ``progress(step)`` is called as each step starts.

    Example::

        result = gender_cli.convert("vgg_face.mat")
        result.network_dir, result.summary["params"]
    """
    from gender_cli.convert.convert import convert as run

    src = Path(src) if src is not None else default_weights()
    if not src.exists() and str(src) in INSTALLED:  # a network a package installed, by name
        src = INSTALLED[str(src)]()
    if not src.exists():
        raise RequestError(f"{src} does not exist", option="src")
    return ConvertResult.from_summary(run(src, output, progress=progress, prototxt=prototxt, mean=mean, keras=keras))


def train(
    data: str | os.PathLike = "data",
    output: str | os.PathLike | None = None,
    detect: bool | dict | FaceOptions | None = None,
    log: Callable[[str], None] | None = None,
    from_scratch: bool | dict = False,
    **options: Any,
) -> TrainResult:
    """Train the gender head (and the age head, when the images carry ages) on backbone
    descriptors of ``data``, write a run folder and export the fp32 classifier.

    ``data``: labelled images (class folders, agegender, UTKFace names or a CSV
    manifest); ``output``: the run folder (None: the next ``runs/NNN``); ``detect``:
    stand each image by its largest face (True, or a dict of ``detector``, ``min_face``,
    ``margin``); ``log(message)`` receives the status lines the CLI prints. ``options``
    are the fields of ``gender_cli.train.train.TrainOptions`` (``epochs``, ``task``,
    ``descriptor``, ``seed``, ``hidden``, ``device``, ``progress``, ...), defaults as
    ``gender-cli train``'s. ``from_scratch``: train a compact CNN end to end on the
    images instead, no converted network needed (True, or a dict of the fields of
    ``gender_cli.train.scratch_model.ScratchConfig``: ``input_size``, ``widths``, ...);
    ``epochs`` then counts per stage (default 40).

    Example::

        run = gender_cli.train("data/", epochs=50, progress=False)
        run.metrics["accuracy"], run.classifier_path
    """
    from dataclasses import fields

    from gender_cli.infer.detect import FaceOptions, FaceSettings
    from gender_cli.train.train import TrainOptions, train as run

    known = {f.name for f in fields(TrainOptions)} - {"data", "run_dir", "faces", "scratch"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise RequestError(f"unknown training option(s) {', '.join(unknown)}; choose from {', '.join(sorted(known))}")
    given = FaceOptions.of(detect)
    faces = None
    if given is not None:
        if given.max_faces is not None:
            raise RequestError("training uses each image's largest face; ", Option("max_faces"), " does not apply")
        faces = FaceSettings.resolve(None, given.detector, given.min_face, given.margin)
    scratch = None
    if from_scratch:
        from gender_cli.train.scratch_model import ScratchConfig

        settings = dict(from_scratch) if isinstance(from_scratch, dict) else {}
        if "epochs" in options:
            settings.setdefault("epochs", options["epochs"])
        try:
            scratch = ScratchConfig.from_dict(settings)
        except TypeError as exc:
            raise RequestError(f"from_scratch: {exc}") from None
    return run(TrainOptions(data=Path(data), run_dir=Path(output) if output else None, faces=faces,
                            scratch=scratch, **options), log=log)


def export(
    weights: str | os.PathLike | None = None,
    head: str | os.PathLike | None = None,
    output: str | os.PathLike | None = None,
    precision: str = contract.DEFAULT_PRECISION,
    calibration: str | os.PathLike | None = None,
    descriptor: str | None = None,
    backbone_only: bool = False,
    external_data: bool = False,
    set_default: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> ExportResult:
    """Write one ONNX graph: uint8 RGB images in; the heads' outputs and the descriptor
    out; the contract (labels, threshold, input size, ...) in its metadata.

    ``weights``: a converted folder or a weights file (None: the workspace's converted
    network); ``head``: a ``train`` run folder or a Keras head file (None: the latest run,
    or the head ``convert`` wrote for a ready classifier; without either, the backbone
    alone); ``output`` (None: the workspace's ``models/classifier-<precision>.onnx``);
    ``precision``: fp32, fp16 or int8 (int8 needs ``calibration``, a folder of face
    images); ``set_default``: make it the classifier ``Classifier()`` and the verbs use,
    when it meets its precision's agreement goal (``result.meets_goal``; ``result.default``
    says whether it was made the default).
    ``progress(stage, done, total)`` follows the long steps; ``on_note(text)`` hears
    which head was chosen when none was given.

    Example::

        result = gender_cli.export(precision="fp16")
        result.path, result.checks["label_agreement"]
    """
    from gender_cli.export.export import export as run
    from gender_cli.export.plan import plan_export

    plan = plan_export(weights, head, backbone_only, output, precision, calibration, descriptor, set_default)
    if plan.note and on_note is not None:
        on_note(plan.note)
    result = run(plan.network, plan.output, descriptor=plan.descriptor, head=plan.head, precision=precision,
                 calibration=calibration, external_data=external_data, progress=progress)
    if set_default and result.meets_goal:  # a graph that misses its goal is written, never made the default
        workspace.set_default_classifier(result.path)
        result.default = True
    return result


def evaluate(
    data: str | os.PathLike,
    model: str | os.PathLike | None = None,
    output: str | os.PathLike | None = None,
    detect: bool | dict | FaceOptions | None = None,
    **options: Any,
) -> EvaluateResult:
    """Accuracy, per-class metrics, ROC AUC, confusion matrix and plots (and the age
    head's MAE) of an exported classifier on labelled ``data``, written to ``output``
    (None: ``$GENDER_CLI_HOME/evaluations/<model>-NNN``).

    ``model``: an exported classifier (None: the default one); ``detect``: each image
    stands for its largest face (True, or a dict of ``detector``, ``min_face``,
    ``margin``). ``options`` are ``gender_cli.train.evaluate.evaluate``'s: ``layout``,
    ``split`` (``test`` or ``all``), ``splits_file`` (a run's ``splits.csv``),
    ``batch_size``, ``workers``, ``device``, ``progress``.

    Example::

        result = gender_cli.evaluate("test/", model="models/classifier-int8.onnx", progress=False)
        result.metrics["accuracy"], result.files["report"]
    """
    from dataclasses import asdict

    from gender_cli.infer.detect import FaceOptions
    from gender_cli.train.evaluate import evaluate as run

    given = FaceOptions.of(detect)
    if given is not None and given.max_faces is not None:
        raise RequestError("evaluation uses each image's largest face; ", Option("max_faces"), " does not apply")
    faces = None if given is None else {k: v for k, v in asdict(given).items() if k != "max_faces"}
    return run(Path(data), model_path=Path(model) if model else workspace.default_classifier(),
               out_dir=Path(output) if output else None, faces=faces, **options)


class VerbPackage(types.ModuleType):
    """A subpackage named after a verb (``convert``, ``train``, ``export``) that runs the
    verb when called: ``gender_cli.export(...)`` is :func:`export`, while
    ``gender_cli.export.export`` and every other module of the package stay importable."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._verb()(*args, **kwargs)

    def _verb(self) -> Callable[..., Any]:
        return globals()[self.__name__.rsplit(".", 1)[-1]]

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self._verb())


def make_callable(package: str) -> None:
    """Let the subpackage ``package`` (``gender_cli.convert``, ...) be called as its verb."""
    import sys

    sys.modules[package].__class__ = VerbPackage
