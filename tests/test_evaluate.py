"""``evaluate``: exported classifiers through onnxruntime, same metrics as training."""

from __future__ import annotations

import json

import pytest

from helpers_train import colour_run, png_ok, read_csv, write_manifest  # noqa: E402

from gender_cli.errors import GenderCliError, MissingArtifactError, ModelFileError
from gender_cli.train.evaluate import evaluate


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_network):
    return colour_run(tmp_path_factory, tiny_network)


def test_fp32_on_the_runs_test_split_reproduces_training_metrics(run, tmp_path):
    result, _, data = run
    ev = evaluate(data, result.classifier_path, tmp_path / "ev", splits_file=result.run_dir / "splits.csv",
                             device="cpu", progress=False, workers=2)
    assert ev.precision == "fp32" and ev.standin
    assert ev.metrics["n"] == result.metrics["n"] == 40
    assert ev.metrics["threshold"] == pytest.approx(result.threshold)
    assert ev.metrics["confusion_matrix"] == result.metrics["confusion_matrix"]
    assert ev.metrics["accuracy"] == result.metrics["accuracy"]
    assert ev.metrics["roc_auc"] == pytest.approx(result.metrics["roc_auc"], abs=1e-6)
    train_rows = {r["path"]: r for r in read_csv(result.run_dir / "predictions.csv") if r["split"] == "test"}
    rows = read_csv(tmp_path / "ev" / "predictions.csv")
    assert {r["path"] for r in rows} == set(train_rows)
    for r in rows:
        assert float(r["p_female"]) == pytest.approx(float(train_rows[r["path"]]["p_female"]), abs=1e-5)
    for name in ("roc.png", "confusion_matrix.png", "predictions_grid.png", "wrong_predictions_grid.png"):
        assert png_ok(tmp_path / "ev" / name)
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["threshold"]["source"] == "model metadata" and metrics["standin"] is True
    assert "STAND-IN backbone weights" in (tmp_path / "ev" / "report.md").read_text()


def test_fp16_variant(run, tmp_path, tiny_network):
    from gender_cli.export.export import export

    result, _, data = run
    fp16 = export(tiny_network, tmp_path / "classifier-fp16.onnx", head=result.run_dir, precision="fp16")
    ev = evaluate(data, fp16.path, tmp_path / "ev16", splits_file=result.run_dir / "splits.csv",
                             device="cpu", progress=False)
    assert ev.precision == "fp16" and ev.metrics["n"] == 40
    assert ev.metrics["accuracy"] >= 0.95
    assert ev.metrics["threshold"] == pytest.approx(result.threshold)


def test_all_images(run, tmp_path):
    result, _, data = run
    ev = evaluate(data, result.classifier_path, tmp_path / "ev", split="all", splits_file=result.run_dir
                             / "splits.csv", device="cpu", progress=False)
    assert ev.metrics["n"] == 200
    assert {r["split"] for r in read_csv(tmp_path / "ev" / "predictions.csv")} == {"train", "val", "test"}


def test_manifest_test_rows_and_default_output(run, workspace):
    result, _, data = run
    images = sorted(data.rglob("*.png"))
    write_manifest(data.parent / "manifest.csv", [
        {"path": str(p.relative_to(data.parent)), "gender": p.parent.name, "split": "test" if i % 5 == 0 else "train"}
        for i, p in enumerate(images)
    ])
    try:
        ev = evaluate(data.parent / "manifest.csv", result.classifier_path, device="cpu", progress=False)
    finally:
        (data.parent / "manifest.csv").unlink()
    assert ev.metrics["n"] == len(images[::5])
    assert ev.out_dir == workspace / "evaluations" / "classifier-fp32-001"


def test_errors(run, tmp_path):
    result, _, data = run
    with pytest.raises(GenderCliError, match="no split information"):
        evaluate(data, result.classifier_path, tmp_path / "x", split="test", progress=False)
    backbone = result.descriptor_stats["backbone_onnx"]
    with pytest.raises(ModelFileError, match="is a backbone graph, not a classifier"):
        evaluate(data, backbone, tmp_path / "x", progress=False)
    with pytest.raises(MissingArtifactError, match="no exported classifier"):
        evaluate(data, None, tmp_path / "x", progress=False)
