"""``export``: one ONNX graph from the layer table, in fp32, fp16 or int8.

The graph is emitted straight from the framework-free layer table (no TensorFlow, no
tf2onnx) and streamed to disk one weight tensor at a time. Precisions are a table
(``EXPORTERS``): fp32 is written as is; fp16 is emitted natively in float16 and int8
is quantized from the float32 graph, and both are run beside their float32 twin on the
same images, their agreement returned and stored in the graph's metadata.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from gender_cli import contract
from gender_cli.contract import Meta
from gender_cli.convert.network import Network
from gender_cli.errors import GenderCliError
from gender_cli.export import calibration as calib
from gender_cli.export.backbone_graph import emit_backbone
from gender_cli.export.checks import compare, input_noise_baseline, run_model
from gender_cli.export.fold import fold_affine
from gender_cli.export.graph_builder import FLOAT, GraphBuilder, from_model
from gender_cli.convert.layer_plan import descriptor_plan
from gender_cli.export.head_graph import HEAD_PREFIX, Heads, load_run_heads
from gender_cli.export.keras_head import is_keras_head, load_keras_head
from gender_cli.export.metadata import build_metadata
from gender_cli.export.precision_fp16 import FP16_MAX, cast_to_float32
from gender_cli.export.preprocess_graph import emit_preprocess
from gender_cli.export.proto_writer import write_model
from gender_cli.export.scratch_export import DESCRIPTOR as SCRATCH_DESCRIPTOR, ScratchTrunk
from gender_cli.head_spec import AGE_SPEC_FILE, SPEC_FILE

Progress = Callable[[str, int, int], None]  # (stage, done, total)
EXPOSED_BATCH = 4  # every ReLU output of a batch comes back at once: keep batches small


@dataclass
class ExportResult:
    path: Path
    metadata: dict[str, str]
    checks: dict  # precision agreement figures; empty for fp32
    files: list[Path] = field(default_factory=list)  # the graph, and the side file if any
    seconds: float = 0.0
    default: bool = False  # made the default classifier (set_default, and the graph meets its goal)

    @property
    def meets_goal(self) -> bool:
        """Whether the graph agrees with fp32 as its precision's goal asks (fp32: always)."""
        return not self.checks or bool(self.checks.get("meets_goal"))

    @property
    def standin(self) -> bool:
        return self.metadata.get(Meta.STANDIN) == "true"

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)


def descriptor_dim(network, descriptor: str) -> int:
    """D of the ``(N, D)`` descriptor ``descriptor`` of ``network`` (a converted network or
    a from-scratch trunk, which has its one descriptor)."""
    if isinstance(network, ScratchTrunk):
        if descriptor != SCRATCH_DESCRIPTOR:
            raise GenderCliError(f"a from-scratch network has the descriptor {SCRATCH_DESCRIPTOR!r} alone, "
                                 f"not {descriptor!r}")
        return network.descriptor_dim
    return descriptor_plan(network, descriptor).dim


def load_head(head, network: Network, descriptor: str) -> Heads:
    """The heads to export: every head of a ``gender-cli train`` run folder (built-in
    dense heads, no TensorFlow), or a Keras model file (a gender head of any
    architecture, through tf2onnx)."""
    dim = descriptor_dim(network, descriptor)
    if is_keras_head(head):
        return Heads([load_keras_head(Path(head), descriptor, dim)])
    if Path(head).is_file() and Path(head).name not in (SPEC_FILE, AGE_SPEC_FILE):
        raise GenderCliError(
            f"head {head} is neither a 'gender-cli train' run folder nor a Keras model file (.keras, .h5)"
        )
    folder = Path(head).parent if Path(head).is_file() else Path(head)
    return load_run_heads(folder, descriptor, dim, network.source_sha256)


