"""Stratified, seeded train/val/test splits, and their ``splits.csv`` record.

Order of precedence for a sample's split:

1. ``--splits FILE`` (a previous run's ``splits.csv``): reused exactly; samples not in
   the file are left out and counted;
2. a split fixed by the data (a manifest's ``split`` column; with ``--agegender-split``
   the agegender pools: ``aligned`` = train, ``valid`` = test);
3. otherwise a stratified random split with the ``--split`` fractions.

When fixed splits leave no validation samples, validation is carved (stratified) out
of the training samples with the share ``val / (train + val)``. Class by class, the
number of samples per split is the fraction times the class size, rounded by largest
remainder, so each split's class proportions are within one sample of exact.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gender_cli.atomic import names_file
from gender_cli.contract import LABELS
from gender_cli.errors import GenderCliError
from gender_cli.train.datasets import SPLIT_WORDS, SPLITS, Dataset

SPLITS_FILE = "splits.csv"
DEFAULT_FRACTIONS = (0.6, 0.2, 0.2)


def parse_fractions(text: str) -> tuple[float, float, float]:
    """``"0.6,0.2,0.2"`` -> (train, val, test); ValueError with a readable message."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 3:
        raise ValueError(f"expected three fractions train,val,test (like 0.6,0.2,0.2), got {text!r}")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"fractions must be numbers, got {text!r}") from None
    if any(not np.isfinite(v) or v <= 0 for v in values):
        raise ValueError(f"each fraction must be > 0 (validation picks the threshold), got {text!r}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"fractions must add up to 1, got {text!r} (sum {sum(values):g})")
    return values  # type: ignore[return-value]


def _largest_remainder(n: int, fractions: tuple[float, ...]) -> list[int]:
    exact = [n * f for f in fractions]
    counts = [int(np.floor(x)) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, ...], names: tuple[str, ...], seed: int
) -> np.ndarray:
    """A split name per sample; seeded shuffle within each class."""
    labels = np.asarray(labels)
    result = np.empty(len(labels), dtype=object)
    rng = np.random.default_rng(seed)
    for label in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == label)
        members = members[rng.permutation(len(members))]
        start = 0
        for name, count in zip(names, _largest_remainder(len(members), fractions)):
            result[members[start : start + count]] = name
            start += count
    return result


@dataclass
class SplitPlan:
    splits: list[str | None]  # per dataset sample; None = not used (absent from --splits FILE)
    method: str
    notes: list[str]

    def counts(self, dataset: Dataset) -> dict[str, dict[str, int]]:
        table = {s: {name: 0 for name in LABELS} for s in SPLITS}
        for sample, split in zip(dataset.samples, self.splits):
            if split is not None:
                table[split][LABELS[sample.label]] += 1
        return table


def plan_splits(
    dataset: Dataset,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    agegender_split: bool = False,
    splits_file: Path | None = None,
) -> SplitPlan:
    """Give every sample of ``dataset`` a split (see the module docstring for the rules)."""
    if splits_file is not None:
        return _from_file(dataset, Path(splits_file))
    labels = np.array([s.label for s in dataset.samples])
    fixed: list[str | None] = [s.split for s in dataset.samples]
    notes: list[str] = []
    method = "stratified random split {:g}/{:g}/{:g}, seed {}".format(*fractions, seed)
    if agegender_split:
        if dataset.layout != "agegender":
            raise GenderCliError(
                f"--agegender-split needs the agegender layout; {dataset.root} was read as {dataset.layout}"
            )
        fixed = ["train" if s.pool == "aligned" else "test" for s in dataset.samples]
        method = f"agegender pools (aligned = train, valid = test), seed {seed}"
    elif any(f is not None for f in fixed):
        method = f"manifest split column, seed {seed} for rows without one"

    splits = np.array(fixed, dtype=object)
    free = np.array([f is None for f in fixed])
    if free.any():
        splits[free] = stratified_split(labels[free], fractions, SPLITS, seed)
        if not free.all():
            notes.append(f"{int(free.sum())} sample(s) without a split were split {fractions}")
    if not (splits == "val").any():
        train = np.flatnonzero(splits == "train")
        share = fractions[1] / (fractions[0] + fractions[1])
        carved = stratified_split(labels[train], (1 - share, share), ("train", "val"), seed)
        splits[train] = carved
        notes.append(f"validation carved from train: {int((carved == 'val').sum())} sample(s)")
    for name in SPLITS:
        if not (splits == name).any():
            raise GenderCliError(f"the {name} split is empty ({method}); use more images or other fractions")
    return SplitPlan(list(splits), method, notes)


def _from_file(dataset: Dataset, path: Path) -> SplitPlan:
    recorded = read_splits(path)
    splits: list[str | None] = []
    for sample in dataset.samples:
        splits.append(recorded.pop(_key(sample.path), None))
    notes = []
    left_out = sum(s is None for s in splits)
    if left_out:
        notes.append(f"{left_out} image(s) of the data are not in {path} and are left out")
    if recorded:
        notes.append(f"{len(recorded)} image(s) listed in {path} are not in the data")
    if not any(s is not None for s in splits):
        raise GenderCliError(f"none of the images in {dataset.root} is listed in {path}")
    return SplitPlan(splits, f"reused from {path}", notes)


def _key(path: Path) -> str:
    return str(Path(path).resolve())


def write_splits(path: Path, dataset: Dataset, plan: SplitPlan) -> None:
    """``path,label,split`` with absolute paths, so ``--splits`` works from any folder."""
    tmp = Path(path).with_suffix(".csv.tmp")
    with names_file(path), tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "split"])
        for sample, split in zip(dataset.samples, plan.splits):
            if split is not None:
                writer.writerow([_key(sample.path), LABELS[sample.label], split])
    tmp.replace(path)


def read_splits(path: Path) -> dict[str, str]:
    """resolved path -> split, from a ``splits.csv``."""
    try:
        with Path(path).open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"path", "split"} <= set(reader.fieldnames):
                raise GenderCliError(f"{path} is not a splits file (header path,label,split)")
            result = {}
            for row in reader:
                split = SPLIT_WORDS.get((row["split"] or "").strip().lower())
                if split is None:
                    raise GenderCliError(f"{path}: split {row['split']!r} is not train/val/test")
                result[_key(Path(row["path"]))] = split
            return result
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise GenderCliError(f"cannot read splits file {path}: {exc}") from exc
