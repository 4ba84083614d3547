"""``train`` end to end on a task with a known answer (warm vs cool images).

Stand-in backbone weights say nothing about faces, so accuracy is asserted on a task
that a random convolutional network can separate; everything else (files, metrics
consistent with predictions, export, determinism) is asserted on the same run.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from helpers_train import colour_run, png_ok, read_csv  # noqa: E402

from gender_cli.contract import LABELS
from gender_cli.head_spec import HeadSpec
from gender_cli.train.head_model import head_probabilities
from gender_cli.train.report import PLOT_FILES


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_network):
    return colour_run(tmp_path_factory, tiny_network)


def test_known_answer_task_is_learned(run):
    result, _, _ = run
    print(f"colour task: test accuracy {result.metrics['accuracy']:.3f}, AUC {result.metrics['roc_auc']:.3f}, "
          f"{result.epochs_run} epochs, {result.seconds:.1f} s")
    assert result.metrics["accuracy"] >= 0.95
    assert result.metrics["roc_auc"] >= 0.95
    assert result.metrics["n"] == 40


def test_every_file_is_written(run):
    result, home, _ = run
    d = result.run_dir
    assert d.parent == home / "runs"  # default: the next numbered run folder
    for name in ("splits.csv", "head.json", "head_weights.npz", "head.keras", "history.json", "config.json",
                 "metrics.json", "predictions.csv", "report.md", *PLOT_FILES.values()):
        assert (d / name).is_file() and (d / name).stat().st_size > 0, name
    for name in PLOT_FILES.values():
        assert png_ok(d / name), name
    config = json.loads((d / "config.json").read_text())
    assert config["options"]["hidden"] == [16, 16] and config["options"]["seed"] == 0
    assert config["dataset"]["classes"] == {"male": 100, "female": 100}
    assert config["backbone"]["standin"] is True
    assert {"tensorflow", "keras", "onnxruntime", "numpy", "gender_cli"} <= set(config["versions"])
    history = json.loads((d / "history.json").read_text())
    assert len(history["val_loss"]) == history["epochs_run"] == result.epochs_run


def test_head_spec_is_what_export_reads(run, tiny_network):
    result, _, _ = run
    spec, kernels, biases = HeadSpec.load(result.run_dir)
    assert spec.hidden == [16, 16] and spec.dropout == 0.4 and spec.labels == list(LABELS)
    assert spec.descriptor == "relu7" and spec.input_dim == 16 and spec.standin is True
    assert spec.threshold == pytest.approx(result.threshold)
    assert spec.metrics["test_accuracy"] == pytest.approx(result.metrics["accuracy"])
    # the saved Keras head takes raw descriptors, like head.json
    import keras

    model = keras.saving.load_model(result.run_dir / "head.keras")
    x = np.random.default_rng(0).random((5, 16)).astype(np.float32) * 3
    np.testing.assert_allclose(model.predict(x, verbose=0), head_probabilities(kernels, biases, x), atol=1e-5)


def test_metrics_agree_with_saved_predictions(run):
    result, _, data = run
    d = result.run_dir
    metrics = json.loads((d / "metrics.json").read_text())
    rows = read_csv(d / "predictions.csv")
    assert len(rows) == 200
    assert {r["path"] for r in rows} == {str(p) for p in data.rglob("*.png")}
    threshold = metrics["threshold"]["value"]
    for r in rows:
        assert r["predicted"] == LABELS[float(r["p_female"]) >= threshold]
        assert float(r["p_male"]) + float(r["p_female"]) == pytest.approx(1, abs=2e-6)
        assert r["true"] == Path(r["path"]).parent.name
    test = [r for r in rows if r["split"] == "test"]
    cm = [[sum(1 for r in test if r["true"] == t and r["predicted"] == p) for p in LABELS] for t in LABELS]
    assert metrics["test"]["confusion_matrix"]["rows_true_cols_predicted"] == cm
    assert metrics["test"]["accuracy"] == pytest.approx(sum(r["true"] == r["predicted"] for r in test) / len(test))
    # splits: 60/20/20 of each class, same as splits.csv
    splits = {r["path"]: r["split"] for r in read_csv(d / "splits.csv")}
    assert all(splits[r["path"]] == r["split"] for r in rows)
    counts = Counter((r["split"], r["true"]) for r in rows)
    assert counts == {(s, c): n for s, n in (("train", 60), ("val", 20), ("test", 20)) for c in LABELS}


def test_standin_is_marked_everywhere(run):
    result, _, _ = run
    d = result.run_dir
    assert "STAND-IN backbone weights" in (d / "report.md").read_text()
    metrics = json.loads((d / "metrics.json").read_text())
    assert metrics["standin"] is True and "STAND-IN" in metrics["warning"]


def test_fp32_classifier_is_exported_and_agrees(run):
    from gender_cli.infer.session import open_session

    result, home, _ = run
    assert result.classifier_path == home / "models" / "classifier-fp32.onnx"
    loaded = open_session(result.classifier_path, device="cpu")
    assert loaded.info.kind == "classifier" and loaded.info.standin
    assert loaded.info.threshold == pytest.approx(result.threshold)
    assert result.export_check["images"] == 32
    assert result.export_check["max_abs_diff_p_female"] < 1e-4


def test_same_seed_gives_identical_metrics(run, tmp_path_factory, tiny_network):
    from gender_cli.train.train import TrainOptions, train

    first, home, data = run
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENDER_CLI_HOME", str(home))
        again = train(
            TrainOptions(data=data, device="cpu", progress=False, workers=2, seed=0, epochs=40,
                         learning_rate=5e-3, export=False),
            network=tiny_network,
        )
    assert again.run_dir != first.run_dir
    assert again.descriptor_stats["cached"] == 200 and again.descriptor_stats["extracted"] == 0
    assert again.metrics == first.metrics
    assert (again.run_dir / "predictions.csv").read_text() == (first.run_dir / "predictions.csv").read_text()
    assert (again.run_dir / "splits.csv").read_text() == (first.run_dir / "splits.csv").read_text()


@pytest.mark.parametrize("failure", [KeyboardInterrupt, MemoryError])
def test_a_run_stopped_while_fitting_leaves_no_half_made_run_folder(failure, tmp_path, tiny_network, monkeypatch,
                                                                     workspace):
    from helpers_train import write_colour_dataset

    from gender_cli.train import train as train_module

    data = tmp_path / "data"
    write_colour_dataset(data, per_class=6, seed=0)

    def stop(*args, **kwargs):
        raise failure()

    monkeypatch.setattr(train_module, "train_head", stop)
    options = train_module.TrainOptions(data=data, device="cpu", progress=False, workers=2, epochs=1)
    with pytest.raises(failure):
        train_module.train(options, network=tiny_network)
    runs = workspace / "runs"
    assert not runs.exists() or not any(runs.iterdir())  # the splits it had written went with it
    monkeypatch.undo()
    monkeypatch.setenv("GENDER_CLI_HOME", str(workspace))
    result = train_module.train(options, network=tiny_network)
    assert result.run_dir == runs / "001"


def test_a_given_run_folder_that_existed_is_kept_when_the_run_fails(tmp_path, tiny_network, monkeypatch):
    from helpers_train import write_colour_dataset

    from gender_cli.train import train as train_module

    data, run_dir = tmp_path / "data", tmp_path / "mine"
    write_colour_dataset(data, per_class=6, seed=0)
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("the user's own file")
    monkeypatch.setattr(train_module, "train_head", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        train_module.train(train_module.TrainOptions(data=data, run_dir=run_dir, device="cpu", progress=False,
                                                     workers=2, epochs=1), network=tiny_network)
    assert (run_dir / "notes.txt").read_text() == "the user's own file"


def test_calibrated_head_and_classify_rows_never_contradict_their_probabilities(run, tmp_path):
    """train folds calibration and the operating point into the head: threshold 0.5, the
    label is the larger probability in predictions.csv and in every classify row."""
    from click.testing import CliRunner

    from gender_cli.cli.main import cli
    from gender_cli.contract import Meta
    from gender_cli.infer.session import open_session

    result, _, data = run
    spec, _, _ = HeadSpec.load(result.run_dir)
    assert spec.threshold == 0.5 and spec.calibration["method"] == "platt"
    assert spec.calibration["images"] == 40 and 0 < spec.calibration["operating_point"] < 1
    raw = open_session(result.classifier_path, device="cpu").info.raw
    assert float(raw[Meta.THRESHOLD]) == 0.5 and json.loads(raw[Meta.CALIBRATION]) == spec.calibration
    out = tmp_path / "rows.csv"
    classified = CliRunner().invoke(cli, ["classify", str(data), "--model", str(result.classifier_path), "-o",
                                          str(out), "--device", "cpu", "-q"])
    assert classified.exit_code == 0, classified.output
    rows = read_csv(out)
    assert len(rows) == 200 and "Notice" not in classified.stderr
    for row in rows:
        other = LABELS[1 - LABELS.index(row["label"])]
        assert float(row[f"p_{row['label']}"]) >= float(row[f"p_{other}"]), row
    assert {row["label"] for row in rows} == set(LABELS)


def test_dlibs_network_trains_on_its_own_descriptor_and_input_size(tmp_path_factory):
    """A residual graph with a 150x150 input: the default descriptor is its 'embedding'
    and every verb reads the input size from the network and the graph."""
    from gender_cli.convert.dlib_resnet import dlib_resnet_network
    from gender_cli.infer.session import open_session

    result, home, _ = colour_run(tmp_path_factory, dlib_resnet_network("tiny"), name="dlib", per_class=60)
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["options"]["descriptor"] == "embedding"
    assert HeadSpec.load(result.run_dir)[0].input_dim == 8  # the tiny stand-in's embedding
    info = open_session(result.classifier_path).info
    assert info.input_size == (150, 150, 3) and info.raw["face_crop"] == "dlib-chip"
    assert result.metrics["accuracy"] >= 0.9
