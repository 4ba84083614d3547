"""A classifier's metadata is checked against the schema and the graph when it is opened.

Each probe is a tiny valid graph whose metadata says something that would make
``classify`` allocate without bound, decide every file alike, write a column twice,
recurse until it crashes, or fail inside onnxruntime; each gets one line and exit 1
before any file is read.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gender_cli.cli.main import cli
from gender_cli.contract import Meta

from helpers_infer import write_noise_images, write_tiny_classifier  # noqa: E402

PROBES = {
    "a 60000x60000 input": ({Meta.INPUT_SIZE: "[60000, 60000, 3]"}, "metadata input_size: 60000 is not"),
    "NaN threshold": ({Meta.THRESHOLD: "nan"}, "metadata threshold: nan is not a finite number"),
    "-inf threshold": ({Meta.THRESHOLD: "-inf"}, "metadata threshold: -inf is not a finite number"),
    "threshold 1.5": ({Meta.THRESHOLD: "1.5"}, "metadata threshold: 1.5 lies outside 0..1"),
    "a label twice": ({Meta.LABELS: '["male", "male"]'}, "names a label twice"),
    "metrics 200,000 deep": ({Meta.METRICS: "[" * 200_000 + "]" * 200_000}, "nested 200000 levels deep"),
    "input size not the graph's": ({Meta.INPUT_SIZE: "[64, 64, 3]"}, "disagrees with the graph's input"),
    "a 2 MB label": ({Meta.LABELS: json.dumps(["male", "f" * 2_000_000])}, "characters, more than any gender-cli value holds"),
    "a 100-character label": ({Meta.LABELS: json.dumps(["male", "f" * 100])}, "a label must be a name of 1..64"),
    "mean not numbers": ({Meta.MEAN: '["a", 1, 2]'}, "metadata mean: 'a' is not a number"),
    "an unknown head": ({Meta.HEADS: '["gender", "mood"]'}, "metadata heads: 'mood' is not one of"),
}


@pytest.mark.parametrize("probe", PROBES)
def test_metadata_that_breaks_the_schema_gets_one_line_and_exit_1(probe, tmp_path):
    meta, says = PROBES[probe]
    model = write_tiny_classifier(tmp_path / "probe.onnx", size=32, **meta)
    photos = write_noise_images(tmp_path / "photos", 3)
    out = tmp_path / "rows.csv"
    result = CliRunner().invoke(cli, ["classify", str(photos), "--model", str(model), "-o", str(out), "-q"])
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and str(model) in lines[0], result.output
    assert says in lines[0]
    assert len(lines[0]) < 400
    assert not out.exists()


def test_the_api_refuses_the_same_metadata(tmp_path):
    from gender_cli import Classifier
    from gender_cli.errors import ModelFileError

    model = write_tiny_classifier(tmp_path / "probe.onnx", size=32, **{Meta.THRESHOLD: "nan"})
    with pytest.raises(ModelFileError, match="metadata threshold"):
        Classifier(model, device="cpu")


def test_a_graph_of_any_input_size_within_the_bound_still_opens(tmp_path):
    from gender_cli.infer.session import load_classifier

    model = write_tiny_classifier(tmp_path / "big.onnx", size=448)
    assert load_classifier(model, "cpu").info.input_size == (448, 448, 3)
