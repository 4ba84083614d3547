"""The pipeline on real faces (../shared/data/utkface-sample): reading, splits, cache, resume.

With stand-in backbone weights the accuracy on faces means nothing, so these tests
assert the plumbing: counts, stratification, unreadable files, metrics that match the
saved predictions, valid plots, and an interrupted extraction that resumes.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from helpers_train import png_ok, read_csv, utkface_subset  # noqa: E402

from gender_cli.contract import LABELS
from gender_cli.train.datasets import load_dataset
from gender_cli.train.descriptors import SHARD_GLOB, extract_descriptors

PER_CLASS = 120


def test_the_whole_sample_reads_both_ways(utkface_sample):
    by_names = load_dataset(utkface_sample)
    assert by_names.layout == "utkface"
    assert by_names.class_counts() == {"male": 1000, "female": 1000} and not by_names.skipped
    by_manifest = load_dataset(utkface_sample.parent / "utkface-sample.csv")
    assert by_manifest.layout == "csv"
    assert [(s.path.resolve(), s.label) for s in by_manifest.samples] == [
        (s.path.resolve(), s.label) for s in by_names.samples
    ]
    assert all(s.age is not None and s.age >= 20 for s in by_manifest.samples)


@pytest.fixture
def faces(utkface_sample, tmp_path):
    folder = tmp_path / "faces"
    utkface_subset(utkface_sample, folder, PER_CLASS)
    (folder / "30_1_0_20170101000000001.jpg.chip.jpg").write_bytes(b"this is not a JPEG at all" * 10)
    (folder / "31_1_0_20170101000000002.jpg.chip.jpg").write_bytes(b"")
    (folder / "31_9_0_20170101000000003.jpg.chip.jpg").write_bytes(b"")  # malformed gender
    return folder


class Interrupted(Exception):
    pass


def test_interrupted_extraction_resumes_and_matches_a_clean_run(faces, tiny_network, workspace, monkeypatch, tmp_path):
    paths = sorted(p for p in faces.iterdir())
    shards_seen = []

    def stop_after_two(n):
        shards_seen.append(n)
        if n == 2:
            raise Interrupted

    kwargs = dict(descriptor="relu7", batch_size=16, device="cpu", progress=False, shard_batches=2, workers=2)
    with pytest.raises(Interrupted):
        extract_descriptors(paths, tiny_network, on_shard=stop_after_two, **kwargs)
    cache_dirs = list((workspace / "cache" / "descriptors").iterdir())
    assert len(cache_dirs) == 1
    assert len(list(cache_dirs[0].glob(SHARD_GLOB))) == 2 and not list(cache_dirs[0].glob("*.partial"))

    resumed = extract_descriptors(paths, tiny_network, **kwargs)
    assert resumed.cached == 2 * 2 * 16  # two complete shards of two batches of 16
    assert resumed.extracted == len(paths) - 64
    assert {paths[i].name: c for i, (c, _) in resumed.failures.items()} == {
        "30_1_0_20170101000000001.jpg.chip.jpg": "not_image",
        "31_1_0_20170101000000002.jpg.chip.jpg": "empty",
        "31_9_0_20170101000000003.jpg.chip.jpg": "empty",
    }

    again = extract_descriptors(paths, tiny_network, **kwargs)  # all cached now, failures too
    assert again.extracted == 0 and again.cached == len(paths) and again.failures == resumed.failures

    monkeypatch.setenv("GENDER_CLI_HOME", str(tmp_path / "clean-home"))
    clean = extract_descriptors(paths, tiny_network, **kwargs)
    assert clean.cached == 0
    np.testing.assert_array_equal(clean.ok, resumed.ok)
    np.testing.assert_allclose(resumed.descriptors, clean.descriptors, rtol=1e-6, atol=1e-6)
    assert resumed.ok.sum() == 2 * PER_CLASS and np.abs(resumed.descriptors[resumed.ok]).sum() > 0


def test_training_on_faces_accounts_for_every_file(faces, tiny_network, workspace):
    from gender_cli.train.train import TrainOptions, train

    messages = []
    result = train(
        TrainOptions(data=faces, device="cpu", progress=False, workers=2, epochs=8, export=False),
        network=tiny_network, log=messages.append,
    )
    assert result.dataset["layout"] == "utkface"
    assert result.dataset["classes"] == {"male": PER_CLASS, "female": PER_CLASS + 2}
    assert result.dataset["skipped_reasons"] == {"gender field '9' is not 0 (male) or 1 (female)": 1}
    assert any("unreadable: 2 image(s)" in m for m in messages)
    assert {Path(u["path"]).name: u["category"] for u in result.unreadable} == {
        "30_1_0_20170101000000001.jpg.chip.jpg": "not_image",
        "31_1_0_20170101000000002.jpg.chip.jpg": "empty",
    }

    # stratified: per split and class within one sample of the fraction (before unreadable files left)
    split_rows = read_csv(result.run_dir / "splits.csv")
    counts = Counter((r["split"], r["label"]) for r in split_rows)
    for split, fraction in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        assert abs(counts[(split, "male")] - PER_CLASS * fraction) <= 1
        assert abs(counts[(split, "female")] - (PER_CLASS + 2) * fraction) <= 1

    rows = read_csv(result.run_dir / "predictions.csv")
    assert len(rows) == 2 * PER_CLASS  # the two unreadable files are left out
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    for split in ("train", "val", "test"):
        part = [r for r in rows if r["split"] == split]
        cm = [[sum(1 for r in part if r["true"] == t and r["predicted"] == p) for p in LABELS] for t in LABELS]
        assert metrics[split]["confusion_matrix"]["rows_true_cols_predicted"] == cm
        assert metrics[split]["accuracy"] == pytest.approx(
            sum(r["true"] == r["predicted"] for r in part) / len(part))
    assert metrics["split_counts"]["test"] == {
        label: sum(1 for r in rows if r["split"] == "test" and r["true"] == label) for label in LABELS
    }
    for name in ("training_curves.png", "roc.png", "confusion_matrix.png", "predictions_grid.png",
                 "wrong_predictions_grid.png"):
        assert png_ok(result.run_dir / name)
