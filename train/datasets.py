"""Read a labelled face data set from disk, in one of several layouts.

Every layout yields the same :class:`Dataset`: samples (path, label index in
``contract.LABELS`` order — 0 male, 1 female — optional split, optional age) plus the
items that were skipped, each with a reason. Layouts are a registry; ``auto`` tries
their detectors in :data:`DETECTION_ORDER`.

Ages (agegender folders, UTKFace names, a manifest's ``age`` column) go through one
check, :func:`read_age`: a number in ``contract.AGE_RANGE`` (0-100; decimals allowed in
a manifest). A sample whose age is missing, not a number or out of range keeps its
place (its gender is still good) and carries the problem in ``age_problem``; nothing is
clipped, and :meth:`Dataset.age_summary` counts the problems.

* ``folders``    class folders ``male/`` and ``female/`` (case-insensitive; also
  ``man/woman``, ``men/women``, ``m/f``), images anywhere below them;
* ``agegender``  agegender_cleaned: ``combined/aligned/`` and ``combined/valid/``, each
  with folders ``<NN>_<F|M>`` (age, gender); DATA may be the root or ``combined/``;
* ``utkface``    UTKFace file names ``<age>_<gender>_<race>_<datetime>.jpg[.chip.jpg]``,
  gender 0 = male, 1 = female;
* ``csv``        a manifest ``path,gender[,split][,age]`` with a header row; paths are
  relative to the manifest's folder; gender is male/female/m/f/man/woman or 0/1
  (0 = male, 1 = female, as in UTKFace); split is train/val/test; age is in years.

Each sample also carries the group columns its layout gives (``Sample.groups``, what
``audit`` reports per group): a manifest's other columns under their own names;
UTKFace's race code as ``race`` (:data:`UTKFACE_RACES`); agegender's ``pool``; and the
folders between the layout's base and the file as ``folder1``, ``folder2``, ... (the
base is DATA, the manifest's folder, or for class folders the ``male/`` or ``female/``
folder, so ``male/studio/`` and ``female/studio/`` share ``folder1`` = studio).

Files that cannot be decoded are not found here (that would mean decoding everything
twice); descriptor extraction reports them.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from gender_cli.contract import AGE_RANGE, LABELS
from gender_cli.errors import GenderCliError
from gender_cli.infer.files import list_image_files

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
SPLITS = ("train", "val", "test")

GENDER_WORDS = {
    "male": 0, "m": 0, "man": 0, "men": 0, "0": 0,
    "female": 1, "f": 1, "woman": 1, "women": 1, "1": 1,
}
SPLIT_WORDS = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val",
    "test": "test", "testing": "test",
}
CLASS_FOLDER_WORDS = {k: v for k, v in GENDER_WORDS.items() if not k.isdigit()}

AGEGENDER_FOLDER = re.compile(r"^(\d{1,3})_([FM])$", re.IGNORECASE)
AGEGENDER_POOLS = ("aligned", "valid")
UTKFACE_NAME = re.compile(
    r"^(\d{1,3})_(\d+)_(\d+)_(\d+)\.(?:jpe?g|png)(?:\.chip\.jpe?g)?$", re.IGNORECASE
)
UTKFACE_PREFIX = re.compile(r"^\d{1,3}_\d+_")
UTKFACE_RACES = ("white", "black", "asian", "indian", "others")  # the data set's race codes 0-4
FOLDER_GROUP = "folder{}"  # the group column of the n-th folder level below a layout's base

# why a sample's age cannot train or score the age head (Sample.age_problem)
AGE_MISSING = "no age"
AGE_NOT_A_NUMBER = "age is not a number"
AGE_OUT_OF_RANGE = "age outside {}-{}".format(*AGE_RANGE)
AGE_EXAMPLES = 3  # file names kept per problem for messages


@dataclass
class Sample:
    path: Path
    label: int  # index into contract.LABELS
    split: str | None = None  # fixed by the layout (manifest column, agegender pool)
    age: float | None = None  # years, as given (also when out of range; None when missing or unreadable)
    pool: str | None = None  # agegender: "aligned" or "valid" (splits only with --agegender-split)
    age_problem: str | None = AGE_MISSING  # None when ``age`` is usable; else AGE_* above
    groups: dict[str, str] = field(default_factory=dict)  # group column -> value (module docstring)

    @property
    def has_age(self) -> bool:
        return self.age_problem is None


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass
class Dataset:
    root: Path
    layout: str
    samples: list[Sample] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def class_counts(self) -> dict[str, int]:
        counts = Counter(s.label for s in self.samples)
        return {name: counts.get(i, 0) for i, name in enumerate(LABELS)}

    def skipped_reasons(self) -> dict[str, int]:
        return dict(Counter(s.reason for s in self.skipped))

    def age_summary(self) -> dict:
        return age_summary(self.samples)

    def summary(self) -> dict:
        return {
            "root": str(self.root),
            "layout": self.layout,
            "images": len(self.samples),
            "classes": self.class_counts(),
            "skipped": len(self.skipped),
            "skipped_reasons": self.skipped_reasons(),
            "ages": self.age_summary(),
        }


def age_summary(samples: list[Sample]) -> dict:
    """How many ``samples`` have a usable age, and why the others have none."""
    problems: dict[str, dict] = {}
    for sample in samples:
        if sample.age_problem is not None:
            entry = problems.setdefault(sample.age_problem, {"count": 0, "examples": []})
            entry["count"] += 1
            if len(entry["examples"]) < AGE_EXAMPLES:
                value = "" if sample.age is None else f" ({sample.age:g})"
                entry["examples"].append(f"{Path(sample.path).name}{value}")
    return {"with_age": sum(s.has_age for s in samples), "without_age": problems}


def read_age(text) -> tuple[float | None, str | None]:
    """(age, problem) for an age as given: problem None when usable, else an AGE_* reason.

    An out-of-range age is returned with its problem (reported, never clipped).
    """
    text = "" if text is None else str(text).strip()
    if not text:
        return None, AGE_MISSING
    try:
        age = float(text)
    except ValueError:
        return None, AGE_NOT_A_NUMBER
    if not np.isfinite(age):
        return None, AGE_NOT_A_NUMBER
    age = int(age) if age.is_integer() else age
    if not AGE_RANGE[0] <= age <= AGE_RANGE[1]:
        return age, AGE_OUT_OF_RANGE
    return age, None


# -- helpers ---------------------------------------------------------------------------
def _walk_files(folder: Path) -> list[Path]:
    """Every regular, non-hidden file below ``folder`` (symlinked folders followed once)."""
    return [p for p in list_image_files([folder], skip_hidden=True) if p.is_file()]


def _is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def folder_groups(path: Path, base: Path) -> dict[str, str]:
    """``folder1``, ``folder2``, ... for the folders between ``base`` and ``path`` (none
    when ``path`` is not below ``base``)."""
    try:
        parts = Path(path).parent.relative_to(base).parts
    except ValueError:
        return {}
    return {FOLDER_GROUP.format(level): part for level, part in enumerate(parts, start=1)}


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


# -- folders ---------------------------------------------------------------------------
def _class_folders(root: Path) -> dict[int, list[Path]]:
    found: dict[int, list[Path]] = {}
    if root.is_dir():
        for sub in _subdirs(root):
            label = CLASS_FOLDER_WORDS.get(sub.name.lower())
            if label is not None:
                found.setdefault(label, []).append(sub)
    return found


def _detect_folders(root: Path) -> bool:
    return len(_class_folders(root)) == 2


def _read_folders(root: Path) -> Dataset:
    folders = _class_folders(root)
    if not folders:
        raise GenderCliError(
            f"{root} has no class folders: expected male/ and female/ "
            "(or man/woman, men/women, m/f)"
        )
    ds = Dataset(root=root, layout="folders")
    for label, subs in sorted(folders.items()):
        for sub in subs:
            for path in _walk_files(sub):
                if _is_image_name(path):
                    ds.samples.append(Sample(path, label, groups=folder_groups(path, sub)))
                else:
                    ds.skipped.append(Skipped(str(path), "not an image file name"))
    return ds


# -- agegender -------------------------------------------------------------------------
def _agegender_base(root: Path) -> Path | None:
    for base in (root / "combined", root):
        for pool in AGEGENDER_POOLS:
            folder = base / pool
            if folder.is_dir() and any(AGEGENDER_FOLDER.match(p.name) for p in _subdirs(folder)):
                return base
    return None


def _detect_agegender(root: Path) -> bool:
    return root.is_dir() and _agegender_base(root) is not None


def _read_agegender(root: Path) -> Dataset:
    base = _agegender_base(root) if root.is_dir() else None
    if base is None:
        raise GenderCliError(
            f"{root} is not an agegender_cleaned tree: expected combined/aligned/ or "
            "combined/valid/ holding folders like 25_F and 25_M"
        )
    ds = Dataset(root=root, layout="agegender")
    for pool in AGEGENDER_POOLS:
        folder = base / pool
        if not folder.is_dir():
            continue
        for sub in _subdirs(folder):
            match = AGEGENDER_FOLDER.match(sub.name)
            if not match:
                ds.skipped.append(Skipped(str(sub), "folder name is not <age>_<F|M>"))
                continue
            age, problem = read_age(match.group(1))
            label = 0 if match.group(2).upper() == "M" else 1
            for path in _walk_files(sub):
                if _is_image_name(path):
                    ds.samples.append(Sample(path, label, split=None, age=age, pool=pool, age_problem=problem,
                                             groups={"pool": pool, **folder_groups(path, sub)}))
                else:
                    ds.skipped.append(Skipped(str(path), "not an image file name"))
    return ds


# -- utkface ---------------------------------------------------------------------------
def parse_utkface_name(name: str) -> tuple[int, int] | str:
    """(age, label) for a UTKFace file name, or the reason it cannot be read."""
    match = UTKFACE_NAME.match(name)
    if not match:
        return "name is not <age>_<gender>_<race>_<datetime>.jpg"
    gender = match.group(2)
    if gender not in ("0", "1"):
        return f"gender field {gender!r} is not 0 (male) or 1 (female)"
    return int(match.group(1)), int(gender)


def utkface_race(name: str) -> str | None:
    """The race of a UTKFace file name (:data:`UTKFACE_RACES`; ``code N`` for a code
    outside them), None when the name is not UTKFace's."""
    match = UTKFACE_NAME.match(name)
    if not match:
        return None
    code = int(match.group(3))
    return UTKFACE_RACES[code] if code < len(UTKFACE_RACES) else f"code {code}"


