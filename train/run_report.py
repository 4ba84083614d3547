"""The sections of a training run's ``report.md``, as plain (heading, lines) data."""

from __future__ import annotations

from pathlib import Path

from gender_cli.contract import LABELS
from gender_cli.train.report import age_metrics_table, metrics_table
from gender_cli.train.tasks import describe_missing_ages


def calibration_lines(calibration: dict, threshold: float, val_accuracy: float) -> list[str]:
    """How the head was calibrated and where its operating point is."""
    return [
        f"- calibration: Platt scaling on the validation split ({calibration['images']} images): slope "
        f"{calibration['slope']:.4f}, intercept {calibration['intercept']:.4f}; validation ECE "
        f"{calibration['val_ece_before']:.4f} before, {calibration['val_ece_after']:.4f} after",
        f"- operating point: calibrated p_female {calibration['operating_point']:.4f}, chosen on validation by "
        "maximising Youden's J and folded into the head, so the threshold is "
        f"{threshold:g}: a label is the class whose probability is >= {threshold:g} "
        f"(validation accuracy at it: {val_accuracy:.4f}; uncalibrated, the threshold would have been "
        f"{calibration['uncalibrated_threshold']:.4f})",
    ]


def descriptor_training_lines(options, descriptor_stats: dict, gender, age) -> list[str]:
    """How the heads were fitted on a converted network's descriptors."""
    lines = [
        f"- descriptor: {options.descriptor} ({descriptor_stats['cached']} cached, "
        f"{descriptor_stats['extracted']} extracted"
        + (f" at {descriptor_stats['images_per_second']} img/s" if descriptor_stats["images_per_second"] else "")
        + ")",
    ]
    if gender:
        trained = gender["trained"]
        lines += [
            f"- gender head: hidden {options.hidden or 'none (logistic regression)'}, dropout {options.dropout}, "
            f"Adam lr {options.learning_rate}, batch {options.head_batch}, seed {options.seed}",
            f"- epochs run: {trained.epochs_run} of {options.epochs}; weights kept from epoch {trained.best_epoch} "
            "(lowest validation loss)",
        ]
    if age:
        config, trained = age["config"], age["trained"]
        lines += [
            f"- age head (DEX): hidden {config.hidden or 'none (one softmax layer)'}, dropout {config.dropout}, "
            f"softmax over the ages {config.ages[0]}-{config.ages[1]}, loss {config.loss}, estimate = its "
            "expected value",
            f"- epochs run: {trained.epochs_run} of {options.epochs}; weights kept from epoch {trained.best_epoch} "
            "(lowest validation MAE)",
        ]
    return lines


def report_sections(dataset, task, plan, split_counts, unreadable, faces, training_lines, gender, age,
                    classifier, export_check, files) -> list[tuple[str, list[str]]]:
    """``training_lines``: how this run's network and heads were trained (the route's own)."""
    ages = dataset["ages"]
    data_lines = [
        f"- data: `{dataset['root']}` (layout {dataset['layout']}), {dataset['images']} images: "
        + ", ".join(f"{n} {name}" for name, n in dataset["classes"].items()),
        f"- skipped while reading: {dataset['skipped']}"
        + "".join(f"\n  - {n} × {reason}" for reason, n in dataset["skipped_reasons"].items()),
        f"- unreadable (left out): {len(unreadable)}"
        + "".join(f"\n  - `{u['path']}`: {u['category']}" for u in unreadable[:20]),
        f"- task: {task.task} ({task.reason})",
        f"- images with a usable age: {ages['with_age']} of {dataset['images']}"
        + (f"; without one{' (left out of the age head)' if task.age else ''}: "
           + describe_missing_ages(ages) if ages["without_age"] else ""),
        f"- splits: {plan.method}" + "".join(f"; {note}" for note in plan.notes),
        "",
        "| split | " + " | ".join(LABELS) + " | total |",
        "|---" * (len(LABELS) + 2) + "|",
    ]
    for name, row in split_counts.items():
        data_lines.append(f"| {name} | " + " | ".join(str(v) for v in row.values()) + f" | {sum(row.values())} |")
    head_lines = [
        *([f"- faces: the largest face of each image, {faces.summary()}; images without "
           "a face are left out (category no_face)"] if faces is not None else []),
        *training_lines,
    ]
    if gender:
        head_lines += calibration_lines(gender["calibration"], gender["threshold"], gender["val"]["accuracy"])
    sections = [("Data", data_lines), ("Training", head_lines)]
    if gender:
        sections.append(("Test metrics" if not age else "Gender: test metrics", metrics_table(gender["test"])))
    if age:
        sections.append(("Age metrics", age_metrics_table(age["by_split"])))
    if classifier is not None:
        lines = [f"- fp32 classifier: `{classifier}`"]
        if "max_abs_diff_p_female" in export_check:
            lines.append(f"- agreement with the saved gender head on {export_check['images']} test images: "
                         f"max |Δ p_female| = {export_check['max_abs_diff_p_female']}")
        if "max_abs_diff_age_years" in export_check:
            lines.append(f"- agreement with the saved age head on {export_check['images']} test images: "
                         f"max |Δ age| = {export_check['max_abs_diff_age_years']} years")
        sections.append(("Export", lines))
    sections.append(("Files", [f"- {name}: `{Path(p).name}`" for name, p in files.items()]))
    return sections