def build_graph(
    network: Network,
    descriptor: str,
    heads: Heads | None,
    dtype=np.float32,
    expose_activations: bool = False,
) -> tuple[GraphBuilder, int]:
    """The full graph in memory (weights still lazy) with ``heads`` (loaded, or None);
    returns (graph, descriptor_dim). Scale-and-shift layers of a layer table are folded
    into the convolutions before them (:mod:`fold`); a from-scratch trunk comes through
    tf2onnx, which folds its batch normalization itself."""
    g = GraphBuilder()
    if isinstance(network, ScratchTrunk):
        descriptor_tensor, dim = network.emit(g, np.dtype(dtype))
    else:
        network = fold_affine(network, keep={contract.descriptor_spec(descriptor).layer})
        x = emit_preprocess(g, network, np.dtype(dtype))
        descriptor_tensor, dim = emit_backbone(g, network, x, descriptor, np.dtype(dtype))
    descriptor_fp32 = cast_to_float32(g, descriptor_tensor, np.dtype(dtype), "descriptor_float32")
    if heads is not None:
        heads.emit(g, descriptor_fp32)
    g.add_output(descriptor_fp32, contract.DESCRIPTOR, FLOAT, ["N", dim])
    if expose_activations:
        for node in g.nodes:
            if node.op_type == "Relu" and not node.name.startswith(HEAD_PREFIX):
                g.outputs.append(_untyped_output(node.output[0]))
    return g, dim


def _untyped_output(name: str):
    from onnx import ValueInfoProto

    return ValueInfoProto(name=name)  # onnxruntime infers the type of an extra output


def _check_images(network: Network, calibration: Path | None) -> calib.ImageSet:
    size = (int(network.input_size[0]), int(network.input_size[1]))
    if calibration is not None:
        return calib.read_folder(Path(calibration), size)
    return calib.synthetic_images(size)


def _threshold(heads: Heads | None) -> float:
    return heads.threshold if heads is not None else 0.5


def _export_float(network, out, descriptor, heads, precision, dtype, external_data, progress):
    g, dim = build_graph(network, descriptor, heads, dtype)
    meta = build_metadata(network, descriptor, dim, precision, heads)
    files = write_model(g, out, meta, external_data, progress)
    return files, meta, {}


def _export_fp32(network, out, descriptor, heads, calibration, external_data, progress):
    return _export_float(network, out, descriptor, heads, "fp32", np.float32, external_data, progress)


def _reference_run(network, descriptor, heads, work: Path, images: np.ndarray, progress):
    """Write the float32 twin (every ReLU exposed) and run it: (outputs, peak |activation|)."""
    g, _ = build_graph(network, descriptor, heads, np.float32, expose_activations=True)
    path = work / "fp32.onnx"
    write_model(g, path, {}, external_data=False, progress=progress)
    outputs, peak = run_model(path, images, _output_names(heads), batch_size=EXPOSED_BATCH, progress=progress)
    return outputs, peak


def _export_fp16(network, out, descriptor, heads, calibration, external_data, progress):
    images = _check_images(network, calibration)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out.parent) as tmp:
        work = Path(tmp)
        reference, peak = _reference_run(network, descriptor, heads, work, images.images, progress)
        g, dim = build_graph(network, descriptor, heads, np.float16)
        write_model(g, work / "fp16.onnx", {}, progress=progress)
        candidate, _ = run_model(work / "fp16.onnx", images.images, list(reference), progress=progress)
    figures = compare(reference, candidate, "fp16", _threshold(heads), images.source)
    figures["fp32_peak_abs_activation"] = peak
    figures["fp16_max"] = FP16_MAX
    figures["fp16_overflow_risk"] = bool(peak >= FP16_MAX)
    figures["note"] = "onnxruntime CPU runs fp16 graphs through float32 casts"
    if images.skipped:
        figures["unreadable_skipped"] = images.skipped
    g, dim = build_graph(network, descriptor, heads, np.float16)
    meta = build_metadata(network, descriptor, dim, "fp16", heads, figures)
    files = write_model(g, out, meta, external_data, progress)
    return files, meta, figures


