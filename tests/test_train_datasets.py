"""Data set layouts: class folders, agegender_cleaned, UTKFace names, CSV manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers_train import make_agegender_tree, write_manifest, write_png  # noqa: E402

from gender_cli.errors import GenderCliError
from gender_cli.train.datasets import detect_layout, load_dataset, parse_utkface_name


@pytest.mark.parametrize("names", [("male", "female"), ("Man", "WOMAN"), ("men", "women"), ("M", "f")])
def test_class_folders_any_spelling(tmp_path, names):
    write_png(tmp_path / names[0] / "a.png")
    write_png(tmp_path / names[0] / "sub" / "b.jpg")
    write_png(tmp_path / names[1] / "c.png")
    (tmp_path / names[1] / "notes.txt").write_text("x")
    (tmp_path / names[1] / ".DS_Store").write_text("x")
    ds = load_dataset(tmp_path)
    assert ds.layout == "folders"
    assert ds.class_counts() == {"male": 2, "female": 1}
    assert {s.path.name: s.label for s in ds.samples} == {"a.png": 0, "b.jpg": 0, "c.png": 1}
    assert [(Path(s.path).name, s.reason) for s in ds.skipped] == [("notes.txt", "not an image file name")]


@pytest.mark.parametrize("point_at", ["root", "combined"])
def test_agegender_140_folders(tmp_path, point_at):
    n = make_agegender_tree(tmp_path)
    assert n == 280
    data = tmp_path if point_at == "root" else tmp_path / "combined"
    assert detect_layout(data) == "agegender"
    ds = load_dataset(data)
    assert ds.layout == "agegender"
    assert len(ds.samples) == 280
    assert ds.class_counts() == {"male": 140, "female": 140}
    by_name = {(s.pool, s.path.parent.name): s for s in ds.samples}
    assert by_name[("aligned", "07_F")].label == 1 and by_name[("aligned", "07_F")].age == 7
    assert by_name[("valid", "70_M")].label == 0 and by_name[("valid", "70_M")].age == 70
    assert {s.pool for s in ds.samples} == {"aligned", "valid"}
    assert all(s.split is None for s in ds.samples)  # pools become splits only on request


def test_agegender_odd_folder_is_skipped_with_reason(tmp_path):
    make_agegender_tree(tmp_path, pools=("aligned",))
    write_png(tmp_path / "combined" / "aligned" / "misc" / "x.png")
    ds = load_dataset(tmp_path, layout="agegender")
    assert len(ds.samples) == 140
    assert [s.reason for s in ds.skipped] == ["folder name is not <age>_<F|M>"]


def test_utkface_names_and_malformed_ones(tmp_path):
    good = ["25_0_1_20170116174525125.jpg.chip.jpg", "31_1_2_20170104230051977.jpg", "8_1_0_2017.png"]
    bad = {
        "39_1_20170116174525125.jpg.chip.jpg": "name is not <age>_<gender>_<race>_<datetime>.jpg",
        "40_3_0_20170117134543123.jpg.chip.jpg": "gender field '3' is not 0 (male) or 1 (female)",
        "holiday.jpg": "name is not <age>_<gender>_<race>_<datetime>.jpg",
    }
    for name in [*good, *bad]:
        write_png(tmp_path / name)
    ds = load_dataset(tmp_path)
    assert ds.layout == "utkface"
    assert sorted(s.path.name for s in ds.samples) == sorted(good)
    labels = {s.path.name: (s.age, s.label) for s in ds.samples}
    assert labels["25_0_1_20170116174525125.jpg.chip.jpg"] == (25, 0)
    assert labels["31_1_2_20170104230051977.jpg"] == (31, 1)
    assert {Path(s.path).name: s.reason for s in ds.skipped} == bad
    assert ds.summary()["skipped_reasons"] == {
        "name is not <age>_<gender>_<race>_<datetime>.jpg": 2,
        "gender field '3' is not 0 (male) or 1 (female)": 1,
    }


def test_parse_utkface_name():
    assert parse_utkface_name("1_0_0_20161219140623097.jpg.chip.jpg") == (1, 0)
    assert isinstance(parse_utkface_name("1_0_0.jpg"), str)


def test_csv_manifest_with_split_column_and_bad_rows(tmp_path):
    for name in ("a.png", "b.png", "c.png", "d.png", "e.png"):
        write_png(tmp_path / "img" / name)
    manifest = write_manifest(tmp_path / "list.csv", [
        {"path": "img/a.png", "gender": "male", "split": "train"},
        {"path": "img/b.png", "gender": "1", "split": "test"},
        {"path": "img/c.png", "gender": "F", "split": "validation"},
        {"path": "img/d.png", "gender": "0", "split": ""},
        {"path": "img/e.png", "gender": "unknown", "split": "train"},
        {"path": "img/missing.png", "gender": "m", "split": "train"},
        {"path": "img/a.png", "gender": "m", "split": "holdout"},
    ])
    for data in (manifest, tmp_path):  # the file itself, or the folder holding one .csv
        ds = load_dataset(data)
        assert ds.layout == "csv"
        got = {(s.path.name, s.label, s.split) for s in ds.samples}
        assert got == {("a.png", 0, "train"), ("b.png", 1, "test"), ("c.png", 1, "val"), ("d.png", 0, None)}
        reasons = sorted(s.reason for s in ds.skipped)
        assert reasons == ["gender 'unknown' is not male/female/m/f/0/1", "no such file",
                           "split 'holdout' is not train/val/test"]


def test_csv_with_utkface_sample_style_paths(tmp_path):
    write_png(tmp_path / "faces" / "20_0_0_1.jpg.chip.jpg")
    write_manifest(tmp_path / "faces.csv", [{"path": "faces/20_0_0_1.jpg.chip.jpg", "gender": "male", "age": "20"}],
                   columns=("path", "gender", "age"))
    ds = load_dataset(tmp_path)  # one CSV beside the images: the manifest wins over names
    assert ds.layout == "csv" and ds.samples[0].age == 20 and ds.samples[0].label == 0


def test_csv_without_required_columns(tmp_path):
    (tmp_path / "m.csv").write_text("file,sex\na.png,male\n")
    with pytest.raises(GenderCliError, match="missing: path, gender"):
        load_dataset(tmp_path / "m.csv")


def test_missing_and_unknown(tmp_path):
    with pytest.raises(GenderCliError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    write_png(tmp_path / "x" / "y.png")
    with pytest.raises(GenderCliError, match="cannot tell the layout"):
        load_dataset(tmp_path)
    (tmp_path / "male").mkdir()
    (tmp_path / "female").mkdir()
    with pytest.raises(GenderCliError, match="no usable images"):
        load_dataset(tmp_path)
