"""``train --from-scratch``: a compact CNN trained end to end, in the same one-graph contract.

One tiny from-scratch run (32x32 input, blocks of 4 and 8 channels, two epochs per
stage) on the known-answer age task (UTKFace names; gender and age drawn into the
pictures) is made through the CLI once per module and shared: its files, its graph
against Keras (within 1e-5), the verbs that read the graph (export fp16/int8, classify,
evaluate, bench, --detect; --engine ray in test_classify_ray), the Python API and the
options that do not mix.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from click.testing import CliRunner

from helpers_train import read_csv, write_colour_dataset

from gender_cli import contract
from gender_cli.cli.main import cli
from gender_cli.contract import Meta

SIZE = 32
TINY = ["--from-scratch", "--input-size", str(SIZE), "--widths", "4,8", "--epochs", "2", "--workers", "2"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def scratch_run(tmp_path_factory):
    """``gender-cli train DATA --from-scratch`` (tiny) in its own workspace: (home, data, run_dir)."""
    from gender_cli.synthetic import write_known_answer_age_dataset

    base = tmp_path_factory.mktemp("scratch")
    data, home = base / "data", base / "home"
    write_known_answer_age_dataset(data, per_class=40, seed=0, size=48, suffix=".png")
    (data / "30_1_0_99999.png").write_bytes(b"\x89PNG not really")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENDER_CLI_HOME", str(home))
        result = run("train", data, *TINY)
    assert result.exit_code == 0, result.output
    return home, data, home / "runs" / "001", result.output


@pytest.fixture
def in_home(scratch_run, monkeypatch):
    monkeypatch.setenv("GENDER_CLI_HOME", str(scratch_run[0]))
    return scratch_run


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), np.uint8)


def test_the_run_trains_both_heads_in_two_stages_and_leaves_the_usual_files(scratch_run):
    home, data, run_dir, output = scratch_run
    assert "augmented epoch 2/2" in output and "plain epoch 1/2" in output  # a line per epoch, both stages
    for name in ("splits.csv", "metrics.json", "predictions.csv", "report.md", "head.json", "head_weights.npz",
                 "age_head.json", "trunk.keras", "scratch.json", "training_curves.png", "wrong_predictions_grid.png",
                 "age_scatter.png", "config.json"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["heads"] == ["gender", "age"]
    assert [u["category"] for u in metrics["unreadable"]] == ["not_image"]  # left out, listed
    assert metrics["decoding"]["decoded"] == 80 and metrics["decoding"]["parallel_decodes"] == 2
    assert metrics["test"]["accuracy"] >= 0.9  # the colours say the gender: an easy task
    scratch = json.loads((run_dir / "scratch.json").read_text())
    assert [stage["name"] for stage in scratch["stages"]] == ["augmented", "plain"]
    assert scratch["input_size"] == [SIZE, SIZE, 3] and scratch["config"]["widths"] == [4, 8]
    head = json.loads((run_dir / "head.json").read_text())
    assert head["descriptor"] == "penultimate" and head["hidden"] == [] and head["threshold"] == 0.5
    assert head["backbone_sha256"] == scratch["trunk_sha256"]
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["val_loss"]) == history["epochs_run"] == sum(s["epochs_run"] for s in scratch["stages"])
    assert history["stage"][0] == "augmented" and history["stage"][-1] == "plain"
    assert "## Training" in (run_dir / "report.md").read_text()


def test_the_graph_obeys_the_contract_and_says_it_was_trained_from_scratch(scratch_run):
    home = scratch_run[0]
    path = home / "models" / "classifier-fp32.onnx"
    onnx.checker.check_model(str(path))
    s = session(path)
    (image_input,) = s.get_inputs()
    assert image_input.name == contract.INPUT_NAME and image_input.type == "tensor(uint8)"
    assert image_input.shape[1:] == [SIZE, SIZE, 3]
    assert [o.name for o in s.get_outputs()] == [contract.PROBABILITIES, contract.AGE, contract.DESCRIPTOR]
    meta = s.get_modelmeta().custom_metadata_map
    assert all(key in meta for key in contract.REQUIRED_KEYS)
    assert meta[Meta.SOURCE_FORMAT] == "scratch" and meta[Meta.DESCRIPTOR] == "penultimate"
    assert json.loads(meta[Meta.INPUT_SIZE]) == [SIZE, SIZE, 3] and meta[Meta.STANDIN] == "false"
    assert json.loads(meta[Meta.HEADS]) == ["gender", "age"] and Meta.CALIBRATION in meta
    assert json.loads(meta[Meta.SOURCE_PREPROCESSING])["scale"] == pytest.approx(1 / 255)


# the saved age head nests the softmax model inside the one giving years (save_keras_age_head)
@pytest.mark.filterwarnings("ignore:The structure of `inputs` doesn't match")
def test_the_graph_matches_keras_on_probe_images(scratch_run):
    """The independent reader: Keras itself, running the saved trunk and the saved heads."""
    from gender_cli.tf_quiet import import_keras

    keras = import_keras()
    home, _, run_dir, _ = scratch_run
    trunk = keras.saving.load_model(run_dir / "trunk.keras", compile=False)
    head = keras.saving.load_model(run_dir / "head.keras", compile=False)
    age_head = keras.saving.load_model(run_dir / "age_head.keras", compile=False)
    probes = images(24, seed=5)
    descriptor = np.asarray(trunk(probes, training=False))
    got = dict(zip([o.name for o in session(home / "models" / "classifier-fp32.onnx").get_outputs()],
                   session(home / "models" / "classifier-fp32.onnx").run(None, {"images": probes})))
    np.testing.assert_allclose(got[contract.PROBABILITIES], np.asarray(head(descriptor)), rtol=0, atol=1e-5)
    np.testing.assert_allclose(got[contract.DESCRIPTOR], descriptor, rtol=0,
                               atol=1e-5 * max(1.0, np.abs(descriptor).max()))
    np.testing.assert_allclose(got[contract.AGE], np.asarray(age_head(descriptor))[:, 0], rtol=0, atol=1e-3)


def test_fp16_int8_classify_evaluate_and_bench_take_the_scratch_graph(in_home, tmp_path):
    home, data, run_dir, _ = in_home
    fp16 = run("export", "--precision", "fp16", "-q")  # default: the latest run, which is from scratch
    assert fp16.exit_code == 0, fp16.output
    assert "label_agreement 1.0000" in fp16.output or "meets the goal" in fp16.output
    int8 = run("export", "--precision", "int8", "--calibration", data, "-q")
    assert int8.exit_code == 0, int8.output
    for precision in ("fp16", "int8"):
        meta = session(home / "models" / f"classifier-{precision}.onnx").get_modelmeta().custom_metadata_map
        assert meta[Meta.PRECISION] == precision and meta[Meta.SOURCE_FORMAT] == "scratch"
        assert json.loads(meta[Meta.PRECISION_CHECK])["label_agreement"] >= 0.9
    out = tmp_path / "rows.csv"
    classified = run("classify", data, "-o", out, "--model", home / "models" / "classifier-fp16.onnx")
    assert classified.exit_code == 3, classified.output  # the broken file is an error row
    rows = read_csv(out)
    assert len(rows) == 81 and sum(bool(r["error"]) for r in rows) == 1 and rows[0]["age"] != ""
    evaluated = run("evaluate", data, "-o", tmp_path / "evaluation")
    assert evaluated.exit_code == 0, evaluated.output
    assert "accuracy" in evaluated.output
    bench = run("bench", "--images", data, "--iters", 3, "-o", tmp_path / "bench.json", "-q")
    assert bench.exit_code == 0, bench.output
    figures = json.loads((tmp_path / "bench.json").read_text())
    assert figures["descriptor"] == "penultimate" and figures["end_to_end"]["images_per_second"] > 0


def test_classify_detect_runs_the_scratch_graph_on_found_faces(in_home, tmp_path, utkface_sample):
    from helpers_faces import frontal_faces, write_photo

    home = in_home[0]
    photo = write_photo(tmp_path / "photos" / "one.jpg", frontal_faces(utkface_sample, 1), seed=1)
    assert photo
    out = tmp_path / "faces.csv"
    result = run("classify", tmp_path / "photos", "-o", out, "--detect")
    assert result.exit_code == 0, result.output
    (row,) = read_csv(out)
    assert row["faces"] == "1" and row["label"] in ("male", "female") and row["error"] == ""


def test_the_python_api_with_the_same_seed_trains_the_same_network(scratch_run, tmp_path, monkeypatch):
    """The module's CLI run made again through ``gender_cli.train``: the same weights, bit for bit."""
    import gender_cli
    from gender_cli.errors import RequestError
    from gender_cli.tf_quiet import import_keras

    keras = import_keras()
    home, data, first, _ = scratch_run
    monkeypatch.setenv("GENDER_CLI_HOME", str(tmp_path / "home"))
    again = gender_cli.train(data, from_scratch={"input_size": SIZE, "widths": [4, 8]}, epochs=2, workers=2,
                             progress=False, export=False).run_dir
    for name in ("head_weights.npz", "age_head_weights.npz"):
        with np.load(first / name) as a, np.load(again / name) as b:
            for key in a.files:
                np.testing.assert_array_equal(a[key], b[key])
    trunks = [keras.saving.load_model(run_dir / "trunk.keras", compile=False).get_weights()
              for run_dir in (first, again)]
    for a, b in zip(*trunks):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(RequestError, match="hidden does not apply to from_scratch"):
        gender_cli.train(data, from_scratch=True, hidden=[8])