def _detect_utkface(root: Path) -> bool:
    if not root.is_dir():
        return False
    return any(UTKFACE_PREFIX.match(p.name) for p in _walk_files(root) if _is_image_name(p))


def _read_utkface(root: Path) -> Dataset:
    if not root.is_dir():
        raise GenderCliError(f"{root} is not a folder of UTKFace images")
    ds = Dataset(root=root, layout="utkface")
    for path in _walk_files(root):
        if not _is_image_name(path):
            ds.skipped.append(Skipped(str(path), "not an image file name"))
            continue
        parsed = parse_utkface_name(path.name)
        if isinstance(parsed, str):
            ds.skipped.append(Skipped(str(path), parsed))
        else:
            age, label = parsed
            age, problem = read_age(age)
            ds.samples.append(Sample(path, label, age=age, age_problem=problem,
                                     groups={"race": utkface_race(path.name), **folder_groups(path, root)}))
    return ds


# -- csv -------------------------------------------------------------------------------
def _manifest_in(root: Path) -> Path | None:
    if root.is_file() and root.suffix.lower() == ".csv":
        return root
    if root.is_dir():
        manifests = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
        if len(manifests) == 1:
            return manifests[0]
    return None


def _detect_csv(root: Path) -> bool:
    return _manifest_in(root) is not None


