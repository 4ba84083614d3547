"""``gender-cli audit``: per-group figures recounted independently from classify's rows.

The groups and every figure are recomputed here from the file names and the rows that
``gender-cli classify`` writes for the same model and data (Parquet, so the
probabilities are the graph's own, unrounded), without the audit's code.
"""

from __future__ import annotations

import csv
import json
import re
from html.parser import HTMLParser
from itertools import product
from pathlib import Path

import pytest
from click.testing import CliRunner

from helpers_infer import write_tiny_classifier  # noqa: E402
from helpers_train import UTKFACE_RACES, read_csv, write_utkface_named  # noqa: E402

from gender_cli.cli.main import cli

COUNTS = {0: 70, 1: 45, 2: 40, 3: 30, 4: 8}  # "others" too small for any interval
METRICS = ("accuracy", "balanced_accuracy", "female_as_male", "male_as_female", "roc_auc")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    base = tmp_path_factory.mktemp("audit")
    model = write_tiny_classifier(base / "tiny.onnx", size=32)
    data = base / "data"
    write_utkface_named(data, COUNTS)
    (data / "30_1_0_20170000000000.jpg.chip.jpg").write_bytes(b"not a jpeg")
    out = base / "audit"
    audit = invoke("audit", data, "--model", model, "--groups", "race,age_band,race*age_band", "-o", out,
                   "--device", "cpu", "--batch", "16", "-q")
    rows = base / "rows.parquet"
    classified = invoke("classify", data, "--model", model, "-o", rows, "--device", "cpu", "--batch", "16", "-q")
    return {"base": base, "model": model, "data": data, "out": out, "audit": audit, "classified": classified,
            "rows": rows}


def _band(age: int) -> str:
    return "0-19" if age < 20 else "20-39" if age < 40 else "40-59" if age < 60 else "60+"


def _classify_rows(path: Path) -> list[dict]:
    import pyarrow.dataset as ds

    return [r for r in ds.dataset(str(path), format="parquet").to_table().to_pylist() if not r["error"]]


def _recount(rows: list[dict], threshold: float | None = None) -> dict:
    """Figures of these rows from nothing but their truth (file name), label and p_female."""
    truth = ["female" if Path(r["path"]).name.split("_")[1] == "1" else "male" for r in rows]
    label = [r["label"] if threshold is None else ("female" if r["p_female"] >= threshold else "male") for r in rows]
    women = [i for i, t in enumerate(truth) if t == "female"]
    men = [i for i, t in enumerate(truth) if t == "male"]
    result = {"n": len(rows), "n_female": len(women), "n_male": len(men),
              "accuracy": sum(t == p for t, p in zip(truth, label)) / len(rows)}
    result["female_as_male"] = sum(label[i] == "male" for i in women) / len(women) if women else None
    result["male_as_female"] = sum(label[i] == "female" for i in men) / len(men) if men else None
    if women and men:
        result["balanced_accuracy"] = ((1 - result["female_as_male"]) + (1 - result["male_as_female"])) / 2
        pairs = [(rows[w]["p_female"], rows[m]["p_female"]) for w in women for m in men]
        result["roc_auc"] = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs)
    else:
        result["balanced_accuracy"] = result["roc_auc"] = None
    return result


def _groups_of(row: dict) -> dict[str, str]:
    age, _, race = Path(row["path"]).name.split("_")[:3]
    race_name, band = UTKFACE_RACES[int(race)], _band(int(age))
    return {"race": race_name, "age_band": band, "race*age_band": f"{race_name}*{band}"}


def _check(recounted: dict, row: dict):
    for key in ("n", "n_female", "n_male"):
        assert row[key] == recounted[key], (row["group"], key)
    for name in METRICS:
        if recounted[name] is None:
            assert row[name] is None, (row["group"], name)
        else:
            assert row[name] == pytest.approx(recounted[name], rel=0, abs=1e-12), (row["group"], name)


def test_every_group_recounts_from_classify_rows(audited):
    assert audited["audit"].exit_code == 0, audited["audit"].output
    assert audited["classified"].exit_code == 3  # the broken file: an error row
    rows = _classify_rows(audited["rows"])
    summary = json.loads((audited["out"] / "metrics.json").read_text())
    assert summary["images"] == len(rows) == sum(COUNTS.values())
    assert [(Path(u["path"]).name, u["category"]) for u in summary["unreadable"]] == [
        ("30_1_0_20170000000000.jpg.chip.jpg", "not_image")]
    _check(_recount(rows), summary["overall"])
    for group_by, block in summary["by_group"].items():
        expected = {}
        for row in rows:
            expected.setdefault(_groups_of(row)[group_by], []).append(row)
        assert [r["group"] for r in block["rows"]] == [g for g in _order(expected)]
        for record in block["rows"]:
            _check(_recount(expected[record["group"]]), record)
    # groups.csv holds the same rows, in the columns the issue names first
    with (audited["out"] / "groups.csv").open(newline="") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0])[:6] == ["group_by", "group", "n", "accuracy", "accuracy_low", "accuracy_high"]
    flat = [summary["overall"]] + [r for b in summary["by_group"].values() for r in b["rows"]]
    assert len(table) == len(flat)
    for written, record in zip(table, flat):
        assert (written["group_by"], written["group"], int(written["n"])) == (record["group_by"], record["group"],
                                                                             record["n"])
        for name in METRICS:
            assert (written[name] == "") == (record[name] is None)
            if record[name] is not None:
                assert float(written[name]) == pytest.approx(record[name], abs=5e-7)


