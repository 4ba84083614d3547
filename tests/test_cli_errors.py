"""A user's mistake gives one line ``Error: ...`` and exit 1 (2 for usage), never a traceback.

Each test makes one mistake a user would make (a file where a folder goes, a folder
without a head, a data set with one class, ...) and checks the exit status, the exact
message, that no traceback reached the output and that nothing half-made was left.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from click.testing import CliRunner

from gender_cli import workspace
from gender_cli.cli.main import cli

from helpers_infer import write_tiny_classifier  # noqa: E402
from helpers_train import write_colour_dataset  # noqa: E402


def run(args: list[str]):
    return CliRunner().invoke(cli, args)


def assert_one_line_error(result, code: int, message: str) -> None:
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert f"Error: {message}" in result.output
    assert result.output.count("Error:") == 1


@pytest.fixture
def a_file(tmp_path) -> Path:
    path = tmp_path / "afile"
    path.write_text("not a folder\n")
    return path


# -- file-system refusals on a path the user gave: one line from the group ------------------
def test_export_output_below_a_file_is_a_one_line_error(tmp_path, a_file, tiny_network):
    tiny_network.save(workspace.network_dir())
    result = run(["export", "--backbone-only", "-q", "-o", str(a_file / "x.onnx")])
    assert_one_line_error(result, 1, f"{a_file} is a file; a folder is needed there")


def test_demo_dir_below_a_file_is_a_one_line_error(a_file):
    result = run(["demo", "-o", str(a_file / "sub")])
    assert_one_line_error(result, 1, f"{a_file} is a file; a folder is needed there")


def test_permission_denied_names_the_path(tmp_path, monkeypatch):
    import gender_cli.convert.standin as standin

    target = tmp_path / "vgg_face.mat"

    def refuse(path, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(standin, "make_standin", refuse)
    result = run(["make-standin", "--size", "tiny", "-q", "-o", str(target)])
    assert_one_line_error(result, 1, f"{target}: Permission denied")


def test_os_error_without_a_path_is_not_disguised(tmp_path, monkeypatch):
    """Only errors naming a path are the user's to fix; others stay visible as they are."""
    import gender_cli.convert.standin as standin

    def broken(path, **kwargs):
        raise OSError("something inside went wrong")

    monkeypatch.setattr(standin, "make_standin", broken)
    result = run(["make-standin", "--size", "tiny", "-q", "-o", str(tmp_path / "x.mat")])
    assert isinstance(result.exception, OSError)


# -- outputs checked before the work, not after it --------------------------------------------
def test_bench_json_below_a_file_fails_before_benchmarking(a_file):
    # the workspace has no classifier: the --output check must come first
    result = run(["bench", "-o", str(a_file / "sub" / "bench.json")])
    assert_one_line_error(result, 1, f"--output: {a_file} is a file; a folder is needed there")


def test_evaluate_output_below_a_file_fails_before_inference(tmp_path, a_file):
    result = run(["evaluate", str(tmp_path), "-o", str(a_file / "sub")])
    assert_one_line_error(result, 1, f"--output: {a_file} is a file; a folder is needed there")


def test_train_output_below_a_file_fails_before_reading_data(tmp_path, a_file):
    result = run(["train", str(tmp_path / "no-data"), "-o", str(a_file / "run")])
    assert_one_line_error(result, 1, f"--output: {a_file} is a file; a folder is needed there")


def test_an_output_that_cannot_be_written_is_exit_1_for_every_verb(tmp_path, a_file):
    model = write_tiny_classifier(tmp_path / "classifier-fp32.onnx")
    (tmp_path / "photos").mkdir()
    for args in (["classify", str(tmp_path / "photos"), "--model", str(model), "-o", str(a_file / "rows.csv")],
                 ["bench", "--model", str(model), "-o", str(a_file / "bench.json")]):
        result = run(args)
        assert result.exit_code == 1 and "Traceback" not in result.output, (args[0], result.output)
        assert str(a_file) in result.output and result.output.count("Error:") == 1


