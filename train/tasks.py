"""Which heads a training run fits (``--task``), and what the data's ages allow.

``auto`` trains both heads when every image has a usable age and the gender head
alone otherwise (saying why); ``age`` and ``both`` need at least one usable age.
Images without a usable age (missing, not a number, outside 0-100) still train and
score the gender head; the age head leaves them out, and every such image is counted
by reason (``Dataset.age_summary``) in the log, ``metrics.json`` and ``report.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gender_cli.contract import AGE_HEAD, GENDER_HEAD
from gender_cli.errors import GenderCliError

TASKS = {"gender": (GENDER_HEAD,), "age": (AGE_HEAD,), "both": (GENDER_HEAD, AGE_HEAD)}
AUTO = "auto"
TASK_CHOICES = (AUTO, *TASKS)


@dataclass
class TaskPlan:
    task: str  # a TASKS key
    heads: tuple[str, ...]
    reason: str  # why this task, in words
    ages: dict  # Dataset.age_summary()

    @property
    def age(self) -> bool:
        return AGE_HEAD in self.heads

    @property
    def gender(self) -> bool:
        return GENDER_HEAD in self.heads


def describe_missing_ages(ages: dict) -> str:
    """``"3 no age (e.g. a.jpg), 2 age outside 0-100 (e.g. 120_0_0_1.jpg (120))"``."""
    return "; ".join(
        f"{entry['count']} {problem} (e.g. {', '.join(entry['examples'])})"
        for problem, entry in ages["without_age"].items()
    )


def plan_task(requested: str, dataset) -> TaskPlan:
    """The task to train on ``dataset`` for ``--task requested``."""
    if requested != AUTO and requested not in TASKS:
        raise GenderCliError(f"unknown task {requested!r}; choose from {', '.join(TASK_CHOICES)}")
    ages = dataset.age_summary()
    total, usable = len(dataset.samples), ages["with_age"]
    if requested == AUTO:
        if usable == total:
            task, reason = "both", f"every one of the {total} images has an age"
        elif usable == 0:
            task, reason = "gender", f"the data has no usable ages (layout {dataset.layout})"
        else:
            task, reason = "gender", (
                f"{total - usable} of {total} images have no usable age; "
                "--task both trains the age head on the others"
            )
    else:
        task, reason = requested, "--task " + requested
    if AGE_HEAD in TASKS[task] and usable == 0:
        raise GenderCliError(
            f"--task {task} needs ages, but none of the {total} images in {dataset.root} has a usable one "
            f"(layout {dataset.layout}): {describe_missing_ages(ages)}"
        )
    return TaskPlan(task, TASKS[task], reason, ages)
