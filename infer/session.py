"""Open an exported ONNX graph in onnxruntime and read the contract it carries.

Device choice:

- ``cpu``: CPUExecutionProvider only.
- ``cuda``: CUDAExecutionProvider, and an error (saying why) when it cannot load.
- ``auto``: CUDA when it loads, else CPU. On a machine with no NVIDIA GPU at all the
  CPU is used without a word. When a GPU is present and onnxruntime lists the CUDA
  provider but it fails to load (a GPU build of onnxruntime without the CUDA/cuDNN
  libraries), onnxruntime silently runs on CPU; this module detects that by checking
  ``session.get_providers()`` after creation and reports it in ONE notice
  (``LoadedModel.notice``) naming the missing library when it can tell.

CUDA options: ``cudnn_conv_algo_search=EXHAUSTIVE`` (onnxruntime's default; the
batch shape is kept fixed, so the one-time search pays for itself),
``do_copy_in_default_stream=1`` (copies on the compute stream: no races), and
``arena_extend_strategy=kSameAsRequested`` (a fixed-shape workload needs no
power-of-two headroom). IO binding is not used: the input is uint8 (a quarter of
the float bytes) and the model is VGG-16 sized, so the host-to-device copy is a
small fraction of a batch's time.

CPU options: ``ORT_ENABLE_ALL`` graph optimisations and one intra-op thread per
available core (``threads`` overrides).
"""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from gender_cli import contract, workspace
from gender_cli.contract import Meta
from gender_cli.devices import DEFAULT_DEVICE, DEVICES
from gender_cli.errors import GenderCliError, ModelFileError, first_line
from gender_cli.infer.images import DEFAULT_RESIZE
from gender_cli.system import available_cpus, nvidia_gpu_present

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

CUDA_OPTIONS = {
    "cudnn_conv_algo_search": "EXHAUSTIVE",
    "do_copy_in_default_stream": "1",
    "arena_extend_strategy": "kSameAsRequested",
}

_ORT_DEFAULT_LOG_SEVERITY = 2  # warning; onnxruntime offers no getter


@dataclass(frozen=True)
class ModelInfo:
    """The contract metadata of an exported graph, parsed: what a classifier is.

    ``labels`` in output order and the decision ``threshold`` on the second label's
    probability; ``heads`` (``gender``, ``age``); ``input_size`` (H, W, 3) and ``resize``,
    how images reach it; ``precision`` (fp32, fp16, int8); ``standin`` (made from
    random stand-in weights: its answers mean nothing); ``raw``, every metadata entry.
    """

    labels: tuple[str, ...]
    threshold: float
    input_size: tuple[int, int, int]  # (H, W, 3)
    mean: tuple[float, ...]
    descriptor: str
    precision: str
    standin: bool
    kind: str  # "classifier" or "backbone"
    metrics: dict | None
    resize: str
    raw: dict[str, str] = field(repr=False)
    heads: tuple[str, ...] = ()  # contract.HEADS names, in output order; () for a backbone

    @property
    def image_size(self) -> tuple[int, int]:
        return self.input_size[0], self.input_size[1]

    @property
    def head_outputs(self) -> list[str]:
        """The graph outputs of the heads (``probabilities``, ``age``), in order."""
        return [contract.HEADS[name].output for name in self.heads]

    @property
    def gender_labels(self) -> tuple[str, ...]:
        """The gender labels, or () when the graph has no gender head."""
        return self.labels if contract.GENDER_HEAD in self.heads else ()

    @property
    def source_format(self) -> str | None:
        """The weights format the backbone was converted from (``mat``, ``caffe``, ...)."""
        return self.raw.get(Meta.SOURCE_FORMAT) or None

    @property
    def value_columns(self) -> tuple[str, ...]:
        """Output columns beside the gender ones, one per value head (``age``)."""
        return tuple(contract.HEADS[name].output for name in self.heads if name != contract.GENDER_HEAD)


