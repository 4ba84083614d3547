"""make-standin and inspect: the CLI verbs, their files, their reports and their errors."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from click.testing import CliRunner

from gender_cli.cli.main import cli
from gender_cli.convert.inspect import inspect
from gender_cli.convert.matfile import read_mat
from gender_cli.convert.standin import standin_param_count, make_standin
from gender_cli.convert.vgg_face import vgg_face_network

from helpers_mat import layer_named, tiny_variables, write  # noqa: E402


def invoke(args):
    return CliRunner().invoke(cli, args)


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0]


# -- make-standin -----------------------------------------------------------------------


def test_param_counts():
    assert standin_param_count("full") == 145_002_878
    assert standin_param_count("tiny") == vgg_face_network("tiny", 0).num_params


def test_make_standin_writes_default_name_and_refuses_to_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(["make-standin", "--size", "tiny", "--seed", "5", "--quiet"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "vgg_face.mat"
    assert path.is_file()
    assert "STAND-IN" in result.output
    assert f"{standin_param_count('tiny'):,}" in result.output
    assert "vgg_face.mat" in result.output and " MB" in result.output
    network = read_mat(path)
    assert (network.layout, network.mat_version, network.standin) == ("release", "5", True)
    assert network.layers[0].weights.tobytes() == vgg_face_network("tiny", 5).layers[0].weights.tobytes()

    before = path.read_bytes()
    result = invoke(["make-standin", "--size", "tiny", "--seed", "6"])
    assert_one_line_error(result, "already exists", "--force")
    assert path.read_bytes() == before

    result = invoke(["make-standin", "--size", "tiny", "--seed", "6", "--force", "-q"])
    assert result.exit_code == 0, result.output
    assert path.read_bytes() != before
    assert [p.name for p in tmp_path.iterdir()] == ["vgg_face.mat"]  # no temp files left


def test_make_standin_options_reach_the_file(tmp_path):
    out = tmp_path / "zoo.mat"
    result = invoke(["make-standin", "-o", str(out), "--size", "tiny", "--layout", "zoo", "--mat-version", "7.3", "-q"])
    assert result.exit_code == 0, result.output
    network = read_mat(out)
    assert (network.layout, network.mat_version) == ("zoo", "7.3")


def test_make_standin_bad_choice_is_a_usage_error():
    result = invoke(["make-standin", "--layout", "dagnn"])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_help_explains_every_option():
    from gender_cli.cli.cmd_inspect import inspect_cmd
    from gender_cli.cli.cmd_make_standin import make_standin

    for command in (make_standin, inspect_cmd):
        for param in command.params:
            if param.param_type_name == "option":
                assert param.help and len(param.help) > 10, (command.name, param.name)
    text = invoke(["make-standin", "--help"]).output
    for option in ("--output", "--size", "--layout", "--mat-version", "--seed", "--force", "--quiet"):
        assert option in text
    assert "--json" in invoke(["inspect", "--help"]).output


# -- inspect ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_zoo_v73(tmp_path_factory):
    return make_standin(tmp_path_factory.mktemp("mat") / "zoo73.mat", "tiny", "zoo", "7.3", seed=2)


def test_inspect_report(tiny_zoo_v73):
    report = inspect(tiny_zoo_v73)
    network = vgg_face_network("tiny", 2)
    assert report["mat_version"] == "7.3" and report["layout"] == "zoo"
    assert report["standin"] is True and "seed 2" in report["standin_note"]
    assert report["sha256"] == hashlib.sha256(tiny_zoo_v73.read_bytes()).hexdigest()
    assert report["input_size"] == [224, 224, 3]
    assert report["mean"] == [129.1863, 104.7624, 93.594]
    assert report["num_classes"] == 2622
    assert report["num_params"] == network.num_params
    assert report["convertible"] and report["problems"] == []
    rows = report["layers"]
    assert [row["index"] for row in rows] == list(range(1, 40))
    assert [(row["name"], row["type"]) for row in rows] == [(l.name, l.type) for l in network.layers]
    fc6 = rows[31]
    assert fc6["kernel"] == [7, 7, 8, 16] and fc6["params"] == 7 * 7 * 8 * 16 + 16
    assert fc6["stride"] == [1, 1] and fc6["pad"] == [0, 0, 0, 0]
    pool5 = rows[30]
    assert pool5["pool"] == [2, 2] and pool5["method"] == "max" and pool5["stride"] == [2, 2]
    assert rows[0]["pad"] == [1, 1, 1, 1]


def test_inspect_cli_table_and_json(tiny_zoo_v73):
    result = invoke(["inspect", str(tiny_zoo_v73)])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "format:      mat (MatConvNet SimpleNN, MAT v7.3, zoo layout)" in text
    assert "STAND-IN" in text
    assert f"{vgg_face_network('tiny', 2).num_params:,}" in text
    assert "129.1863 104.7624 93.5940" in text
    assert "1x1x16x2622" in text and "2x2 max" in text
    assert hashlib.sha256(tiny_zoo_v73.read_bytes()).hexdigest() in text
    for name in ("conv1_1", "pool5", "fc6", "dropout7", "prob"):
        assert name in text

    result = invoke(["inspect", "--json", str(tiny_zoo_v73)])
    assert result.exit_code == 0
    assert json.loads(result.output) == json.loads(json.dumps(inspect(tiny_zoo_v73)))


@pytest.mark.parametrize("version", ["5", "7.3"])
def test_inspect_lists_unsupported_layers(tmp_path, version):
    variables = tiny_variables("release")
    layer = layer_named(variables, "relu3_2")
    layer.update(type="SubP", name="subp14")
    layer["weights"] = [np.zeros((2, 2, 8, 3), np.float32), np.zeros((3, 1), np.float32)]
    path = write(tmp_path, variables, version)
    report = inspect(path)
    row = report["layers"][13]
    assert (row["index"], row["name"], row["type"]) == (14, "subp14", "SubP")
    assert "not supported" in row["problem"] and row["params"] == 2 * 2 * 8 * 3 + 3
    assert report["convertible"] is False
    assert report["layers"][31]["kernel"] == [7, 7, 8, 16]  # layers after it still listed

    result = invoke(["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "subp14" in result.output and "SubP" in result.output
    assert "cannot handle" in result.output and "supported layer types: conv, relu" in result.output


def test_inspect_notes_reduced_average_image(tmp_path):
    variables = tiny_variables("release")
    variables["net"]["normalization"]["averageImage"] = np.full((4, 4, 3), 7.0, np.float32)
    result = invoke(["inspect", str(write(tmp_path, variables))])
    assert result.exit_code == 0
    assert "7.0000 7.0000 7.0000" in result.output
    assert "reduced to its per-channel mean" in result.output


# -- bad files through the CLI ----------------------------------------------------------


def test_inspect_not_a_weights_file(tmp_path):
    path = tmp_path / "photo.mat"
    path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg either")
    assert_one_line_error(
        invoke(["inspect", str(path)]), "photo.mat", "not a weights file gender-cli reads",
        "MatConvNet .mat (MATLAB v5 or v7.3), a Caffe .caffemodel, a Keras HDF5 .h5 or a dlib .dat network",
    )


def test_inspect_missing_file(tmp_path):
    assert_one_line_error(invoke(["inspect", str(tmp_path / "nope.mat")]), "no such file")


@pytest.mark.parametrize("version", ["5", "7.3"])
def test_inspect_truncated_file(tmp_path, version):
    path = write(tmp_path, tiny_variables("zoo"), version)
    cut = tmp_path / "cut.mat"
    cut.write_bytes(path.read_bytes()[:3000])
    assert_one_line_error(invoke(["inspect", str(cut)]), "cut.mat", "truncated")


def test_inspect_no_layers(tmp_path):
    from gender_cli.convert.mat_writer import write_mat

    path = write_mat(tmp_path / "meta_only.mat", {"meta": {"normalization": {"imageSize": 1.0}}}, "5")
    assert_one_line_error(invoke(["inspect", str(path)]), "no MatConvNet network")


def test_inspect_wrong_weight_shapes(tmp_path):
    variables = tiny_variables("zoo")
    layer_named(variables, "conv3_1")["weights"][1] = np.zeros((9, 1), np.float32)
    assert_one_line_error(
        invoke(["inspect", str(write(tmp_path, variables))]),
        "layer 11 'conv3_1' (conv)", "bias has shape 9x1", "8 output channels",
    )


def test_inspect_cin_mismatch(tmp_path):
    variables = tiny_variables("zoo")
    layer_named(variables, "conv2_1")["weights"][0] = np.zeros((3, 3, 2, 4), np.float32)
    assert_one_line_error(
        invoke(["inspect", str(write(tmp_path, variables))]),
        "layer 6 'conv2_1' (conv)", "take 2 input channels", "give 4",
    )