def test_bench_json_into_a_new_folder_still_works(tmp_path):
    model = write_tiny_classifier(tmp_path / "classifier-fp32.onnx")
    out = tmp_path / "new" / "sub" / "bench.json"
    result = run(["bench", "--model", str(model), "--device", "cpu", "--batch", "2", "--warmup", "0",
                  "--iters", "1", "--no-variants", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert out.is_file()


# -- classify ------------------------------------------------------------------------------
def test_classify_output_that_is_a_folder_says_so_not_already_exists(tmp_path):
    images, folder = tmp_path / "images", tmp_path / "out"
    images.mkdir()
    folder.mkdir()
    result = run(["classify", str(images), "-o", str(folder)])
    assert_one_line_error(result, 2, f"--output {folder} is a folder; give a file name")


# -- export --head -------------------------------------------------------------------------
def test_export_head_folder_without_head_json(tmp_path):
    folder = tmp_path / "not-a-run"
    folder.mkdir()
    result = run(["export", "--head", str(folder)])
    assert_one_line_error(
        result, 1, f"no trained head in {folder} (no head.json); give a 'gender-cli train' run folder"
    )


# -- train: data with one class ------------------------------------------------------------
def test_train_one_class_folder_names_the_missing_class(tmp_path):
    data = tmp_path / "data"
    write_colour_dataset(data, per_class=3)
    for path in (data / "female").iterdir():
        path.unlink()
    (data / "female").rmdir()
    result = run(["train", str(data), "-q"])
    assert_one_line_error(result, 1, f"{data} has a male/ class folder but no female one (female/, f/, woman/, women/)")
    assert not workspace.runs_dir().exists()


def test_train_one_class_fails_before_the_network_and_leaves_no_run(tmp_path):
    """With --layout folders a one-class set reaches the split check; the workspace has no
    converted network, so the message proves the check runs before any expensive step."""
    data = tmp_path / "data"
    write_colour_dataset(data, per_class=10)
    for path in (data / "female").iterdir():
        path.unlink()
    result = run(["train", str(data), "--layout", "folders", "-q"])
    assert_one_line_error(result, 1, "the train split needs images of both classes (male, female), it has male")
    assert not workspace.runs_dir().exists()


def test_train_with_every_image_unreadable_leaves_no_run_folder(tmp_path, tiny_network):
    tiny_network.save(workspace.network_dir())
    data = tmp_path / "data"
    for label in ("male", "female"):
        (data / label).mkdir(parents=True)
        for i in range(5):
            (data / label / f"{i}.jpg").write_bytes(b"not a jpeg")
    result = run(["train", str(data), "-q", "--device", "cpu"])
    assert_one_line_error(result, 1, "the train split needs images of both classes (male, female), it has no images")
    assert not workspace.runs_dir().exists()


# -- demo --dir ----------------------------------------------------------------------------
def test_demo_never_empties_a_user_folder_that_merely_has_a_workspace(tmp_path):
    folder = tmp_path / "project"
    (folder / "workspace").mkdir(parents=True)
    (folder / "thesis.tex").write_text("precious\n")
    result = run(["demo", "-o", str(folder)])
    assert_one_line_error(result, 2, f"{folder} exists and is not an earlier demo (it holds thesis.tex)")
    assert (folder / "thesis.tex").read_text() == "precious\n"


def test_demo_writes_under_the_workspace_never_into_the_current_folder(tmp_path, monkeypatch, workspace):
    """Its default folder is $GENDER_CLI_HOME/demo: shown here by the refusal of a foreign
    file there, before anything runs; the current folder (a clone, say) stays empty."""
    here = tmp_path / "clone"
    here.mkdir()
    monkeypatch.chdir(here)
    (workspace / "demo").mkdir(parents=True)
    (workspace / "demo" / "notes.txt").write_text("mine\n")
    result = run(["demo"])
    assert_one_line_error(result, 2, f"{workspace / 'demo'} exists and is not an earlier demo (it holds notes.txt)")
    assert list(here.iterdir()) == []


# -- bench ---------------------------------------------------------------------------------
def test_bench_broken_sibling_variant_is_skipped_not_fatal(tmp_path):
    model = write_tiny_classifier(tmp_path / "classifier-fp32.onnx")
    (tmp_path / "classifier-int8.onnx").write_bytes(b"half-copied junk")
    write_tiny_classifier(tmp_path / "classifier-fp16.onnx", kind="backbone")
    result = run(["bench", "--model", str(model), "--device", "cpu", "--batch", "2", "--warmup", "0",
                  "--iters", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    broken = tmp_path / "classifier-int8.onnx"
    assert f"int8                     skipped: {broken} is not a model onnxruntime can load" in result.output
    assert "fp16                     skipped: a backbone graph, not a classifier" in result.output


def test_bench_end_to_end_reports_unreadable_files(tmp_path):
    model = write_tiny_classifier(tmp_path / "classifier-fp32.onnx")
    images = tmp_path / "images"
    images.mkdir()
    (images / "empty.jpg").write_bytes(b"")
    (images / "text.jpg").write_bytes(b"not an image\n")
    result = run(["bench", "--model", str(model), "--device", "cpu", "--batch", "2", "--warmup", "0",
                  "--iters", "1", "--no-variants", "--images", str(images), "-q"])
    assert result.exit_code == 0, result.output
    assert "; 2 of these files unreadable (still counted in img/s)" in result.output


def test_make_standin_output_below_a_file(a_file):
    result = run(["make-standin", "--size", "tiny", "-o", str(a_file / "vgg_face.mat")])
    assert_one_line_error(result, 2, f"Invalid value for '--output': folder {a_file} is a file, not a folder")


def test_classify_output_below_a_file(tmp_path, a_file):
    model = write_tiny_classifier(tmp_path / "classifier-fp32.onnx")
    images = tmp_path / "images"
    images.mkdir()
    result = run(["classify", str(images), "--model", str(model), "--device", "cpu", "-q",
                  "-o", str(a_file / "predictions.csv")])
    assert_one_line_error(result, 1, f"output folder {a_file} is a file, not a folder")


def test_export_in_an_empty_workspace_names_convert_and_nothing_else():
    result = run(["export"])
    assert_one_line_error(
        result, 1, f"no converted model in {workspace.converted_dir()}; run 'gender-cli convert vgg_face.mat' first"
    )
    assert "Note:" not in result.output


def test_train_on_empty_class_folders(tmp_path):
    data = tmp_path / "data"
    (data / "male").mkdir(parents=True)
    (data / "female").mkdir()
    result = run(["train", str(data), "-q"])
    assert_one_line_error(result, 1, f"no usable images in {data} (layout folders); it lists no images")
    assert result.output.rstrip().endswith("it lists no images")