def test_the_stages_differ_as_the_reference_project_trains(tmp_path):
    from gender_cli.train.scratch_model import STAGES, ScratchConfig, ScratchNetwork

    network = ScratchNetwork.build(ScratchConfig(input_size=24, widths=[4], dense=8), {"gender": 2})
    augmented, plain = (network.stage_model(stage) for stage in STAGES)
    names = {model.name: [layer.name for layer in model.layers] for model in (augmented, plain)}
    assert "augmentation" in names[augmented.name] and "head_dropout" not in names[augmented.name]
    assert "augmentation" not in names[plain.name] and "head_dropout" in names[plain.name]
    assert plain.get_layer("head_dropout").rate == STAGES[1].head_dropout == 0.3
    # both train the same layers: a weight set through one model is seen by the other
    conv = network.trunk.get_layer("block1_conv1")
    assert augmented.get_layer("block1_conv1") is conv and plain.get_layer("block1_conv1") is conv
    kinds = [type(layer).__name__ for layer in network.augmentation.layers]
    assert kinds == ["RandomFlip", "RandomRotation", "RandomZoom", "RandomContrast", "RandomBrightness"]


def test_decoding_keeps_the_order_and_the_pixels_classify_sees(tmp_path):
    from gender_cli.infer.images import load_image
    from gender_cli.train.scratch_data import decode_images

    data = tmp_path / "data"
    write_colour_dataset(data, per_class=12, seed=2, size=50)
    paths = sorted(data.rglob("*.png"))
    broken = data / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    paths.insert(5, broken)
    decoded = decode_images(paths, 20, workers=2, progress=False)
    assert list(decoded.failures) == [5] and not decoded.ok[5] and decoded.ok.sum() == len(paths) - 1
    for i in (0, 4, 6, len(paths) - 1):
        np.testing.assert_array_equal(decoded.images[i], load_image(paths[i], (20, 20), "stretch"))


