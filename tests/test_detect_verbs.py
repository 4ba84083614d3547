"""``train --detect``, ``evaluate --detect`` and ``bench --images --detect``.

Training on photos records how their faces were found and cropped in the model, so
that ``classify --detect`` and ``evaluate --detect`` crop alike without being told:
checked by their probabilities agreeing with the training run's own predictions.
Stand-in weights say nothing about gender; agreement and bookkeeping are what is
asserted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers_faces import FRONTAL, write_photo  # noqa: E402
from helpers_train import read_csv  # noqa: E402
from helpers_infer import write_tiny_classifier  # noqa: E402
from PIL import Image

from gender_cli.cli.main import cli
from gender_cli.head_spec import HeadSpec
from gender_cli.infer.detect import FaceSettings
from gender_cli.infer.session import open_session
from gender_cli.train.evaluate import evaluate
from gender_cli.train.train import TrainOptions, train


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """24 photos named the UTKFace way (age_gender_race_date.jpg), each holding one
    frontal face of that gender; and a photo without a face."""
    from conftest import UTKFACE_SAMPLE

    if not UTKFACE_SAMPLE.is_dir():
        pytest.skip(f"real face sample not present at {UTKFACE_SAMPLE}")
    root = tmp_path_factory.mktemp("photos") / "data"
    for number in range(24):
        name = FRONTAL[number % len(FRONTAL)]
        age, gender = name.split("_")[:2]
        face = Image.open(UTKFACE_SAMPLE / name).convert("RGB")
        write_photo(root / f"{age}_{gender}_0_{20170101000000000 + number}.jpg", [face], seed=number)
    return root


@pytest.fixture(scope="module")
def trained(photos, tmp_path_factory, tiny_network):
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENDER_CLI_HOME", str(home))
        settings = FaceSettings(min_face=48, margin=0.4)
        result = train(TrainOptions(data=photos, faces=settings, device="cpu", progress=False, workers=2, epochs=3),
                       network=tiny_network)
    return result, settings, home


def test_train_records_the_face_settings_in_the_model(trained):
    result, settings, home = trained
    raw = open_session(result.classifier_path, device="cpu").info.raw
    for key, value in settings.to_meta().items():
        assert raw[key] == value
    spec, _, _ = HeadSpec.load(result.run_dir)
    assert spec.faces == settings.to_meta()
    assert "faces: the largest face of each image, opencv detector (faces from 48 px), margin 0.4" in (
        result.run_dir / "report.md").read_text()
    assert [p.name for p in (home / "cache" / "descriptors").iterdir()][0].endswith(settings.key())


def test_classify_detect_crops_as_training_did(trained, photos, tmp_path):
    result, _, _ = trained
    expected = {Path(r["path"]).name: float(r["p_female"]) for r in read_csv(result.run_dir / "predictions.csv")}
    out = tmp_path / "out.csv"
    outcome = run("classify", photos, "--model", result.classifier_path, "-o", out, "--detect", "--device", "cpu")
    assert outcome.exit_code == 0, outcome.output
    assert "faces from 48 px" in outcome.output and "margin 0.4" in outcome.output  # from the model
    rows = {Path(r["path"]).name: r for r in read_csv(out)}
    assert set(expected) <= set(rows)
    for name, p_female in expected.items():
        assert rows[name]["faces"] == "1"
        assert float(rows[name]["p_female"]) == pytest.approx(p_female, abs=1e-5), name
    # cropped otherwise, the same photos give other probabilities
    other = tmp_path / "other.csv"
    run("classify", photos, "--model", result.classifier_path, "-o", other, "--detect", "--margin", 0, "--device", "cpu")
    moved = [name for name, row in ((Path(r["path"]).name, r) for r in read_csv(other))
             if name in expected and abs(float(row["p_female"]) - expected[name]) > 1e-4]
    assert len(moved) == len(expected)


def test_evaluate_detect_reproduces_the_training_metrics(trained, photos, tmp_path):
    result, settings, _ = trained
    ev = evaluate(photos, result.classifier_path, tmp_path / "ev", splits_file=result.run_dir / "splits.csv",
                  device="cpu", progress=False, workers=2, faces={})
    assert ev.faces == FaceSettings(min_face=48, margin=0.4)
    assert ev.metrics["n"] == result.metrics["n"]
    assert ev.metrics["confusion_matrix"] == result.metrics["confusion_matrix"]
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["faces"]["detector"] == "opencv" and metrics["faces"]["margin"] == 0.4
    plain = evaluate(photos, result.classifier_path, tmp_path / "plain", splits_file=result.run_dir / "splits.csv",
                     device="cpu", progress=False, workers=2)
    assert any("pass --detect" in message for message in plain.notices)


def test_bench_detect_reports_faces_and_the_detectors_share(photos, tmp_path):
    model = write_tiny_classifier(tmp_path / "tiny.onnx", size=32)
    out = tmp_path / "bench.json"
    result = run("bench", "--model", model, "--images", photos, "--detect", "--iters", 2, "--no-variants",
                 "--device", "cpu", "-o", out, "-q")
    assert result.exit_code == 0, result.output
    e2e = json.loads(out.read_text())["end_to_end"]
    assert e2e["files"] == 24 and sum(e2e["files_by_face_count"].values()) == 24
    assert e2e["faces"] == e2e["files_by_face_count"]["1"] == 24
    assert 0 <= e2e["detection_share"] < 1 and e2e["cpu_ms_per_image"]["detect"] > 0
    assert e2e["plain_images_per_second"] > 0
    assert e2e["detection"]["detector"] == "opencv" and e2e["images_per_second"] > 0
    assert "faces/s" in result.output and "of the time" in result.output


def test_detect_options_on_train_evaluate_and_bench(tmp_path):
    assert run("bench", "--detect").exit_code == 2  # needs --images
    for verb in ("train", "evaluate"):
        result = run(verb, "--help")
        assert "--detect" in result.output and "--max-faces" not in result.output  # the largest face only