def _export_int8(network, out, descriptor, heads, calibration, external_data, progress):
    import onnx

    from gender_cli.export.quantize_int8 import quantize

    if calibration is None:
        raise GenderCliError(
            "int8 export needs calibration images: pass --calibration FOLDER "
            "(a few hundred face images, preprocessed like classify's input)"
        )
    images = _check_images(network, calibration)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out.parent) as tmp:
        work = Path(tmp)
        g, dim = build_graph(network, descriptor, heads, np.float32)
        fp32_path = work / "fp32.onnx"
        write_model(g, fp32_path, {}, progress=progress)
        head_nodes = [n.name for n in g.nodes if n.name.startswith(HEAD_PREFIX)]
        del g
        reference, _ = run_model(fp32_path, images.images, _output_names(heads), progress=progress)
        settings = quantize(fp32_path, work / "int8.onnx", images.images, head_nodes, progress)
        candidate, _ = run_model(work / "int8.onnx", images.images, _output_names(heads), progress=progress)
        figures = compare(reference, candidate, "int8", _threshold(heads), images.source)
        figures["quantization"] = settings
        baseline = input_noise_baseline(fp32_path, images.images, reference, _threshold(heads), progress)
        figures["fp32_input_noise_baseline"] = baseline
        figures["noise_to_spread_over_baseline"] = (
            figures["descriptor_noise_to_spread"] / baseline["descriptor_noise_to_spread"]
            if baseline["descriptor_noise_to_spread"] > 0 else None
        )
        figures["note"] = "checked on the calibration images themselves"
        if images.skipped:
            figures["unreadable_skipped"] = images.skipped
        meta = build_metadata(network, descriptor, dim, "int8", heads, figures)
        quantized = from_model(onnx.load(str(work / "int8.onnx")))
        _require_loadable_opsets(quantized.opsets)
        files = write_model(quantized, out, meta, external_data, progress)
    return files, meta, figures


def validate_file(path: Path, files: list[Path]) -> None:
    """``onnx.checker`` on the written file (the path form handles external data)."""
    import onnx

    try:
        onnx.checker.check_model(str(path))
    except onnx.checker.ValidationError as exc:
        for written in files:
            written.unlink(missing_ok=True)
        raise GenderCliError(f"the exported graph failed onnx.checker (file removed): {exc}") from exc


def _output_names(heads: Heads | None) -> list[str]:
    return [contract.DESCRIPTOR] + (heads.outputs if heads is not None else [])


def _require_loadable_opsets(opsets: dict[str, int]) -> None:
    version = opsets.get("", contract.OPSET)
    if version > contract.OPSET:
        raise GenderCliError(
            f"the quantizer raised the opset to {version}; the contract (IR "
            f"{contract.IR_VERSION}) allows at most {contract.OPSET}"
        )


EXPORTERS = {"fp32": _export_fp32, "fp16": _export_fp16, "int8": _export_int8}


def export(
    network: Network,
    out_path,
    descriptor: str | None = None,
    head=None,
    precision: str = contract.DEFAULT_PRECISION,
    calibration=None,
    external_data: bool = False,
    progress: Progress | None = None,
) -> ExportResult:
    """Write ``network`` (up to ``descriptor``, default the network's own, plus ``head``) to ``out_path``.

    ``head`` is a ``gender-cli train`` run folder (its gender head, head.json +
    head_weights.npz, and its age head, age_head.json + age_head_weights.npz, whichever
    it holds: built-in dense heads, no TensorFlow) or a Keras model file taking the
    descriptor (``.keras``/``.h5``: a gender head of any architecture, converted with
    tf2onnx).

    Without a head the graph is a backbone (output ``descriptor``); with heads it is a
    classifier (outputs ``probabilities`` for the gender head, ``age`` for the age head,
    and ``descriptor``). fp16 and int8 graphs are
    compared with their float32 twin on the ``calibration`` images (int8: required;
    fp16: seeded synthetic images without a folder) and the figures are returned in
    ``checks`` and stored in the ``precision_check`` metadata.

    ``progress(stage, done, total)``, if given, is called as weights are written
    (``"write"``, bytes), check images run (``"check"``, images) and int8 calibration
    batches run (``"calibrate"``, batches). The file is checked with ``onnx.checker``.
    """
    if precision not in EXPORTERS:
        raise GenderCliError(f"unknown precision {precision!r}; choose from {', '.join(EXPORTERS)}")
    if descriptor is None:
        descriptor = contract.default_descriptor(layer.name for layer in network.layers)
    contract.descriptor_spec(descriptor)
    heads = load_head(head, network, descriptor) if head is not None else None
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    files, meta, checks = EXPORTERS[precision](
        network, out, descriptor, heads, calibration, external_data, progress
    )
    validate_file(out, files)
    return ExportResult(out, meta, checks, files, time.perf_counter() - started)
