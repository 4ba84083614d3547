"""One-line notes every verb prints the same way on stderr."""

from __future__ import annotations

import click

from gender_cli.contract import STANDIN_WARNING


def warn_if_standin(standin: bool) -> None:
    """Everything made from stand-in weights says so, whatever --quiet says."""
    if standin:
        click.echo(f"Warning: {STANDIN_WARNING}", err=True)


def using_model(path, precision: str | None = None, quiet: bool = False) -> None:
    """Every verb that runs a classifier says which file it runs."""
    if not quiet:
        click.echo(f"Using {path}" + (f" ({precision})" if precision else ""), err=True)


def notice(message: str | None, quiet: bool = False) -> None:
    if message and not quiet:
        click.echo(f"Notice: {message}", err=True)


def threshold_notice(labels, threshold: float) -> str | None:
    """A graph whose threshold is not 0.5 (made before train calibrated its heads) labels
    by that threshold, which can disagree with the larger probability: say so."""
    if not labels or threshold == 0.5:
        return None
    return (f"this graph labels a file {labels[1]} when p_{labels[1]} >= {threshold:.4f}, its threshold from "
            "before calibration, so a label can disagree with the larger probability; a head trained by "
            "this version is calibrated and labels by the larger probability (threshold 0.5)")


def gender_summary_line(metrics: dict) -> str:
    """``accuracy 0.9750, balanced 0.9750, AUC 0.9900 on 80 images (threshold 0.5123)``."""
    auc = f"{metrics['roc_auc']:.4f}" if metrics["roc_auc"] is not None else "n/a"
    return (f"accuracy {metrics['accuracy']:.4f}, balanced {metrics['balanced_accuracy']:.4f}, AUC {auc} "
            f"on {metrics['n']} images (threshold {metrics['threshold']:.4f})")


def age_summary_line(metrics: dict | None, split: str) -> str:
    """``age: test MAE 3.12 years, RMSE 4.01, CS(5) 0.81 on 80 images`` (train and evaluate)."""
    from gender_cli.train.age_metrics import CS_YEARS

    if not metrics:
        return f"age: no {split} image has a usable age (no age metrics)"
    return (f"age: {split} MAE {metrics['mae']:.2f} years, RMSE {metrics['rmse']:.2f}, "
            f"CS({CS_YEARS}) {metrics[f'cs{CS_YEARS}']:.3f} on {metrics['n']} images")
