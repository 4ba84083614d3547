"""The age head in the one graph: contract, numerics against NumPy, reduced precision,
classify and evaluate on age-only and two-head graphs, bench's two-pass figure; the
gender-only graph unchanged. Heads are random stand-ins (no TensorFlow)."""

from __future__ import annotations

import csv
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from PIL import Image

from helpers_export import numpy_age, numpy_head, save_age_head, save_head, write_image_folder  # noqa: E402

from gender_cli import contract
from gender_cli.cli.main import cli
from gender_cli.contract import AGE, DESCRIPTOR, PROBABILITIES, Meta
from gender_cli.convert import reference
from gender_cli.errors import ModelFileError
from gender_cli.export.export import export

DIM = 16  # the tiny stand-in's relu7
# every key a gender-only classifier carried before the age head existed
GENDER_ONLY_KEYS = {
    Meta.LABELS, Meta.THRESHOLD, Meta.INPUT_SIZE, Meta.CHANNEL_ORDER, Meta.MEAN, Meta.DESCRIPTOR,
    Meta.DESCRIPTOR_DIM, Meta.PRECISION, Meta.SOURCE_SHA256, Meta.STANDIN, Meta.VERSION, Meta.KIND,
    Meta.RESIZE, Meta.METRICS,
}


def run(path, images) -> dict[str, np.ndarray]:
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    return dict(zip(names, s.run(names, {contract.INPUT_NAME: images})))


def images_uint8(n, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (n, 224, 224, 3), dtype=np.uint8)


def folder_images(folder, pattern="*.png") -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob(pattern))])


@pytest.fixture(scope="module")
def graphs(tiny_network, tmp_path_factory):
    """Gender-only, two-head and age-only graphs of the tiny stand-in, same heads."""
    tmp = tmp_path_factory.mktemp("age-graphs")
    _, kernels, biases = save_head(tmp / "both", "relu7", DIM, seed=3)
    _, age_kernels, age_biases = save_age_head(tmp / "both", "relu7", DIM, seed=4)
    save_head(tmp / "gender", "relu7", DIM, seed=3)
    save_age_head(tmp / "age", "relu7", DIM, seed=4)
    return {
        "heads": (kernels, biases, age_kernels, age_biases),
        **{name: export(tiny_network, tmp / f"{name}.onnx", head=tmp / name) for name in ("gender", "both", "age")},
    }


def test_gender_only_graph_keeps_todays_contract(graphs):
    from gender_cli.infer.session import open_session

    result = graphs["gender"]
    assert set(result.metadata) == GENDER_ONLY_KEYS
    assert [o.name for o in onnx.load(str(result.path)).graph.output] == [PROBABILITIES, DESCRIPTOR]
    info = open_session(result.path, device="cpu").info
    assert info.heads == ("gender",) and info.value_columns == () and info.gender_labels == ("male", "female")


def test_two_head_graph_outputs_and_numbers(graphs, tiny_network):
    kernels, biases, age_kernels, age_biases = graphs["heads"]
    both = graphs["both"]
    graph = onnx.load(str(both.path))
    assert [o.name for o in graph.graph.output] == [PROBABILITIES, AGE, DESCRIPTOR]
    age_output = [o for o in graph.graph.output if o.name == AGE][0]
    assert [d.dim_param or d.dim_value for d in age_output.type.tensor_type.shape.dim] == ["N"]
    age_ops = [n.op_type for n in graph.graph.node if n.name.startswith("head_age_")]  # int8 keeps head_* float
    assert age_ops == ["Gemm", "Relu", "Gemm", "Softmax", "MatMul", "Identity"] or age_ops[:5] == [
        "Gemm", "Relu", "Gemm", "Softmax", "MatMul"]
    meta = both.metadata
    assert json.loads(meta[Meta.HEADS]) == ["gender", "age"] and json.loads(meta[Meta.AGE_RANGE]) == [0, 100]
    assert json.loads(meta[Meta.AGE_METRICS]) == {"test_mae": 9.5}
    assert set(meta) == GENDER_ONLY_KEYS | {Meta.HEADS, Meta.AGE_RANGE, Meta.AGE_METRICS}

    images = images_uint8(5, seed=2)
    out = run(both.path, images)
    assert out[AGE].shape == (5,) and out[AGE].dtype == np.float32
    descriptors = reference.descriptor(tiny_network, images, "relu7")
    np.testing.assert_allclose(out[PROBABILITIES], numpy_head(descriptors, kernels, biases), atol=1e-4)
    expected = numpy_age(descriptors, age_kernels, age_biases)
    assert expected.std() > 1  # the stand-in head's estimates differ between images
    np.testing.assert_allclose(out[AGE], expected, atol=2e-3)
    # the age head leaves the gender output of the same graph untouched
    np.testing.assert_array_equal(out[PROBABILITIES], run(graphs["gender"].path, images)[PROBABILITIES])


def test_age_only_graph(graphs):
    meta = graphs["age"].metadata
    assert json.loads(meta[Meta.HEADS]) == ["age"] and meta[Meta.KIND] == "classifier"
    assert Meta.METRICS not in meta
    assert [o.name for o in onnx.load(str(graphs["age"].path)).graph.output] == [AGE, DESCRIPTOR]