def _order(groups: dict) -> list[str]:
    bands = ["0-19", "20-39", "40-59", "60+"]
    if all(g in bands for g in groups):
        return [b for b in bands if b in groups]
    if all("*" in g for g in groups):
        return [f"{r}*{b}" for r, b in product(sorted(UTKFACE_RACES), bands) if f"{r}*{b}" in groups]
    return sorted(groups)


def test_every_interval_contains_its_estimate_and_small_groups_get_none(audited):
    summary = json.loads((audited["out"] / "metrics.json").read_text())
    rows = [summary["overall"]] + [r for b in summary["by_group"].values() for r in b["rows"]]
    checked = 0
    for row in rows:
        for name in METRICS:
            low, high = row[f"{name}_low"], row[f"{name}_high"]
            assert (low is None) == (high is None)
            if low is not None:
                assert 0 <= low <= row[name] <= high <= 1, (row["group"], name)
                checked += 1
    assert checked > 40
    others = next(r for r in summary["by_group"]["race"]["rows"] if r["group"] == "others")
    assert others["n"] == 8 and all(others[f"{m}_low"] is None for m in METRICS)
    assert "no interval under 20 images" in others["note"]
    for block in summary["by_group"].values():
        for gap in block["gaps"]:
            if gap["gap"] is not None:
                assert gap["gap_low"] <= gap["gap"] <= gap["gap_high"]
                assert gap["gap"] >= 0 and gap["compared"] >= 2
    race_gaps = {g["metric"]: g for g in summary["by_group"]["race"]["gaps"]}
    assert "others" in race_gaps["accuracy"]["left_out"] and race_gaps["accuracy"]["compared"] == 4
    compared = {r["group"]: r["accuracy"] for r in summary["by_group"]["race"]["rows"] if r["group"] != "others"}
    assert race_gaps["accuracy"]["gap"] == pytest.approx(max(compared.values()) - min(compared.values()), abs=1e-12)
    assert compared[race_gaps["accuracy"]["high_group"]] == max(compared.values())


def test_threshold_option_moves_every_label(audited, tmp_path):
    result = invoke("audit", audited["data"], "--model", audited["model"], "--groups", "race", "--threshold", "0.3",
                    "-o", tmp_path / "a", "--device", "cpu", "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert summary["threshold"] == {"value": 0.3, "source": "--threshold", "model": 0.5}
    _check(_recount(_classify_rows(audited["rows"]), threshold=0.3), summary["overall"])
    # the sweep at the audit's threshold is the audit itself
    sweep = [r for r in read_csv(tmp_path / "a" / "threshold_sweep.csv") if r["group_by"] == "all"]
    at = next(r for r in sweep if r["threshold"] == "0.30")
    assert float(at["accuracy"]) == pytest.approx(summary["overall"]["accuracy"], abs=1e-6)
    assert len(sweep) == 101


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.references, self.tables, self.images = [], 0, 0

    def handle_starttag(self, tag, attrs):
        self.tables += tag == "table"
        self.images += tag == "img"
        self.references += [value for name, value in attrs if name in ("src", "href") and value]


def test_report_html_is_self_contained(audited):
    text = (audited["out"] / "report.html").read_text()
    links = _Links()
    links.feed(text)
    assert links.tables == 1 + 2 * 3  # all images; each grouping's table and gap table
    assert links.images > 0 and all(ref.startswith("data:image/") for ref in links.references)
    assert not re.search(r"https?://|@import|url\(", text)
    assert "STAND-IN" in text and "coarse labels" in text
    assert (audited["out"] / "report.md").read_text().startswith("# Audit of tiny.onnx")
    assert audited["audit"].stdout.splitlines()[0].startswith("accuracy ")


def test_user_mistakes_are_one_line_errors(audited, tmp_path):
    unknown = invoke("audit", audited["data"], "--model", audited["model"], "--groups", "skin", "-o", tmp_path / "x")
    assert unknown.exit_code == 1
    assert unknown.output.strip().splitlines()[-1] == (
        "Error: no image has the group column skin; the data's group columns (images with a value): "
        f"age_band {sum(COUNTS.values()) + 1}, race {sum(COUNTS.values()) + 1}")
    malformed = invoke("audit", audited["data"], "--model", audited["model"], "--groups", "race*", "-o", tmp_path / "y")
    assert malformed.exit_code == 2 and "Invalid value for '--groups'" in malformed.output
    assert invoke("audit", audited["data"], "--model", audited["model"], "-o", tmp_path / "z").exit_code == 2
