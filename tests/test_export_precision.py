"""fp16 and int8 export: graph structure, and agreement figures recomputed here."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from gender_cli import contract
from gender_cli.contract import Meta
from gender_cli.errors import GenderCliError
from gender_cli.export.export import export
from gender_cli.export.checks import cosine
from gender_cli.export.quantize_int8 import needs_reduce_range
from gender_cli.infer.files import list_image_files
from gender_cli.infer.images import load_image

from helpers_export import save_head, write_image_folder  # noqa: E402

CALIBRATION_IMAGES = 200  # a flip costs 0.5 %: the fp16 goal (99.5 %) allows at most one


@pytest.fixture(scope="module")
def calibration_folder(tmp_path_factory):
    folder = write_image_folder(tmp_path_factory.mktemp("calibration") / "faces", CALIBRATION_IMAGES)
    (folder / "notes.txt").write_text("not an image: skipped and counted")
    return folder


@pytest.fixture(scope="module")
def exported(tiny_network, tmp_path_factory, calibration_folder):
    """fp32, fp16 and int8 classifiers of the tiny stand-in, one head."""
    tmp = tmp_path_factory.mktemp("precision")
    head_dir, _, _ = save_head(tmp / "run", "relu7", 16, seed=5)
    return {
        p: export(tiny_network, tmp / f"{p}.onnx", head=head_dir, precision=p,
                       calibration=calibration_folder)
        for p in contract.PRECISIONS
    }


def folder_images(folder) -> np.ndarray:
    images = []
    for path in list_image_files([folder]):
        try:
            images.append(load_image(path))
        except Exception:
            pass
    return np.stack(images)


def outputs(path, images) -> dict[str, np.ndarray]:
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    return dict(zip(names, s.run(names, {contract.INPUT_NAME: images})))


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_reported_agreement_matches_a_recomputation(exported, calibration_folder, precision):
    result = exported[precision]
    checks = result.checks
    images = folder_images(calibration_folder)
    assert checks["images"] == len(images) == CALIBRATION_IMAGES
    assert checks["unreadable_skipped"] == 1
    ref = outputs(exported["fp32"].path, images)
    got = outputs(result.path, images)
    agree = ((ref[contract.PROBABILITIES][:, 1] >= 0.5) == (got[contract.PROBABILITIES][:, 1] >= 0.5)).mean()
    assert checks["label_agreement"] == pytest.approx(agree, abs=1e-12)
    assert checks["max_abs_dprob"] == pytest.approx(
        np.abs(ref[contract.PROBABILITIES] - got[contract.PROBABILITIES]).max(), abs=1e-6)
    cos = cosine(ref[contract.DESCRIPTOR], got[contract.DESCRIPTOR])
    assert checks["descriptor_cosine_min"] == pytest.approx(cos.min(), abs=1e-6)
    assert json.loads(result.metadata[Meta.PRECISION_CHECK]) == checks
    stored = {p.key: p.value for p in onnx.load(str(result.path)).metadata_props}
    assert stored == result.metadata and stored[Meta.PRECISION] == precision


def test_fp16_meets_its_goal_on_the_tiny_model(exported):
    checks = exported["fp16"].checks
    assert checks["label_agreement"] >= 0.995, checks
    assert checks["descriptor_cosine_min"] >= 0.999, checks
    assert checks["nonfinite_outputs"] == 0 and not checks["fp16_overflow_risk"]
    assert 0 < checks["fp32_peak_abs_activation"] < checks["fp16_max"]


def test_int8_agreement_on_the_tiny_model(exported, calibration_folder):
    """The goal (99 %) is reported, not assumed, and the tiny stand-in cannot reach it:
    its float32 graph flips about as many labels when the images get +-1 of uint8 noise
    (the recorded baseline, recomputed here). What int8 must do is stay within that
    sensitivity: measured 0.945 agreement (11 of 200 labels) against the baseline's
    0.935, error/spread 0.31 against 0.28 (onnxruntime 1.31, VNNI CPU)."""
    checks = exported["int8"].checks
    assert checks["goal"] == 0.99 and checks["meets_goal"] == (checks["label_agreement"] >= 0.99)
    assert checks["label_agreement"] >= 0.92, checks
    assert checks["descriptor_cosine_mean"] >= 0.98, checks
    q = checks["quantization"]
    assert q["per_channel"] is True and q["calibration"] == "MinMax"
    assert q["reduce_range"] == needs_reduce_range()
    assert q["calibration_images"] == CALIBRATION_IMAGES
    assert {"head_dense_0", "head_dense_1", "head_softmax"} <= set(q["float_nodes"])

    images = folder_images(calibration_folder)
    noise = np.random.default_rng(0).integers(-1, 2, images.shape, dtype=np.int16)  # as checks draws it
    noisy = np.clip(images.astype(int) + noise, 0, 255).astype(np.uint8)
    assert 0 < np.abs(noisy.astype(int) - images).max() == 1
    ref = outputs(exported["fp32"].path, images)
    moved = outputs(exported["fp32"].path, noisy)
    labels = ref[contract.PROBABILITIES][:, 1] >= 0.5
    baseline = checks["fp32_input_noise_baseline"]
    assert baseline["label_agreement"] == pytest.approx(
        (labels == (moved[contract.PROBABILITIES][:, 1] >= 0.5)).mean(), abs=1e-12)
    assert checks["reference_majority_share"] == pytest.approx(max(labels.mean(), 1 - labels.mean()))
    error = np.sqrt(np.mean((moved[contract.DESCRIPTOR] - ref[contract.DESCRIPTOR]) ** 2))
    spread = np.sqrt(np.mean((ref[contract.DESCRIPTOR] - ref[contract.DESCRIPTOR].mean(axis=0)) ** 2))
    assert baseline["descriptor_noise_to_spread"] == pytest.approx(error / spread, rel=1e-4)
    # int8 is no worse than +-1 of input noise, give or take a few labels
    assert checks["label_agreement"] >= baseline["label_agreement"] - 0.02, checks
    assert checks["noise_to_spread_over_baseline"] == pytest.approx(
        checks["descriptor_noise_to_spread"] / baseline["descriptor_noise_to_spread"])
    assert checks["noise_to_spread_over_baseline"] <= 1.5, checks


def test_fp16_graph_computes_in_half_with_float32_ends(exported):
    model = onnx.load(str(exported["fp16"].path))
    inits = {t.name: t.data_type for t in model.graph.initializer}
    assert inits["conv1_1_W"] == inits["fc7_W"] == onnx.TensorProto.FLOAT16
    assert inits["mean_rgb"] == inits["head_dense_0_kernel"] == onnx.TensorProto.FLOAT
    casts = [n for n in model.graph.node if n.op_type == "Cast"]
    to = [onnx.helper.get_attribute_value(n.attribute[0]) for n in casts]
    assert to == [onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT]
    s = ort.InferenceSession(str(exported["fp16"].path), providers=["CPUExecutionProvider"])
    assert s.get_inputs()[0].type == "tensor(uint8)"
    assert {o.type for o in s.get_outputs()} == {"tensor(float)"}
    assert model.ir_version == contract.IR_VERSION
    onnx.checker.check_model(str(exported["fp16"].path))


def test_int8_graph_quantizes_the_backbone_only(exported):
    model = onnx.load(str(exported["int8"].path))
    assert model.ir_version == contract.IR_VERSION
    assert [(o.domain, o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")] == [("", 17)]
    onnx.checker.check_model(str(exported["int8"].path))
    produced_by = {out: n for n in model.graph.node for out in n.output}
    int8_weights = {t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8}
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    assert produced_by[conv.input[1]].op_type == "DequantizeLinear"
    assert produced_by[conv.input[1]].input[0] in int8_weights
    float_inits = {t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
    head_gemms = [n for n in model.graph.node if n.name.startswith("head_dense_")]
    assert len(head_gemms) == 2
    for gemm in head_gemms:  # the head's weights stay float (its input is the dequantized relu7)
        assert gemm.input[1] in float_inits and gemm.input[2] in float_inits
    for node in model.graph.node:
        if node.op_type in ("Cast", "Sub", "Softmax", "Transpose"):
            for name in node.input:
                producer = produced_by.get(name)
                assert producer is None or producer.op_type != "DequantizeLinear", node.name
    (reader,) = [n for n in model.graph.node if contract.INPUT_NAME in n.input]
    assert reader.op_type == "Cast"  # the uint8 input is preprocessed in float, as in fp32


def test_backbone_checks_use_descriptor_cosine(tiny_network, tmp_path):
    result = export(tiny_network, tmp_path / "bb16.onnx", precision="fp16", descriptor="pool5")
    checks = result.checks
    assert checks["measure"] == "descriptor_cosine_min" and "label_agreement" not in checks
    assert checks["image_source"].startswith("synthetic images")
    assert checks["meets_goal"] and checks["descriptor_cosine_min"] >= 0.995


def test_calibration_folder_without_images_is_an_error(tiny_network, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "a.txt").write_text("hello")
    with pytest.raises(GenderCliError, match="holds no readable images"):
        export(tiny_network, tmp_path / "x.onnx", precision="int8", calibration=folder)
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize(
    "flags, expected",
    [({"avx2"}, True), ({"avx2", "avx512_vnni"}, False), ({"avx2", "avx_vnni"}, False), ({"neon"}, False)],
)
def test_reduce_range_only_on_avx2_without_vnni(flags, expected):
    assert needs_reduce_range(flags) is expected


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_dlibs_residual_network_exports_in_every_precision(tmp_path, precision):
    """The residual joins (Pad + Add of unequal sizes) survive float16 and QDQ int8, the
    scale-and-shift layers folded into the convolutions: the graph checks, runs on
    150x150 input and keeps its descriptor close to fp32."""
    from gender_cli.convert.dlib_resnet import dlib_resnet_network

    from helpers_export import write_image_folder

    network = dlib_resnet_network("tiny")
    calibration = write_image_folder(tmp_path / "calibration", 16, size=(150, 150))
    result = export(network, tmp_path / f"dlib-{precision}.onnx", precision=precision, calibration=calibration)
    onnx.checker.check_model(str(result.path))
    checks = result.checks
    assert checks["measure"] == "descriptor_cosine_min" and checks["descriptor_cosine_min"] >= 0.98, checks
    ops = {n.op_type for n in onnx.load(str(result.path)).graph.node}
    assert {"Pad", "Add"} <= ops and "Mul" not in ops  # the scale-and-shift layers folded into the convs
