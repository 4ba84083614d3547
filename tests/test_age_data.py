"""Ages in the data (UTKFace names, agegender folders, a manifest's column), the task a
run picks from them, and the age metrics; no TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest

from helpers_train import make_agegender_tree, write_manifest, write_png  # noqa: E402

from gender_cli.errors import GenderCliError
from gender_cli.train.age_metrics import age_metrics
from gender_cli.train.datasets import (
    AGE_MISSING, AGE_NOT_A_NUMBER, AGE_OUT_OF_RANGE, load_dataset, read_age,
)
from gender_cli.train.tasks import plan_task


@pytest.mark.parametrize("text, expected", [
    ("25", (25, None)), (" 7 ", (7, None)), ("0", (0, None)), ("100", (100, None)), ("33.5", (33.5, None)),
    ("30.0", (30, None)), ("", (None, AGE_MISSING)), (None, (None, AGE_MISSING)),
    ("abc", (None, AGE_NOT_A_NUMBER)), ("nan", (None, AGE_NOT_A_NUMBER)), ("inf", (None, AGE_NOT_A_NUMBER)),
    ("-3", (-3, AGE_OUT_OF_RANGE)), ("101", (101, AGE_OUT_OF_RANGE)), ("100.5", (100.5, AGE_OUT_OF_RANGE)),
])
def test_read_age_never_clips(text, expected):
    assert read_age(text) == expected


def test_the_shared_sample_has_ages_20_to_80_both_ways(utkface_sample):
    by_names = load_dataset(utkface_sample)
    ages = [s.age for s in by_names.samples]
    assert len(ages) == 2000 and all(s.has_age for s in by_names.samples)
    assert min(ages) == 20 and max(ages) == 80
    assert by_names.age_summary() == {"with_age": 2000, "without_age": {}}
    by_manifest = load_dataset(utkface_sample.parent / "utkface-sample.csv")
    assert [(s.path.name, s.age) for s in by_manifest.samples] == [(s.path.name, s.age) for s in by_names.samples]
    assert plan_task("auto", by_names).task == "both"


def test_utkface_ages_out_of_range_are_kept_and_counted(tmp_path):
    for name in ("25_0_1_20170116174525125.jpg", "116_1_0_20170116174525126.jpg", "101_0_0_1.jpg", "0_1_0_2.jpg"):
        write_png(tmp_path / name)
    ds = load_dataset(tmp_path)
    assert len(ds.samples) == 4  # gender is fine: no image is dropped
    assert {s.path.name: (s.age, s.age_problem) for s in ds.samples} == {
        "25_0_1_20170116174525125.jpg": (25, None),
        "116_1_0_20170116174525126.jpg": (116, AGE_OUT_OF_RANGE),
        "101_0_0_1.jpg": (101, AGE_OUT_OF_RANGE),
        "0_1_0_2.jpg": (0, None),
    }
    summary = ds.summary()["ages"]
    assert summary["with_age"] == 2
    assert summary["without_age"][AGE_OUT_OF_RANGE]["count"] == 2
    assert sorted(summary["without_age"][AGE_OUT_OF_RANGE]["examples"]) == [
        "101_0_0_1.jpg (101)", "116_1_0_20170116174525126.jpg (116)"]


def test_agegender_folder_ages(tmp_path):
    make_agegender_tree(tmp_path, pools=("aligned",))
    write_png(tmp_path / "combined" / "aligned" / "105_F" / "old.png")
    ds = load_dataset(tmp_path)
    assert ds.age_summary()["with_age"] == 140
    old = [s for s in ds.samples if s.path.name == "old.png"]
    assert [(s.age, s.age_problem, s.label) for s in old] == [(105, AGE_OUT_OF_RANGE, 1)]


def test_ages_in_a_csv_manifest(tmp_path):
    rows = []
    for i, age in enumerate(["20", "33.5", "", "unknown", "130", "-1", "0", "100"]):
        write_png(tmp_path / "img" / f"{i}.png")
        rows.append({"path": f"img/{i}.png", "gender": "mf"[i % 2], "age": age})
    ds = load_dataset(write_manifest(tmp_path / "faces.csv", rows, columns=("path", "gender", "age")))
    assert ds.layout == "csv" and len(ds.samples) == 8 and not ds.skipped
    got = {s.path.name: (s.age, s.age_problem) for s in ds.samples}
    assert got == {
        "0.png": (20, None), "1.png": (33.5, None), "2.png": (None, AGE_MISSING),
        "3.png": (None, AGE_NOT_A_NUMBER), "4.png": (130, AGE_OUT_OF_RANGE), "5.png": (-1, AGE_OUT_OF_RANGE),
        "6.png": (0, None), "7.png": (100, None),
    }
    counts = {problem: entry["count"] for problem, entry in ds.age_summary()["without_age"].items()}
    assert counts == {AGE_MISSING: 1, AGE_NOT_A_NUMBER: 1, AGE_OUT_OF_RANGE: 2}


def test_a_manifest_without_an_age_column_has_no_ages(tmp_path):
    write_png(tmp_path / "a.png")
    write_png(tmp_path / "b.png")
    ds = load_dataset(write_manifest(tmp_path / "m.csv", [{"path": "a.png", "gender": "m"},
                                                          {"path": "b.png", "gender": "f"}],
                                     columns=("path", "gender")))
    assert ds.age_summary() == {"with_age": 0, "without_age": {AGE_MISSING: {"count": 2,
                                                                             "examples": ["a.png", "b.png"]}}}
    plan = plan_task("auto", ds)
    assert plan.task == "gender" and plan.heads == ("gender",) and "no usable ages" in plan.reason
    with pytest.raises(GenderCliError, match="--task age needs ages, but none of the 2 images"):
        plan_task("age", ds)


def test_task_auto_needs_every_age(tmp_path):
    rows = []
    for i, age in enumerate(["20", "30", "", "40"]):
        write_png(tmp_path / f"{i}.png")
        rows.append({"path": f"{i}.png", "gender": "mf"[i % 2], "age": age})
    ds = load_dataset(write_manifest(tmp_path / "m.csv", rows, columns=("path", "gender", "age")))
    auto = plan_task("auto", ds)
    assert auto.task == "gender"
    assert auto.reason == "1 of 4 images have no usable age; --task both trains the age head on the others"
    both = plan_task("both", ds)
    assert both.heads == ("gender", "age") and both.age and both.gender
    assert plan_task("age", ds).heads == ("age",)
    with pytest.raises(GenderCliError, match="unknown task"):
        plan_task("height", ds)


def test_age_metrics_known_values():
    true = np.array([10, 19.5, 20, 45, 60, 100])
    predicted = np.array([15, 19.5, 30, 40, 61, 94])  # errors 5, 0, 10, -5, 1, -6
    m = age_metrics(true, predicted)
    assert m["n"] == 6
    assert m["mae"] == pytest.approx(27 / 6)
    assert m["rmse"] == pytest.approx(np.sqrt((25 + 0 + 100 + 25 + 1 + 36) / 6))
    assert m["cs5"] == pytest.approx(4 / 6)  # |error| <= 5 counts
    assert m["mean_error"] == pytest.approx(5 / 6)
    assert m["mae_by_band"] == {
        "0-19": {"n": 2, "mae": 2.5}, "20-39": {"n": 1, "mae": 10.0},
        "40-59": {"n": 1, "mae": 5.0}, "60+": {"n": 2, "mae": 3.5},
    }
    empty_band = age_metrics([30, 35], [30, 37])["mae_by_band"]["60+"]
    assert empty_band == {"n": 0, "mae": None}


def test_dex_estimate_and_targets():
    from gender_cli.train.age_head import AGE_LOSSES, class_ages, expected_age

    classes = class_ages()
    assert classes[0] == 0 and classes[-1] == 100 and len(classes) == 101
    one_hot = np.zeros((2, 101), np.float32)
    one_hot[0, 37] = 1
    one_hot[1, [20, 30]] = 0.5
    assert expected_age(one_hot).tolist() == [37.0, 25.0]
    assert expected_age(np.full((1, 101), 1 / 101)) == pytest.approx(50.0)
    ages = np.array([0, 37.4, 37.6, 50, 100])
    for loss in AGE_LOSSES.values():
        target = loss.target(ages, classes)
        assert target.shape == (5, 101) and np.allclose(target.sum(axis=1), 1)
        assert abs(float(target[3] @ classes) - 50) < 1e-4  # centred away from the ends
    dex = AGE_LOSSES["dex"].target(ages, classes)
    assert dex.argmax(axis=1).tolist() == [0, 37, 38, 50, 100]
