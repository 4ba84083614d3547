"""Group columns from every layout (audit --groups), and the --groups spec."""

from __future__ import annotations

import pytest

from helpers_train import make_agegender_tree, write_manifest, write_png  # noqa: E402

from gender_cli.errors import GenderCliError
from gender_cli.train.datasets import load_dataset
from gender_cli.train.groups import MISSING, check_groups, group_values, parse_groups, sample_groups


def _by_name(dataset):
    return {s.path.name: sample_groups(s) for s in dataset.samples}


def test_utkface_names_give_race_age_band_and_folder_levels(tmp_path):
    for name in ("25_0_0_20170101000000001.jpg.chip.jpg", "3_1_2_20170101000000002.jpg.chip.jpg",
                 "67_1_4_20170101000000003.jpg.chip.jpg", "40_0_7_20170101000000004.jpg.chip.jpg"):
        write_png(tmp_path / "studio" / name)
    write_png(tmp_path / "101_1_3_20170101000000005.jpg.chip.jpg")
    groups = _by_name(load_dataset(tmp_path))
    assert groups["25_0_0_20170101000000001.jpg.chip.jpg"] == {"race": "white", "age_band": "20-39",
                                                               "folder1": "studio"}
    assert groups["3_1_2_20170101000000002.jpg.chip.jpg"]["race"] == "asian"
    assert groups["3_1_2_20170101000000002.jpg.chip.jpg"]["age_band"] == "0-19"
    assert groups["67_1_4_20170101000000003.jpg.chip.jpg"]["age_band"] == "60+"
    assert groups["40_0_7_20170101000000004.jpg.chip.jpg"]["race"] == "code 7"
    # 101 is outside the usable ages: no age band; directly in DATA: no folder level
    assert groups["101_1_3_20170101000000005.jpg.chip.jpg"] == {"race": "indian"}


def test_manifest_columns_are_groups_under_their_names(tmp_path):
    rows = []
    for i, (camera, age) in enumerate([("phone", "30"), ("", "45"), ("dslr", "")]):
        write_png(tmp_path / "imgs" / f"{i}.png")
        rows.append({"path": f"imgs/{i}.png", "gender": "f" if i % 2 else "m", "age": age, "Camera": camera,
                     "site": "north"})
    write_manifest(tmp_path / "m.csv", rows, columns=("path", "gender", "age", "Camera", "site"))
    dataset = load_dataset(tmp_path / "m.csv")
    groups = _by_name(dataset)
    assert groups["0.png"] == {"camera": "phone", "site": "north", "age_band": "20-39", "folder1": "imgs"}
    assert "camera" not in groups["1.png"] and "age_band" not in groups["2.png"]
    by = parse_groups("camera*site")[0]
    assert group_values(dataset.samples, by) == ["phone*north", f"{MISSING}*north", "dslr*north"]


def test_class_folders_count_levels_below_male_and_female(tmp_path):
    write_png(tmp_path / "male" / "studio" / "a.png")
    write_png(tmp_path / "female" / "studio" / "b.png")
    write_png(tmp_path / "female" / "street" / "night" / "c.png")
    groups = _by_name(load_dataset(tmp_path))
    assert groups["a.png"] == groups["b.png"] == {"folder1": "studio"}
    assert groups["c.png"] == {"folder1": "street", "folder2": "night"}


def test_agegender_gives_pool_and_age_band(tmp_path):
    make_agegender_tree(tmp_path, pools=("aligned", "valid"))
    dataset = load_dataset(tmp_path)
    first = dataset.samples[0]
    assert sample_groups(first)["pool"] in ("aligned", "valid") and "age_band" in sample_groups(first)


def test_groups_spec_and_unknown_columns(tmp_path):
    assert [g.name for g in parse_groups("Race, age_band ,race*age_band,race")] == [
        "race", "age_band", "race*age_band"]
    for bad in ("race,", "race*", "*", "race*race"):
        with pytest.raises(ValueError):
            parse_groups(bad)
    write_png(tmp_path / "25_0_0_20170101000000001.jpg.chip.jpg")
    dataset = load_dataset(tmp_path)
    with pytest.raises(GenderCliError, match=r"no image has the group column skin; the data's group columns "
                                             r"\(images with a value\): age_band 1, race 1$"):
        check_groups(parse_groups("race*skin"), dataset.samples)
