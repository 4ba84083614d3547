"""Stratified seeded splits, fixed splits, and the splits.csv round trip."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from helpers_train import make_agegender_tree, read_csv, write_png  # noqa: E402

from gender_cli.errors import GenderCliError
from gender_cli.train.datasets import Dataset, Sample, load_dataset
from gender_cli.train.splits import parse_fractions, plan_splits, read_splits, stratified_split, write_splits


def fake_dataset(n_male: int, n_female: int, tmp_path: Path | None = None) -> Dataset:
    root = tmp_path or Path("/nonexistent")
    samples = [Sample(root / f"m{i:04d}.png", 0) for i in range(n_male)]
    samples += [Sample(root / f"f{i:04d}.png", 1) for i in range(n_female)]
    return Dataset(root=root, layout="folders", samples=samples)


@pytest.mark.parametrize("text", ["0.6,0.2", "0.5,0.2,0.2", "a,b,c", "0.8,0,0.2", "1,-0.5,0.5", "0.6,0.2,0.2,0"])
def test_bad_fractions(text):
    with pytest.raises(ValueError):
        parse_fractions(text)


def test_fractions_parse():
    assert parse_fractions(" 0.7, 0.1 ,0.2") == (0.7, 0.1, 0.2)


@pytest.mark.parametrize("n_male,n_female,fractions", [(101, 37, (0.6, 0.2, 0.2)), (7, 13, (0.5, 0.25, 0.25)),
                                                       (1000, 999, (0.8, 0.1, 0.1))])
def test_stratified_within_one_sample(n_male, n_female, fractions):
    ds = fake_dataset(n_male, n_female)
    plan = plan_splits(ds, fractions, seed=3)
    counts = plan.counts(ds)
    for split, fraction in zip(("train", "val", "test"), fractions):
        for label, n in (("male", n_male), ("female", n_female)):
            assert abs(counts[split][label] - n * fraction) < 1.0 + 1e-9, (split, label, counts)
    assert sum(sum(c.values()) for c in counts.values()) == n_male + n_female


def test_seeded_and_seed_sensitive():
    labels = np.array([0] * 50 + [1] * 50)
    a = stratified_split(labels, (0.6, 0.2, 0.2), ("train", "val", "test"), seed=1)
    b = stratified_split(labels, (0.6, 0.2, 0.2), ("train", "val", "test"), seed=1)
    c = stratified_split(labels, (0.6, 0.2, 0.2), ("train", "val", "test"), seed=2)
    assert list(a) == list(b)
    assert list(a) != list(c)


def test_manifest_split_column_is_honoured_and_val_carved():
    ds = fake_dataset(40, 40)
    for i, s in enumerate(ds.samples):
        s.split = "test" if i % 4 == 0 else "train"
    plan = plan_splits(ds, (0.6, 0.2, 0.2), seed=0)
    for s, split in zip(ds.samples, plan.splits):
        if s.split == "test":
            assert split == "test"
        else:
            assert split in ("train", "val")
    # val share of the 30 non-test samples of each class is 0.2 / (0.6 + 0.2) = 1/4: 7.5
    for label, n_val in plan.counts(ds)["val"].items():
        assert n_val in (7, 8), label
    assert Counter(plan.splits)["test"] == 20
    assert any("carved" in note for note in plan.notes)


def test_agegender_split(tmp_path):
    make_agegender_tree(tmp_path)
    ds = load_dataset(tmp_path)
    plan = plan_splits(ds, (0.6, 0.2, 0.2), seed=0, agegender_split=True)
    for s, split in zip(ds.samples, plan.splits):
        assert (split == "test") == (s.pool == "valid")
    counts = plan.counts(ds)
    assert counts["test"] == {"male": 70, "female": 70}
    assert counts["val"] == {"male": 17, "female": 17} or counts["val"] == {"male": 18, "female": 18}
    plain = plan_splits(ds, (0.6, 0.2, 0.2), seed=0)
    assert {split for s, split in zip(ds.samples, plain.splits) if s.pool == "valid"} != {"test"}


def test_agegender_split_needs_agegender_layout():
    with pytest.raises(GenderCliError, match="--agegender-split needs the agegender layout"):
        plan_splits(fake_dataset(10, 10), agegender_split=True)


def test_splits_file_round_trip(tmp_path):
    for i in range(20):
        write_png(tmp_path / "data" / ("male" if i < 10 else "female") / f"{i}.png")
    ds = load_dataset(tmp_path / "data")
    plan = plan_splits(ds, (0.6, 0.2, 0.2), seed=5)
    write_splits(tmp_path / "splits.csv", ds, plan)
    rows = read_csv(tmp_path / "splits.csv")
    assert [r["split"] for r in rows] == plan.splits
    assert {r["label"] for r in rows} == {"male", "female"}
    # reuse with another seed: the file wins; an added image is left out and counted
    write_png(tmp_path / "data" / "male" / "new.png")
    ds2 = load_dataset(tmp_path / "data")
    reused = plan_splits(ds2, (0.6, 0.2, 0.2), seed=99, splits_file=tmp_path / "splits.csv")
    by_path = dict(zip((str(s.path) for s in ds2.samples), reused.splits))
    assert by_path.pop(str(tmp_path / "data" / "male" / "new.png")) is None
    assert [by_path[str(s.path)] for s in ds.samples] == plan.splits
    assert reused.notes == [f"1 image(s) of the data are not in {tmp_path / 'splits.csv'} and are left out"]
    assert len(read_splits(tmp_path / "splits.csv")) == 20


def test_empty_split_is_an_error():
    with pytest.raises(GenderCliError, match="split is empty"):
        plan_splits(fake_dataset(1, 1), (0.6, 0.2, 0.2))
