"""Gender and age from one pass: ``train data/ && export && classify data/`` on a task
with a known answer, where every image carries its age in its brightness (and its
gender label in its colour balance; ``gender_cli.synthetic``).

Stand-in backbone weights say nothing about faces, so the figures are asserted on the
generated task: a constant guess of the middle age scores an MAE of about 25 years
there, and the trained age head must come within AGE_MAE_BOUND years (about 4.5 when
measured; docs/decisions.md).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from helpers_train import AGE_PER_CLASS, age_chain, png_ok, read_csv, write_manifest  # noqa: E402

from gender_cli.contract import AGE, DESCRIPTOR, PROBABILITIES, Meta
from gender_cli.train.report import AGE_PLOT_FILES, PLOT_FILES

AGE_MAE_BOUND = 6.0  # years, test split of the known-answer task
N = 2 * AGE_PER_CLASS


@pytest.fixture(scope="module")
def chain(tmp_path_factory, tiny_network):
    return age_chain(tmp_path_factory, tiny_network)


def _metrics(chain) -> dict:
    return json.loads((chain["run_dir"] / "metrics.json").read_text())


def test_both_heads_learn_the_known_answer(chain):
    metrics = _metrics(chain)
    print(f"known-answer age task: gender test accuracy {metrics['test']['accuracy']:.3f}, "
          f"age test MAE {metrics['age']['test']['mae']:.2f} years")
    assert metrics["task"] == "both" and metrics["heads"] == ["gender", "age"]
    assert metrics["age"]["test"]["n"] == N // 5 and metrics["test"]["n"] == N // 5
    assert metrics["age"]["test"]["mae"] <= AGE_MAE_BOUND
    assert metrics["age"]["test"]["cs5"] >= 0.5
    assert metrics["test"]["accuracy"] >= 0.95
    assert "gender: test accuracy" in chain["trained"].output
    assert "age: test MAE" in chain["trained"].output


def test_run_folder_holds_both_heads_and_age_figures(chain):
    run = chain["run_dir"]
    for name in ("head.json", "head_weights.npz", "head.keras", "age_head.json", "age_head_weights.npz",
                 "age_head.keras", "history.json", "age_history.json", *PLOT_FILES.values(),
                 *AGE_PLOT_FILES.values()):
        assert (run / name).is_file(), name
    for name in (*PLOT_FILES.values(), *AGE_PLOT_FILES.values()):
        assert png_ok(run / name), name
    spec = json.loads((run / "age_head.json").read_text())
    assert spec["ages"] == [0, 100] and spec["loss"] == "dex" and spec["hidden"] == [64]
    config = json.loads((run / "config.json").read_text())
    assert config["task"]["task"] == "both" and config["task"]["reason"] == f"every one of the {N} images has an age"
    report = (run / "report.md").read_text()
    assert "## Age metrics" in report and "| test |" in report and "CS(5)" in report
    assert "expected value" in report


def test_age_metrics_agree_with_the_saved_predictions(chain):
    metrics = _metrics(chain)
    rows = read_csv(chain["run_dir"] / "predictions.csv")
    assert len(rows) == N
    assert list(rows[0]) == ["path", "true", "predicted", "p_male", "p_female", "true_age", "predicted_age", "split"]
    for split in ("train", "val", "test"):
        part = [r for r in rows if r["split"] == split]
        true = np.array([float(r["true_age"]) for r in part])
        assert true.tolist() == [chain["ages"][Path(r["path"]).name] for r in part]
        error = np.array([float(r["predicted_age"]) for r in part]) - true
        m = metrics["age"][split]
        assert m["n"] == len(part)
        assert m["mae"] == pytest.approx(np.abs(error).mean(), abs=0.005)  # the CSV keeps 2 decimals
        assert m["cs5"] == pytest.approx((np.abs(error) <= 5).mean(), abs=1 / len(part))
        young = true < 20
        assert m["mae_by_band"]["0-19"]["n"] == int(young.sum())


def test_export_writes_one_graph_with_both_heads(chain):
    from gender_cli.infer.session import open_session

    assert "outputs probabilities, age, descriptor" in chain["exported"].output
    model = open_session(chain["model"], device="cpu")
    assert model.info.heads == ("gender", "age")
    assert model.output_names == [PROBABILITIES, AGE, DESCRIPTOR]
    outputs = {o.name: o.shape for o in model.session.get_outputs()}
    assert outputs[AGE] == ["N"] and outputs[PROBABILITIES] == ["N", 2]
    raw = model.info.raw
    assert json.loads(raw[Meta.HEADS]) == ["gender", "age"] and json.loads(raw[Meta.AGE_RANGE]) == [0, 100]
    age_metrics = json.loads(raw[Meta.AGE_METRICS])
    assert age_metrics["test_mae"] == pytest.approx(_metrics(chain)["age"]["test"]["mae"])
    assert set(age_metrics["test_mae_by_band"]) == {"0-19", "20-39", "40-59", "60+"}


def test_graph_agrees_with_the_keras_heads_on_cached_descriptors(chain, tiny_network, monkeypatch):
    """The exported graph's heads against head.keras and age_head.keras, fed the
    descriptors training cached for the same images."""
    import keras

    from gender_cli.train.descriptors import extract_descriptors
    from gender_cli.infer.session import open_session
    from gender_cli.train.batch_runner import run_over_paths

    monkeypatch.setenv("GENDER_CLI_HOME", str(chain["home"]))
    paths = sorted(chain["data"].iterdir())[:48]
    cached = extract_descriptors(paths, tiny_network, "relu7", 16, 2, "cpu", False)
    assert cached.cached == len(paths) and cached.extracted == 0
    model = open_session(chain["model"], device="cpu")
    graph = {name: [] for name in (PROBABILITIES, AGE, DESCRIPTOR)}
    for result in run_over_paths(model, paths, list(graph), 16, 2, progress=False):
        for name in graph:
            graph[name].append(result.values[name])
    graph = {name: np.concatenate(v) for name, v in graph.items()}
    np.testing.assert_allclose(graph[DESCRIPTOR], cached.descriptors, rtol=1e-6, atol=1e-6)
    gender = keras.saving.load_model(chain["run_dir"] / "head.keras")
    age = keras.saving.load_model(chain["run_dir"] / "age_head.keras")
    np.testing.assert_allclose(graph[PROBABILITIES], gender.predict(cached.descriptors, verbose=0), atol=1e-5)
    keras_age = age.predict(cached.descriptors, verbose=0)
    assert keras_age.shape == (len(paths), 1)
    print(f"graph vs Keras heads: max |dp| {np.abs(graph[PROBABILITIES] - gender.predict(cached.descriptors, verbose=0)).max():.2e}, "
          f"max |d age| {np.abs(graph[AGE] - keras_age[:, 0]).max():.2e} years")
    # years: 1e-5 absolute, or relative for the older ages (one float32 step at 64-128 is 7.6e-6)
    np.testing.assert_allclose(graph[AGE], keras_age[:, 0], rtol=1e-5, atol=1e-5)


def test_classify_rows_carry_gender_and_age(chain):
    from gender_cli.infer.session import open_session

    assert chain["classified"].exit_code == 0, chain["classified"].output
    with chain["predictions"].open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["path", "label", "p_male", "p_female", "age", "error"]
    assert len(rows) == N and all(r["error"] == "" and r["label"] in ("male", "female") for r in rows)
    from gender_cli.infer.batches import iter_batches

    model = open_session(chain["model"], device="cpu")
    some = rows[:8]  # through the graph as classify feeds it
    batch = next(iter(iter_batches([Path(r["path"]) for r in some], 8, size=model.info.image_size,
                                   resize=model.info.resize, workers=1)))
    ages = model.run(batch.images[: len(some)], [AGE])[AGE]
    assert [float(r["age"]) for r in some] == pytest.approx(ages.tolist(), abs=0.005 + 1e-6)
    # on the images of the test split, classify's ages are as good as training said
    test = {r["path"] for r in read_csv(chain["run_dir"] / "splits.csv") if r["split"] == "test"}
    errors = [abs(float(r["age"]) - chain["ages"][Path(r["path"]).name]) for r in rows if str(Path(r["path"]).resolve()) in test]
    assert len(errors) == N // 5
    assert np.mean(errors) == pytest.approx(_metrics(chain)["age"]["test"]["mae"], abs=0.01)


def test_classify_jsonl_and_error_rows_carry_an_empty_age(chain, tmp_path):
    from helpers_infer import classify_files

    folder = tmp_path / "inbox"
    folder.mkdir()
    for name in sorted(chain["ages"])[:3]:
        (folder / name).write_bytes((chain["data"] / name).read_bytes())
    (folder / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "p.jsonl"
    summary = classify_files([folder], chain["model"], out, batch=4, workers=1)
    assert summary.classified == 3 and summary.failed == 1
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [list(r) for r in records] == [["path", "label", "p_male", "p_female", "age", "error"]] * 4
    broken = [r for r in records if r["path"].endswith("broken.jpg")][0]
    assert broken["age"] is None and broken["label"] is None and broken["error"].startswith("not_image")
    assert all(isinstance(r["age"], float) and 0 <= r["age"] <= 100 for r in records if r is not broken)


def test_evaluate_reports_age_metrics(chain, tmp_path):
    from gender_cli.train.evaluate import evaluate

    ev = evaluate(chain["data"], chain["model"], tmp_path / "ev", splits_file=chain["run_dir"] / "splits.csv",
                  device="cpu", progress=False, workers=2)
    trained = _metrics(chain)
    assert ev.age["images_with_age"] == N // 5 and ev.age["without_age"] == {}
    assert ev.age["metrics"]["mae"] == pytest.approx(trained["age"]["test"]["mae"], abs=1e-4)
    assert ev.metrics["accuracy"] == trained["test"]["accuracy"]
    for name in AGE_PLOT_FILES.values():
        if name != AGE_PLOT_FILES["age_history"]:
            assert png_ok(tmp_path / "ev" / name), name
    saved = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert saved["heads"] == ["gender", "age"] and saved["age"]["test"]["mae"] == ev.age["metrics"]["mae"]
    assert "## Age metrics" in (tmp_path / "ev" / "report.md").read_text()
    assert list(read_csv(tmp_path / "ev" / "predictions.csv")[0])[-3:] == ["true_age", "predicted_age", "split"]


def test_bad_ages_in_a_manifest_are_counted_and_reported(chain, tiny_network, tmp_path, monkeypatch):
    """The same images through a CSV manifest (their descriptors come from the cache),
    four of them with ages the age head cannot use: counted, reported, never clipped."""
    from gender_cli.train.train import TrainOptions, train

    monkeypatch.setenv("GENDER_CLI_HOME", str(chain["home"]))
    names = sorted(chain["ages"])
    bad = {names[0]: "", names[1]: "unknown", names[2]: "130", names[3]: "-2"}
    rows = [{"path": str(chain["data"] / name), "gender": name.split("_")[1],
             "age": bad.get(name, chain["ages"][name])} for name in names]
    manifest = write_manifest(tmp_path / "faces.csv", rows, columns=("path", "gender", "age"))
    messages = []
    result = train(TrainOptions(data=manifest, task="both", device="cpu", progress=False, workers=2, epochs=3,
                                export=False, run_dir=tmp_path / "run"), network=tiny_network, log=messages.append)
    assert result.descriptor_stats["cached"] == N and result.descriptor_stats["extracted"] == 0
    ages_line = [m for m in messages if m.startswith("ages:")]
    assert ages_line == [
        f"ages: {N - 4} of {N} images have a usable age; the age head leaves out "
        f"1 no age (e.g. {names[0]}); 1 age is not a number (e.g. {names[1]}); "
        f"2 age outside 0-100 (e.g. {names[2]} (130), {names[3]} (-2))"
    ]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    counts = {problem: entry["count"] for problem, entry in metrics["age"]["without_age"].items()}
    assert counts == {"no age": 1, "age is not a number": 1, "age outside 0-100": 2}
    assert metrics["age"]["images_with_age"] == N - 4
    assert sum(metrics["age"][s]["n"] for s in ("train", "val", "test")) == N - 4
    report = (tmp_path / "run" / "report.md").read_text()
    assert f"images with a usable age: {N - 4} of {N}" in report and "2 age outside 0-100" in report
    predictions = {Path(r["path"]).name: r for r in read_csv(tmp_path / "run" / "predictions.csv")}
    assert len(predictions) == N  # every image is still there, with its gender and an age estimate
    for name in bad:
        assert predictions[name]["true_age"] == "" and float(predictions[name]["predicted_age"]) >= 0
    assert result.age["metrics"]["n"] == metrics["age"]["test"]["n"]

    auto = train(TrainOptions(data=manifest, device="cpu", progress=False, workers=2, epochs=2, export=False,
                              run_dir=tmp_path / "auto"), network=tiny_network, log=messages.append)
    assert auto.task == "gender" and auto.age is None
    assert f"task: gender (4 of {N} images have no usable age; --task both trains the age head on the others)" \
        in messages


def test_task_age_alone_trains_exports_and_classifies(chain, tiny_network, tmp_path, monkeypatch):
    """``--task age``: no gender head anywhere; the graph gives age alone and classify's
    rows are path, age, error."""
    from gender_cli.train.train import TrainOptions, train

    from helpers_infer import classify_files

    monkeypatch.setenv("GENDER_CLI_HOME", str(tmp_path / "home"))
    data = tmp_path / "data"
    data.mkdir()
    for name in sorted(chain["ages"])[:60]:
        (data / name).write_bytes((chain["data"] / name).read_bytes())
    result = train(TrainOptions(data=data, task="age", device="cpu", progress=False, workers=2, epochs=3),
                   network=tiny_network)
    assert result.task == "age" and result.metrics is None and result.threshold is None
    assert not (result.run_dir / "head.json").exists() and (result.run_dir / "age_head.json").is_file()
    assert result.export_check["images"] == 12 and result.export_check["max_abs_diff_age_years"] < 1e-3
    assert "max_abs_diff_p_female" not in result.export_check
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["heads"] == ["age"] and "test" not in metrics and metrics["age"]["test"]["n"] == 12
    assert list(read_csv(result.run_dir / "predictions.csv")[0]) == ["path", "true_age", "predicted_age", "split"]
    assert "Test metrics" not in (result.run_dir / "report.md").read_text()
    out = tmp_path / "p.csv"
    summary = classify_files([data], result.classifier_path, out, workers=1)
    assert summary.classified == 60
    assert out.read_text().splitlines()[0] == "path,age,error"
