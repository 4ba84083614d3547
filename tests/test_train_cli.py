"""``gender-cli train`` and ``gender-cli evaluate`` through click: exit codes, messages, output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from helpers_train import write_colour_dataset  # noqa: E402

from gender_cli.cli.main import cli


def invoke(argv):
    return CliRunner().invoke(cli, argv)


def test_missing_data_folder_is_a_one_line_error(tmp_path):
    result = invoke(["train", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: data folder {tmp_path / 'nowhere'} does not exist"


def test_default_data_folder_is_dot_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(["train"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: no ./data folder here; give the labelled images: gender-cli train DATA "
        "(class folders male/ female/, agegender, UTKFace names or a CSV manifest)"
    )


@pytest.mark.parametrize("argv,message", [
    (["--split", "0.6,0.2"], "expected three fractions"),
    (["--split", "0.6,0.3,0.3"], "must add up to 1"),
    (["--hidden", "16,x"], "comma-separated layer sizes"),
    (["--descriptor", "fc7"], "Invalid value for '--descriptor'"),
])
def test_bad_options_are_usage_errors(tmp_path, argv, message):
    result = invoke(["train", str(tmp_path), *argv])
    assert result.exit_code == 2
    assert message in result.output


def test_missing_converted_model_names_convert(tmp_path):
    write_colour_dataset(tmp_path / "data", per_class=5)
    result = invoke(["train", str(tmp_path / "data"), "--quiet"])
    assert result.exit_code == 1
    assert "gender-cli convert" in result.output and "Traceback" not in result.output


def test_train_then_evaluate_through_the_cli(tmp_path, tiny_network, workspace):
    from gender_cli import workspace as ws

    tiny_network.save(ws.network_dir())  # as 'gender-cli convert' leaves it
    data = tmp_path / "data"
    write_colour_dataset(data, per_class=20)
    result = invoke(["train", str(data), "--epochs", "5", "--hidden", "", "--quiet", "--device", "cpu",
                     "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert f"run folder:   {tmp_path / 'run'}" in result.output
    assert f"classifier:   {workspace / 'models' / 'classifier-fp32.onnx'}" in result.output
    head = json.loads((tmp_path / "run" / "head.json").read_text())
    assert head["hidden"] == [] and head["standin"] is True

    result = invoke(["evaluate", str(data), "--splits", str(tmp_path / "run" / "splits.csv"), "--quiet",
                     "-o", str(tmp_path / "ev"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "classifier-fp32.onnx (fp32): accuracy" in result.output and "on 8 images" in result.output
    assert (tmp_path / "ev" / "metrics.json").is_file()


def test_evaluate_without_classifier_is_a_one_line_error(tmp_path):
    write_colour_dataset(tmp_path / "data", per_class=2)
    result = invoke(["evaluate", str(tmp_path / "data")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: no exported classifier") and result.output.count("\n") == 1


def test_help_texts_do_not_import_tensorflow(tmp_path):
    code = (
        "import sys\nfrom gender_cli.cli.main import cli\n"
        "for argv in (['train', '--help'], ['evaluate', '--help']):\n"
        "    try:\n        cli(argv, standalone_mode=False)\n    except SystemExit:\n        pass\n"
        "print([m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert "--agegender-split" in result.stdout and "--splits" in result.stdout