def _read_csv(root: Path) -> Dataset:
    manifest = _manifest_in(root)
    if manifest is None:
        raise GenderCliError(
            f"{root} is neither a .csv manifest nor a folder holding exactly one .csv file"
        )
    ds = Dataset(root=manifest, layout="csv")
    try:
        with manifest.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
            missing = [c for c in ("path", "gender") if c not in columns]
            if missing:
                raise GenderCliError(
                    f"{manifest}: the header must name the columns path,gender[,split][,age]; "
                    f"missing: {', '.join(missing)}"
                )
            for line, row in enumerate(reader, start=2):
                _read_csv_row(ds, manifest, line, row, columns)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise GenderCliError(f"cannot read manifest {manifest}: {exc}") from exc
    return ds


def _read_csv_row(ds: Dataset, manifest: Path, line: int, row: dict, columns: dict) -> None:
    def value(column: str) -> str:
        return (row.get(columns[column]) or "").strip() if column in columns else ""

    where = f"{manifest.name}:{line}"
    rel = value("path")
    if not rel:
        ds.skipped.append(Skipped(where, "empty path"))
        return
    path = Path(rel) if Path(rel).is_absolute() else manifest.parent / rel
    label = GENDER_WORDS.get(value("gender").lower())
    if label is None:
        ds.skipped.append(Skipped(str(path), f"gender {value('gender')!r} is not male/female/m/f/0/1"))
        return
    split = None
    if value("split"):
        split = SPLIT_WORDS.get(value("split").lower())
        if split is None:
            ds.skipped.append(Skipped(str(path), f"split {value('split')!r} is not train/val/test"))
            return
    age, problem = read_age(value("age"))
    if not path.is_file():
        ds.skipped.append(Skipped(str(path), "no such file"))
        return
    known = {"path", "gender", "split", "age"}
    groups = {name: (row.get(column) or "").strip() for name, column in columns.items()
              if name and name not in known}
    ds.samples.append(Sample(path, label, split=split, age=age, age_problem=problem,
                             groups={**folder_groups(path, manifest.parent), **groups}))


