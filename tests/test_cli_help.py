"""Every verb's help: one example, its exit statuses, and no word broken across lines."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gender_cli.cli.main import COMMANDS, cli


def _help(*argv: str) -> str:
    result = CliRunner().invoke(cli, [*argv, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def _words(text: str) -> set[str]:
    """Words of a help source string as Click shows them (no \\b markers, no backticks)."""
    return {w for w in text.replace("\b", " ").split() if len(w) > 1}


@pytest.mark.parametrize("verb", list(COMMANDS))
def test_every_verb_has_an_example_and_its_exit_statuses(verb):
    text = _help(verb)
    example = text.split("Example:", 1)[1].split("Exit status:", 1)[0].strip().splitlines()[0].strip()
    assert example.startswith(f"gender-cli {verb}"), example
    statuses = text.split("Exit status:", 1)[1]
    assert "0  " in statuses and "2  " in statuses


@pytest.mark.parametrize("verb", list(COMMANDS))
def test_help_never_breaks_a_word(verb):
    """A path like models/backbone-<descriptor>[-<precision>].onnx must appear whole."""
    command = cli.get_command(None, verb)
    text = " ".join(_help(verb).split())  # lines joined: a broken word stays broken
    sources = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
    missing = sorted(w for source in sources for w in _words(source) if w not in text)
    assert not missing, f"words broken or lost in 'gender-cli {verb} --help': {missing}"


def test_help_uses_words_a_user_knows():
    text = _help() + "".join(_help(verb) for verb in COMMANDS)
    for internal in ("seed 0", "seeds", "used-by"):
        assert internal not in text


@pytest.mark.parametrize("typed, meant", [("clasify", "classify"), ("exprot", "export"), ("bnech", "bench")])
def test_a_misspelled_verb_gets_a_did_you_mean(typed, meant):
    result = CliRunner().invoke(cli, [typed, "x"])
    assert result.exit_code == 2
    assert f"No such command '{typed}'. Did you mean '{meant}'?" in result.output
