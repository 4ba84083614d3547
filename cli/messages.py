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
