"""The Python API: ``Classifier`` gives the CLI's rows, takes every kind of input, and never
raises for a broken one; the verbs are functions of the package."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import gender_cli
from gender_cli import Classifier, Prediction
from gender_cli.cli.main import cli
from gender_cli.errors import RequestError

from helpers_infer import reference_forward, write_tiny_classifier  # noqa: E402

SIZE = 32
# as outside pytest: Pillow's decompression-bomb warning is an error (images.py sets it)
pytestmark = pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def classifier(model) -> Classifier:
    return Classifier(model, device="cpu")


def test_predict_iter_and_classify_give_the_cli_rows_on_the_awkward_corpus(classifier, model, corpus, tmp_path):
    root, expected = corpus
    assert run("classify", root, "--model", model, "-o", tmp_path / "cli.jsonl", "-q").exit_code == 3
    rows = jsonl(tmp_path / "cli.jsonl")
    assert len(rows) == len(expected)

    predicted = classifier.predict([row["path"] for row in rows])
    streamed = list(classifier.iter(root))
    for made in (predicted, streamed):
        assert [p.source for p in made] == [row["path"] for row in rows]
        for p, row in zip(made, rows):
            assert p.error == row["error"] and p.label == row["label"]
            if row["error"] is None:
                assert {f"p_{k}": round(v, 6) for k, v in p.probabilities.items()} == \
                    {k: row[k] for k in ("p_male", "p_female")}
            else:
                assert p.probabilities is None and not p.ok

    assert run("classify", root, "--model", model, "-o", tmp_path / "cli.csv", "-q").exit_code == 3
    summary = classifier.classify(root, tmp_path / "api.csv")
    assert (tmp_path / "api.csv").read_bytes() == (tmp_path / "cli.csv").read_bytes()
    assert summary.classified + summary.failed == len(expected) and not summary.all_classified
    assert summary.errors["not_image"] == sum(1 for c in expected.values() if c == "not_image")


def test_every_kind_of_input_gives_the_file_s_answer(classifier, tmp_path):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    path = tmp_path / "face.png"
    Image.fromarray(pixels).save(path)
    with Image.open(path) as opened:
        answers = classifier.predict([path, str(path), path.read_bytes(), opened, pixels])
    assert [p.source for p in answers] == [str(path), str(path), 2, 3, 4]
    assert all(p.ok for p in answers)
    first = answers[0].probabilities
    for p in answers[1:]:
        assert p.probabilities == pytest.approx(first, abs=1e-6) and p.label == answers[0].label

    batch = rng.integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    from_batch = classifier.predict(batch)
    assert [p.source for p in from_batch] == [0, 1, 2]
    expected, _ = reference_forward(batch)  # the NumPy twin of the graph: no resize at the input size
    got = np.array([[p.probabilities["male"], p.probabilities["female"]] for p in from_batch])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    single = classifier.predict(batch[1])
    assert len(single) == 1 and single[0].probabilities == pytest.approx(from_batch[1].probabilities, abs=1e-5)


def test_a_broken_input_is_an_error_prediction_never_an_exception(classifier, tmp_path):
    good = np.zeros((SIZE, SIZE, 3), np.uint8)
    inputs = [
        np.zeros((SIZE, SIZE, 3), np.float32),  # not uint8
        np.zeros((SIZE, SIZE), np.uint8),  # not RGB
        b"",
        b"\x89PNG not really",
        42,
        tmp_path / "missing.jpg",
        tmp_path,  # a folder
        good,
    ]
    answers = classifier.predict(inputs)
    assert [p.category for p in answers] == [
        "not_image", "not_image", "empty", "not_image", "not_image", "unreadable", "unreadable", None,
    ]
    assert [p.source for p in answers[:5]] == [0, 1, 2, 3, 4] and answers[5].source == str(tmp_path / "missing.jpg")
    assert answers[-1].ok and answers[-1].label in classifier.info.labels
    assert all(p.label is None and p.probabilities is None for p in answers[:-1])


def test_records_and_dataframe(classifier):
    predictions = classifier.predict([np.full((SIZE, SIZE, 3), 200, np.uint8), b"nope"])
    records = predictions.to_dicts()
    assert list(records[0]) == ["source", "label", "p_male", "p_female", "age", "error"]
    assert records[1]["label"] is None and records[1]["error"].startswith("not_image: ")
    assert sum(records[0][k] for k in ("p_male", "p_female")) == pytest.approx(1.0, abs=1e-6)
    assert isinstance(predictions[0], Prediction) and predictions[0].to_dict() == records[0]
    pandas = pytest.importorskip("pandas")
    frame = predictions.to_pandas()
    assert isinstance(frame, pandas.DataFrame) and list(frame["source"]) == [0, 1]


def test_info_says_what_the_classifier_is(classifier, model):
    info = classifier.info
    assert info.labels == ("male", "female") and info.threshold == 0.5 and info.heads == ("gender",)
    assert info.input_size == (SIZE, SIZE, 3) and info.precision == "fp32" and info.standin is True
    assert classifier.path == model and classifier.providers == ["CPUExecutionProvider"]
    assert "Classifier(" in repr(classifier)


def test_the_workspace_default_classifier_is_used_without_a_model(workspace):
    write_tiny_classifier(workspace / "models" / "classifier-fp32.onnx", size=SIZE)
    assert Classifier(device="cpu").path == workspace / "models" / "classifier-fp32.onnx"


def test_requests_that_contradict_themselves_are_refused_in_python_terms(classifier, model, tmp_path):
    out = tmp_path / "rows.csv"
    out.write_text("mine\n")
    with pytest.raises(RequestError, match=r"pass resume=True to continue it or force=True"):
        classifier.classify(tmp_path, out)
    assert out.read_text() == "mine\n"
    with pytest.raises(RequestError, match=r"^batch: must lie in 1\.\.4096"):
        Classifier(model, batch=0)
    with pytest.raises(RequestError, match="device"):
        Classifier(model, device="tpu")
    with pytest.raises(RequestError, match=r"resume and force contradict"):
        classifier.classify(tmp_path, out, resume=True, force=True)


def test_the_verbs_are_functions_of_the_package_and_their_folders_stay_importable():
    import gender_cli.convert.network as network  # the subpackage is still a package

    assert network.__name__ == "gender_cli.convert.network"
    for verb in ("convert", "train", "export", "evaluate"):
        assert callable(getattr(gender_cli, verb)), verb
    import inspect

    assert list(inspect.signature(gender_cli.export).parameters)[:3] == ["weights", "head", "output"]
    with pytest.raises(RequestError, match="unknown training option"):
        gender_cli.train("data", epochz=3)  # checked before anything is read or imported


def test_convert_then_export_through_python(tmp_path, workspace):
    from gender_cli.convert.standin import make_standin

    from helpers_infer import write_random_head

    weights = make_standin(tmp_path / "vgg_face.mat", size="tiny")
    converted = gender_cli.convert(weights)
    assert converted.network_dir == workspace / "converted" / "network" and converted.standin
    assert converted.summary["layers"] > 0 and converted.head_dir is None
    write_random_head(workspace / "runs" / "001", 16)  # the tiny stand-in's relu7 has 16 values
    notes = []
    result = gender_cli.export(on_note=notes.append, set_default=True)
    assert result.path == workspace / "models" / "classifier-fp32.onnx"
    assert notes == [f"using the heads of the latest training run, {workspace / 'runs' / '001'}"]
    assert Classifier(device="cpu").path == result.path  # set_default made it the default


def test_importing_the_package_imports_no_framework():
    code = ("import sys, gender_cli\n"
            "from gender_cli import Classifier\n"
            "print([m for m in ('tensorflow', 'keras', 'torch', 'ray') if m in sys.modules])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- what the CLI gained with the one pipeline -------------------------------------------------
def test_resize_with_detect_is_refused_instead_of_ignored(model, tmp_path):
    result = run("classify", tmp_path, "--model", model, "--detect", "--resize", "center-crop", "-o", tmp_path / "o.csv")
    assert result.exit_code == 2 and "--resize center-crop does not apply with --detect" in result.output


def test_the_local_engine_reads_a_file_uri(model, tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(folder / "a.png")
    result = run("classify", f"file://{folder}", "--model", model, "-o", "-", "-q")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["path"] for r in rows] == [f"file://{folder}/a.png"] and rows[0]["label"]


def test_jsonl_without_an_output_goes_to_predictions_jsonl(model, tmp_path, monkeypatch):
    folder = tmp_path / "faces"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "a.png")
    monkeypatch.chdir(tmp_path)
    assert run("classify", folder, "--model", model, "--format", "jsonl", "-q").exit_code == 0
    assert len(jsonl(tmp_path / "predictions.jsonl")) == 1
