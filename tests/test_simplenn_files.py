"""SimpleNN files no one here wrote: custom layer types, no meta.normalization (v5 and v7.3)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from gender_cli.cli.main import cli
from gender_cli.convert.inspect import inspect
from gender_cli.convert.mat_writer import write_mat
from gender_cli.convert.matfile import read_mat
from gender_cli.errors import ModelFileError, UnsupportedLayerError

VERSIONS = ("5", "7.3")


def conv(name, shape, seed):
    rng = np.random.default_rng(seed)
    return {"name": name, "type": "conv", "weights": [rng.standard_normal(shape).astype(np.float32),
                                                      np.zeros((shape[3], 1), np.float32)],
            "pad": 1.0, "stride": 1.0}


def denoiser_variables() -> dict:
    """Shaped like a denoising network from another project: grey input, SubP/concat, no meta."""
    return {"net": {"layers": [
        conv("conv1", (3, 3, 1, 8), 1),
        {"name": "relu1", "type": "relu"},
        {"name": "subp2", "type": "SubP", "scale": 2.0},
        {"name": "concat3", "type": "concat", "inputs": ["x", "y"]},
        conv("conv4", (3, 3, 8, 1), 2),
    ]}}


def supported_without_mean() -> dict:
    return {"layers": [
        conv("conv1", (3, 3, 3, 4), 3),
        {"name": "relu1", "type": "relu"},
        {"name": "pool1", "type": "pool", "pool": 2.0, "stride": 2.0},
    ]}


def invoke(args):
    return CliRunner().invoke(cli, args)


@pytest.mark.parametrize("version", VERSIONS)
def test_inspect_shows_any_simplenn_file(tmp_path, version):
    path = write_mat(tmp_path / "denoiser.mat", denoiser_variables(), version)
    report = inspect(path)
    assert report["mean"] is None and report["convertible"] is False
    assert [(row["name"], row["type"]) for row in report["layers"]] == [
        ("conv1", "conv"), ("relu1", "relu"), ("subp2", "SubP"), ("concat3", "concat"), ("conv4", "conv")]
    assert report["layers"][0]["kernel"] == [3, 3, 1, 8] and report["layers"][4]["kernel"] == [3, 3, 8, 1]
    assert report["input_size"] == [224, 224, 1]  # channels from the first conv
    result = invoke(["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "mean (RGB):  none" in result.output
    assert "layer 3 'subp2' (SubP)" in result.output and "layer 4 'concat3' (concat)" in result.output


@pytest.mark.parametrize("version", VERSIONS)
def test_convert_names_the_first_unsupported_layer_first(tmp_path, version):
    path = write_mat(tmp_path / "denoiser.mat", denoiser_variables(), version)
    with pytest.raises(UnsupportedLayerError, match=r"layer 3 'subp2' \(SubP\): layer type 'SubP' is not supported"):
        read_mat(path)
    result = invoke(["convert", "-q", str(path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "layer 3 'subp2' (SubP)" in result.output and "--mean" not in result.output


@pytest.mark.parametrize("version", VERSIONS)
def test_a_supported_network_without_a_mean_needs_the_option(tmp_path, version):
    path = write_mat(tmp_path / "plain.mat", supported_without_mean(), version)
    with pytest.raises(ModelFileError, match=r"no normalization.averageImage.*--mean R,G,B"):
        read_mat(path)
    result = invoke(["convert", "-q", str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "--mean R,G,B" in result.output
    result = invoke(["convert", "-q", str(path), "-o", str(tmp_path / "out"), "--mean", "1,2.5,3"])
    assert result.exit_code == 0, result.output
    from gender_cli.convert.source import load_network

    network = load_network(tmp_path / "out")
    np.testing.assert_array_equal(network.mean, np.float32([1, 2.5, 3]))
    assert invoke(["convert", "-q", str(path), "--mean", "1,2"]).exit_code == 2