@pytest.mark.parametrize("argv, says", [
    (["--from-scratch", "--weights", "x"], "--weights does not apply to --from-scratch"),
    (["--from-scratch", "--hidden", "8"], "--hidden does not apply to --from-scratch"),
    (["--from-scratch", "--descriptor", "relu7"], "--descriptor does not apply to --from-scratch"),
    (["--input-size", "64"], "--input-size applies to --from-scratch only"),
    (["--widths", "8,16"], "--widths applies to --from-scratch only"),
    (["--from-scratch", "--widths", ""], "give at least one block"),
])
def test_options_that_do_not_mix_are_usage_errors(tmp_path, argv, says):
    write_colour_dataset(tmp_path / "data", per_class=2)
    result = run("train", tmp_path / "data", *argv)
    assert result.exit_code == 2 and says in result.output


def test_with_detect_the_network_trains_on_the_faces_classify_detect_cuts(tmp_path, utkface_sample):
    """--detect: each picture stands for its largest face, cut as classify --detect cuts it."""
    from helpers_faces import frontal_faces, write_photo

    from gender_cli.infer.detect import FaceSettings
    from gender_cli.infer.faces import find_faces
    from gender_cli.train.scratch_data import decode_images

    paths = [tmp_path / "one.jpg", tmp_path / "two.jpg", tmp_path / "none.png"]
    write_photo(paths[0], frontal_faces(utkface_sample, 1), seed=1)
    write_photo(paths[1], frontal_faces(utkface_sample, 2, start=1), seed=2)
    write_colour_dataset(tmp_path / "plain", per_class=1)
    paths[2] = next((tmp_path / "plain").rglob("*.png"))
    settings = FaceSettings.resolve(None)
    decoded = decode_images(paths, SIZE, workers=2, faces=settings, progress=False)
    assert decoded.ok.tolist() == [True, True, False] and decoded.failures[2][0] == "no_face"
    for i in (0, 1):
        (largest, *_) = sorted(find_faces(0, paths[i], settings, (SIZE, SIZE)).faces,
                               key=lambda face: face.box[2] * face.box[3], reverse=True)
        np.testing.assert_array_equal(decoded.images[i], largest.crop)
