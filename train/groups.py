"""Which group each image belongs to, for ``audit --groups``.

A group column comes from the data (``Sample.groups``: a manifest's other columns,
UTKFace's ``race``, agegender's ``pool``, the folder levels ``folder1``, ...) or from
the age (``age_band``: the bands of ``age_metrics.AGE_BANDS``, for every image with a
usable age). ``--groups race,age_band`` audits each column on its own; ``race*age_band``
audits the pairs of their values (a group is then ``white*20-39``). An image without a
value for a column (a blank manifest cell, no age, fewer folder levels) is in the
group :data:`MISSING`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from gender_cli.errors import GenderCliError
from gender_cli.train.age_metrics import age_band
from gender_cli.train.datasets import Sample

AGE_BAND = "age_band"
PAIR = "*"
MISSING = "(none)"


@dataclass(frozen=True)
class GroupBy:
    columns: tuple[str, ...]  # one column, or the columns whose values are paired

    @property
    def name(self) -> str:
        return PAIR.join(self.columns)


def parse_groups(text: str) -> list[GroupBy]:
    """``"race,race*age_band"`` -> the group columns to audit; ValueError when malformed."""
    found = []
    for item in str(text).split(","):
        columns = tuple(part.strip().lower() for part in item.split(PAIR))
        if not all(columns):
            raise ValueError(f"{text!r}: expected column names separated by ',' (each column) "
                             f"or '{PAIR}' (pairs of columns), like race,race{PAIR}age_band")
        if len(set(columns)) < len(columns):
            raise ValueError(f"{item.strip()!r} pairs a column with itself")
        if GroupBy(columns) not in found:
            found.append(GroupBy(columns))
    return found


def sample_groups(sample: Sample) -> dict[str, str]:
    """Every group column of ``sample`` with its value (blank values left out)."""
    values = {name: value for name, value in sample.groups.items() if value}
    if sample.has_age:
        values[AGE_BAND] = age_band(sample.age)
    return values


def available(samples: list[Sample]) -> Counter:
    """Group column -> how many of ``samples`` have a value for it."""
    return Counter(name for sample in samples for name in sample_groups(sample))


def check_groups(groups: list[GroupBy], samples: list[Sample]) -> None:
    """GenderCliError naming each column no image has, with the columns there are."""
    present = available(samples)
    unknown = sorted({c for g in groups for c in g.columns if not present[c]})
    if unknown:
        there = ", ".join(f"{name} {n}" for name, n in sorted(present.items())) or "none"
        raise GenderCliError(f"no image has the group column {', '.join(unknown)}; the data's group "
                             f"columns (images with a value): {there}")


def group_values(samples: list[Sample], by: GroupBy) -> list[str]:
    """The group of each sample under ``by``."""
    values = [sample_groups(sample) for sample in samples]
    return [PAIR.join(v.get(column, MISSING) for column in by.columns) for v in values]