def test_classify_columns_follow_the_heads(graphs, tmp_path):
    from helpers_infer import classify_files

    folder = write_image_folder(tmp_path / "faces", 5)
    (folder / "empty.jpg").write_bytes(b"")
    images = folder_images(folder)
    for name, header in (("gender", ["path", "label", "p_male", "p_female", "error"]),
                         ("both", ["path", "label", "p_male", "p_female", "age", "error"]),
                         ("age", ["path", "age", "error"])):
        out = tmp_path / f"{name}.csv"
        summary = classify_files([folder], graphs[name].path, out, batch=4, workers=1)
        assert summary.classified == 5 and summary.failed == 1
        with out.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert list(rows[0]) == header, name
        empty = [r for r in rows if r["path"].endswith("empty.jpg")][0]
        assert empty["error"].startswith("empty") and empty.get("age", "") == ""
        if "age" in header:
            got = [float(r["age"]) for r in sorted(rows, key=lambda r: r["path"]) if r["error"] == ""]
            assert got == pytest.approx(run(graphs[name].path, images)[AGE].tolist(), abs=0.005 + 1e-6)
    resumed = classify_files([folder], graphs["both"].path, tmp_path / "both.csv", batch=4, workers=1,
                             resume=True)  # the header with its age column is recognised
    assert resumed.skipped == 6 and resumed.classified == 0


def test_evaluate_an_age_only_graph(graphs, tmp_path):
    from gender_cli.train.evaluate import evaluate

    data = tmp_path / "utk"
    data.mkdir()
    rng = np.random.default_rng(0)
    ages = {}
    for i in range(6):
        age = int(rng.integers(0, 90))
        name = f"{age}_{i % 2}_0_{i:04d}.png"
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(data / name)
        ages[name] = age
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(data / "104_0_0_9999.png")  # out of range
    ev = evaluate(data, graphs["age"].path, tmp_path / "ev", split="all", device="cpu", progress=False)
    assert ev.metrics is None
    assert ev.age["images_with_age"] == 6 and ev.age["without_age"]["age outside 0-100"]["count"] == 1
    rows = list(csv.DictReader((tmp_path / "ev" / "predictions.csv").open()))
    assert list(rows[0]) == ["path", "true_age", "predicted_age", "split"] and len(rows) == 7
    errors = [abs(float(r["predicted_age"]) - ages[r["path"].split("/")[-1]]) for r in rows if r["true_age"]]
    assert ev.age["metrics"]["mae"] == pytest.approx(np.mean(errors), abs=0.005)
    result = CliRunner().invoke(cli, ["evaluate", str(data), "--model", str(graphs["age"].path), "--split", "all",
                                      "-o", str(tmp_path / "ev2"), "--quiet", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "age: evaluated MAE" in result.output and "accuracy" not in result.output


def test_export_picks_up_an_age_only_run(tiny_network, workspace):
    from gender_cli import workspace as ws

    tiny_network.save(ws.network_dir())
    run_dir = ws.new_run_dir()
    save_age_head(run_dir, "relu7", DIM)
    assert ws.latest_head_dir() == run_dir
    result = CliRunner().invoke(cli, ["export", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "outputs age, descriptor" in result.output


def test_an_age_head_that_does_not_fit_is_refused(tiny_network, tmp_path):
    run_dir = tmp_path / "run"
    save_age_head(run_dir, "relu7", DIM)
    with np.load(run_dir / "age_head_weights.npz") as npz:
        arrays = dict(npz)
    arrays["dense_1_kernel"] = arrays["dense_1_kernel"][:, :50]
    arrays["dense_1_bias"] = arrays["dense_1_bias"][:50]
    np.savez(run_dir / "age_head_weights.npz", **arrays)
    with pytest.raises(ModelFileError, match="the age head in .* has 50 outputs; an age head over the ages 0-100"):
        export(tiny_network, tmp_path / "x.onnx", head=run_dir)


def test_reduced_precision_checks_cover_the_age(tiny_network, tmp_path):
    head_dir = tmp_path / "both"
    save_head(head_dir, "relu7", DIM, seed=3)
    save_age_head(head_dir, "relu7", DIM, seed=4)
    calibration = write_image_folder(tmp_path / "calibration", 40)
    fp32 = export(tiny_network, tmp_path / "fp32.onnx", head=head_dir)
    int8 = export(tiny_network, tmp_path / "int8.onnx", head=head_dir, precision="int8", calibration=calibration)
    fp16 = export(tiny_network, tmp_path / "fp16.onnx", head=head_dir, precision="fp16", calibration=calibration)
    images = folder_images(calibration)
    reference_age = run(fp32.path, images)[AGE].astype(np.float64)
    for result in (int8, fp16):
        checks = result.checks
        error = np.abs(run(result.path, images)[AGE] - reference_age)
        assert checks["age_mae_years"] == pytest.approx(error.mean(), abs=1e-4)
        assert checks["age_max_abs_error_years"] == pytest.approx(error.max(), abs=1e-4)
        assert json.loads(result.metadata[Meta.PRECISION_CHECK])["age_mae_years"] == checks["age_mae_years"]
    assert fp16.checks["age_mae_years"] < 0.01 * reference_age.std()  # rounding, not a different estimate
    assert "age_mae_years" in int8.checks["fp32_input_noise_baseline"]


def test_bench_times_two_passes_for_a_two_head_graph(graphs):
    from gender_cli.bench.bench import bench
    from gender_cli.cli.cmd_bench import format_report

    both = bench(graphs["both"].path, batch=2, device="cpu", warmup=1, iters=3, variants=False)
    assert both["heads"] == ["gender", "age"]
    two = both["two_passes"]
    assert two["iters"] == 3 and two["images_per_second"] > 0
    assert two["one_pass_speedup"] == pytest.approx(
        both["model_only"]["images_per_second"] / two["images_per_second"])
    assert "two passes per batch" in format_report(both) and "heads: gender, age, one pass" in format_report(both)
    gender = bench(graphs["gender"].path, batch=2, device="cpu", warmup=1, iters=2, variants=False)
    assert "two_passes" not in gender and gender["heads"] == ["gender"]