# -- registry --------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    name: str
    detect: Callable[[Path], bool]
    read: Callable[[Path], Dataset]
    help: str


LAYOUTS = {
    layout.name: layout
    for layout in (
        Layout("folders", _detect_folders, _read_folders, "class folders male/ and female/"),
        Layout("agegender", _detect_agegender, _read_agegender,
               "agegender_cleaned: combined/{aligned,valid}/<NN>_<F|M>/"),
        Layout("utkface", _detect_utkface, _read_utkface,
               "UTKFace names <age>_<gender>_<race>_<datetime>.jpg (0 male, 1 female)"),
        Layout("csv", _detect_csv, _read_csv, "manifest path,gender[,split][,age] (0 male, 1 female)"),
    )
}
# The most specific structure wins: a folder tree is a stronger signal than a stray CSV,
# and a CSV manifest beside UTKFace-named files is the author's explicit labelling.
DETECTION_ORDER = ("agegender", "folders", "csv", "utkface")
LAYOUT_CHOICES = ("auto", *LAYOUTS)


def detect_layout(root: Path) -> str:
    for name in DETECTION_ORDER:
        if LAYOUTS[name].detect(root):
            return name
    found = _class_folders(root)
    if len(found) == 1:
        (label, folders), = found.items()
        names = [word + "/" for word, index in CLASS_FOLDER_WORDS.items() if index != label]
        raise GenderCliError(
            f"{root} has a {', '.join(f.name + '/' for f in folders)} class folder but no "
            f"{LABELS[1 - label]} one ({', '.join(names)}); training needs both classes "
            "('gender-cli evaluate --layout folders' accepts one)"
        )
    raise GenderCliError(
        f"cannot tell the layout of {root}: expected class folders (male/, female/), "
        "an agegender_cleaned tree (combined/aligned/25_F/...), UTKFace file names "
        "(25_0_1_2017....jpg) or a CSV manifest (path,gender[,split]); "
        "pass --layout to choose"
    )


def load_dataset(data: Path | str, layout: str = "auto") -> Dataset:
    """Read ``data`` in ``layout`` (or the detected one); samples sorted by path."""
    root = Path(data)
    if not root.exists():
        raise GenderCliError(f"data folder {root} does not exist")
    if layout not in LAYOUT_CHOICES:
        raise GenderCliError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUT_CHOICES)}")
    name = detect_layout(root) if layout == "auto" else layout
    dataset = LAYOUTS[name].read(root)
    dataset.samples.sort(key=lambda s: str(s.path))
    if not dataset.samples:
        skipped = "; ".join(f"{r} ({n})" for r, n in dataset.skipped_reasons().items())
        raise GenderCliError(
            f"no usable images in {root} (layout {name}); "
            + (f"{len(dataset.skipped)} item(s) skipped: {skipped}" if skipped else "it lists no images")
        )
    return dataset