@dataclass
class LoadedModel:
    path: Path
    session: ort.InferenceSession
    providers: list[str]
    notice: str | None
    info: ModelInfo
    threads: int
    output_names: list[str]

    def run(self, images: np.ndarray, outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Run on a uint8 (N, H, W, 3) RGB batch; returns ``outputs`` (default: all) by name."""
        names = outputs or self.output_names
        return dict(zip(names, self.session.run(names, {contract.INPUT_NAME: images})))

    @property
    def pads_batches(self) -> bool:
        """Whether a short batch is fed at the full batch shape (its slots padded).

        On CUDA one fixed shape lets cuDNN choose its algorithms once; a graph with a
        static N takes nothing else. On CPU padding is pure waste: a short batch runs
        as it is.
        """
        return self.device == "cuda" or self.fixed_batch is not None

    def run_batch(self, images: np.ndarray, count: int, outputs: list[str] | None = None) -> dict[str, np.ndarray]:
        """Run the first ``count`` images of a batch array (see ``pads_batches``), so that
        Ctrl-C is answered at once: onnxruntime runs in a helper thread while this thread
        waits, and on KeyboardInterrupt the run is told to stop (``RunOptions.terminate``,
        checked between nodes) before the interrupt goes on. Returns ``count`` rows."""
        names = outputs or self.output_names
        feed = images if self.pads_batches else images[:count]
        options = ort.RunOptions()
        done = threading.Event()
        result: dict = {}

        def work() -> None:
            try:
                result["outputs"] = self.session.run(names, {contract.INPUT_NAME: feed}, options)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                result["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name="onnxruntime-run", daemon=True).start()
        try:
            while not done.wait(0.05):
                pass
        except KeyboardInterrupt:
            options.terminate = True
            done.wait()
            raise
        if "error" in result:
            raise result["error"]
        return {name: value[:count] for name, value in zip(names, result["outputs"])}

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the graph insists on, when its N dimension is not dynamic."""
        for tensor in self.session.get_inputs():
            if tensor.name == contract.INPUT_NAME and isinstance(tensor.shape[0], int) and tensor.shape[0] > 0:
                return tensor.shape[0]
        return None

    @property
    def device(self) -> str:
        return "cuda" if CUDA in self.providers else "cpu"


def open_session(
    model_path: str | os.PathLike,
    device: str = DEFAULT_DEVICE,
    threads: int | None = None,
    allow_spinning: bool = True,
) -> LoadedModel:
    """Load ``model_path`` on ``device``; raises ModelFileError / GenderCliError.

    ``allow_spinning=False`` stops idle onnxruntime threads busy-waiting, which
    leaves the cores to the image decoders when both share a small CPU.
    """
    if device not in DEVICES:
        raise GenderCliError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    path = Path(model_path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    threads = threads or available_cpus()
    options = _session_options(threads, allow_spinning)

    notice = None
    if device == "cpu" or (device == "auto" and not nvidia_gpu_present()):
        # no GPU at all: nothing to try and nothing to report
        session = _create(path, options, [CPU])
    elif CUDA not in ort.get_available_providers():
        if device == "cuda":
            raise GenderCliError(
                f"--device cuda: this onnxruntime ({ort.__version__}) has no CUDA provider "
                "(install onnxruntime-gpu)"
            )
        session = _create(path, options, [CPU])
    else:
        session, cuda_error = _create_with_cuda(path, options)
        if CUDA not in session.get_providers():
            reason = cuda_error or _cuda_load_problem() or "the CUDA provider did not load"
            if device == "cuda":
                raise GenderCliError(f"--device cuda: CUDA is not usable here: {reason}")
            notice = f"CUDA unavailable ({reason}); running on CPU"

    info = read_model_info(session, path)
    _check_io(session, info, path)
    return LoadedModel(
        path=path,
        session=session,
        providers=list(session.get_providers()),
        notice=notice,
        info=info,
        threads=threads,
        output_names=[o.name for o in session.get_outputs()],
    )


def _session_options(threads: int, allow_spinning: bool) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    if not allow_spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _create(path: Path, options: ort.SessionOptions, providers: list) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
        raise ModelFileError(_not_loadable(path, exc)) from None


def _not_loadable(path: Path, exc: Exception) -> str:
    """Why ``path`` does not load; for a weights file, what makes a classifier of it."""
    from gender_cli.convert.formats import weights_kind

    kind = weights_kind(path)
    if kind is None:
        return f"{path} is not a model onnxruntime can load: {first_line(exc)}"
    return (f"{path} is {kind} weights, not an exported classifier: 'gender-cli convert {path}', then "
            "'gender-cli train DATA/' (or 'gender-cli export' for a ready classifier) make the "
            "classifier-fp32.onnx that --model takes")


def _create_with_cuda(path: Path, options: ort.SessionOptions) -> tuple[ort.InferenceSession, str | None]:
    """A session on CUDA, or on CPU with the reason CUDA failed."""
    # onnxruntime logs the failed CUDA load as an error on stderr; we report it ourselves.
    ort.set_default_logger_severity(4)
    try:
        try:
            return ort.InferenceSession(
                str(path), sess_options=options, providers=[(CUDA, CUDA_OPTIONS), CPU]
            ), None
        except Exception as exc:
            cuda_error = first_line(exc)
        return _create(path, options, [CPU]), cuda_error  # CPU fails too: a model problem
    finally:
        ort.set_default_logger_severity(_ORT_DEFAULT_LOG_SEVERITY)


def _cuda_load_problem() -> str | None:
    """Why the CUDA provider library does not load (e.g. the missing libcublasLt)."""
    library = Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
    if not library.is_file():
        return None
    try:
        ctypes.CDLL(str(library))
    except OSError as exc:
        return first_line(exc)
    return None


def read_model_info(session: ort.InferenceSession, path: Path) -> ModelInfo:
    """The graph's contract, every metadata key checked (``contract.read_metadata``)."""
    raw = dict(session.get_modelmeta().custom_metadata_map)
    try:
        values = contract.read_metadata(raw)
        heads = contract.graph_heads(raw)
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    return ModelInfo(
        labels=values[Meta.LABELS],
        threshold=values[Meta.THRESHOLD],
        input_size=values[Meta.INPUT_SIZE],
        mean=tuple(values[Meta.MEAN]),
        descriptor=values[Meta.DESCRIPTOR],
        precision=values[Meta.PRECISION],
        standin=values[Meta.STANDIN],
        kind=values[Meta.KIND],
        metrics=values.get(Meta.METRICS),
        resize=values.get(Meta.RESIZE) or DEFAULT_RESIZE,
        raw=raw,
        heads=heads,
    )


def _check_io(session: ort.InferenceSession, info: ModelInfo, path: Path) -> None:
    """The metadata against the graph itself: the image input, its size, the heads' outputs."""
    inputs = {i.name: i for i in session.get_inputs()}
    image_input = inputs.get(contract.INPUT_NAME)
    if image_input is None or image_input.type != "tensor(uint8)":
        raise ModelFileError(
            f"{path}: expected a uint8 input named {contract.INPUT_NAME!r}, found "
            + ", ".join(f"{i.name} ({i.type})" for i in inputs.values())
        )
    shape = list(image_input.shape)
    fixed = [(dim, want) for dim, want in zip(shape[1:], info.input_size) if isinstance(dim, int) and dim > 0]
    if len(shape) != 4 or any(dim != want for dim, want in fixed):
        raise ModelFileError(f"{path}: metadata input_size {list(info.input_size)} disagrees with the graph's "
                             f"input {shape} (N, H, W, 3)")
    outputs = {o.name: o for o in session.get_outputs()}
    for name in info.heads:
        if contract.HEADS[name].output not in outputs:
            raise ModelFileError(f"{path}: {name} head without a {contract.HEADS[name].output!r} output")
    if contract.GENDER_HEAD in info.heads:
        if len(info.labels) != 2:
            raise ModelFileError(f"{path}: expected 2 labels in metadata, found {list(info.labels)}")
        width = outputs[contract.PROBABILITIES].shape[-1] if outputs[contract.PROBABILITIES].shape else None
        if isinstance(width, int) and width != len(info.labels):
            raise ModelFileError(f"{path}: the {contract.PROBABILITIES!r} output gives {width} probabilities "
                                 f"for the {len(info.labels)} labels of its metadata")


def load_classifier(
    model_path: str | os.PathLike | None, device: str = DEFAULT_DEVICE, threads: int | None = None
) -> LoadedModel:
    """Open the given classifier, or the workspace's default one; refuse a backbone.

    Idle onnxruntime threads do not spin, which leaves the cores to the image decoders
    when both share a small CPU."""
    path = Path(model_path) if model_path else workspace.default_classifier()
    model = open_session(path, device=device, threads=threads, allow_spinning=False)
    if model.info.kind != "classifier":
        raise ModelFileError(
            f"{path} is a {model.info.kind!r} graph (descriptors only), not a classifier; "
            "use a classifier-<precision>.onnx from 'gender-cli export' after 'gender-cli train'"
        )
    return model


def describe_model(model: LoadedModel) -> dict[str, Any]:
    """Plain facts about a loaded model, for summaries and benchmark JSON."""
    return {
        "model": str(model.path),
        "providers": model.providers,
        "precision": model.info.precision,
        "standin": model.info.standin,
        "kind": model.info.kind,
        "heads": list(model.info.heads),
        "descriptor": model.info.descriptor,
        "labels": list(model.info.labels),
        "threshold": model.info.threshold,
        "input_size": list(model.info.input_size),
        "intra_op_threads": model.threads,
        "onnxruntime": ort.__version__,
    }
