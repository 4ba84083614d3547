"""``gender-cli classify``: one row per file, resumable output, exit codes, no TensorFlow."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gender_cli import contract, workspace
from gender_cli.cli.main import cli
from gender_cli.contract import Meta
from gender_cli.infer.files import list_image_files
from gender_cli.infer.images import load_image
from gender_cli.infer.session import CUDA, open_session

from helpers_train import read_csv  # noqa: E402
from helpers_infer import classify_files, reference_forward, refuse_listing, write_tiny_classifier  # noqa: E402

SIZE = 32
pytestmark = pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")


@pytest.fixture
def good_folder(tmp_path) -> Path:
    from PIL import Image

    folder = tmp_path / "good"
    folder.mkdir()
    rng = np.random.default_rng(7)
    for i in range(21):
        size = (int(rng.integers(8, 90)), int(rng.integers(8, 90)))
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"face_{i:02d}.png")
    return folder


def run(*args, cwd: Path | None = None):
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)


def test_one_row_per_file_with_the_right_error_category(model, corpus, tmp_path):
    root, expected = corpus
    out = tmp_path / "out.csv"
    result = run("classify", root, "--model", model, "-o", out, "--batch", 4)
    assert result.exit_code == 3, result.output
    rows = read_csv(out)
    assert list(rows[0]) == ["path", "label", "p_male", "p_female", "error"]
    got = {Path(r["path"]).relative_to(root).as_posix(): r for r in rows}
    assert len(rows) == len(got) == len(expected)  # no duplicates, nothing lost
    for name, category in expected.items():
        row = got[name]
        if category is None:
            assert row["error"] == "" and row["label"] in contract.LABELS, name
            assert abs(float(row["p_male"]) + float(row["p_female"]) - 1) < 1e-5
        else:
            assert row["error"].startswith(category + ": "), (name, row["error"])
            assert row["label"] == row["p_male"] == row["p_female"] == ""
    assert "not_image 3" in result.stderr and "too_large 2" in result.stderr


def test_probabilities_and_labels_match_the_graph_run_directly(model, good_folder, tmp_path):
    out = tmp_path / "out.csv"
    result = run("classify", good_folder, "--model", model, "-o", out, "--batch", 8)
    assert result.exit_code == 0, result.output
    rows = read_csv(out)
    files = list_image_files([good_folder])
    assert [r["path"] for r in rows] == [str(p) for p in files]
    images = np.stack([load_image(p, size=(SIZE, SIZE)) for p in files])
    expected, _ = reference_forward(images)
    direct = open_session(model, device="cpu").run(images)[contract.PROBABILITIES]
    np.testing.assert_allclose(direct, expected, atol=1e-5)
    written = np.array([[float(r["p_male"]), float(r["p_female"])] for r in rows])
    np.testing.assert_allclose(written, direct, atol=1e-6)
    labels = [contract.LABELS[1] if p >= 0.5 else contract.LABELS[0] for p in direct[:, 1]]
    assert [r["label"] for r in rows] == labels
    assert len(set(labels)) == 2  # the fixture exercises both sides of the threshold


def test_threshold_from_metadata_decides_the_label(good_folder, tmp_path):
    """A graph from before calibration keeps its own threshold, and classify says so."""
    strict = write_tiny_classifier(tmp_path / "strict.onnx", size=SIZE, **{Meta.THRESHOLD: "0.999"})
    out = tmp_path / "out.jsonl"
    result = run("classify", good_folder, "--model", strict, "-o", out)
    assert result.exit_code == 0
    for line in out.read_text().splitlines():
        record = json.loads(line)
        assert record["label"] == ("female" if record["p_female"] >= 0.999 else "male")
    assert "Notice: this graph labels a file female when p_female >= 0.9990" in result.stderr
    calibrated = run("classify", good_folder, "--model", write_tiny_classifier(tmp_path / "half.onnx", size=SIZE),
                     "-o", tmp_path / "half.csv")
    assert "Notice" not in calibrated.stderr


def test_jsonl_and_stdout_outputs(model, corpus, tmp_path):
    root, expected = corpus
    result = run("classify", root, "--model", model, "-o", "-", "--format", "jsonl", "-q")
    assert result.exit_code == 3
    records = [json.loads(line) for line in result.stdout.splitlines()]  # stdout holds data only
    assert len(records) == len(expected)
    assert {r["path"] for r in records} == {str(root / name) for name in expected}
    unicode_row = next(r for r in records if r["path"].endswith("ünïcödé 顔.jpg"))
    assert unicode_row["error"] is None and unicode_row["label"] in contract.LABELS
    csv_result = run("classify", root, "--model", model, "-o", "-", "-q")
    parsed = list(csv.DictReader(csv_result.stdout.splitlines()))
    assert len(parsed) == len(expected)
    assert any(r["path"].endswith("name with spaces, commas; and 'quotes'.png") for r in parsed)


def test_interrupted_run_then_resume_gives_every_file_once(model, corpus, tmp_path):
    root, expected = corpus
    out = tmp_path / "out.csv"
    batches_seen = []

    def interrupt_after_two_batches(count):
        batches_seen.append(count)
        if len(batches_seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        classify_files([root], model, out, batch=5, on_batch=interrupt_after_two_batches)
    partial = read_csv(out)
    assert len(partial) == 10  # two whole batches, nothing half-written
    # a crash in the middle of a write could leave a partial row: simulate one
    with open(out, "a", encoding="utf-8") as handle:
        handle.write(f'"{root}/zzz-partial.jpg",ma')
    summary = classify_files([root], model, out, batch=5, resume=True)
    assert summary.skipped == 10 and summary.classified + summary.failed == len(expected) - 10
    assert summary.truncated_bytes > 0
    rows = read_csv(out)
    assert sorted(r["path"] for r in rows) == sorted(str(root / n) for n in expected)
    assert rows[:10] == partial
    again = classify_files([root], model, out, batch=5, resume=True)
    assert again.skipped == len(expected) and again.classified == again.failed == 0
    assert len(read_csv(out)) == len(expected)
    assert sum(again.errors.values()) == sum(1 for c in expected.values() if c)


def test_killed_subprocess_then_resume(model, good_folder, tmp_path):
    out = tmp_path / "killed.jsonl"
    script = (
        "import sys, os\n"
        "from gender_cli.infer.classify import classify\n"
        "from gender_cli.infer.request import ClassifyRequest\n"
        "def die(n): os._exit(9)\n"  # as abrupt as a kill: no cleanup, no flush
        "request = ClassifyRequest([sys.argv[2]], model=sys.argv[1], output=sys.argv[3], batch=4, device='cpu')\n"
        "classify(request, on_batch=die)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(model), str(good_folder), str(out)], check=False)
    assert len(out.read_text().splitlines()) == 4
    result = run("classify", good_folder, "--model", model, "-o", out, "--resume", "--batch", 4)
    assert result.exit_code == 0, result.output
    paths = [json.loads(line)["path"] for line in out.read_text().splitlines()]
    assert sorted(paths) == sorted(str(p) for p in good_folder.iterdir()) and len(paths) == 21


def test_cli_interrupt_exits_130_with_a_resume_hint(model, good_folder, tmp_path, monkeypatch):
    from gender_cli.infer import classify as classify_module

    def interrupted(*args, **kwargs):
        raise classify_module.Interrupted(opened=True)

    monkeypatch.setattr(classify_module, "classify", interrupted)
    result = run("classify", good_folder, "--model", model, "-o", tmp_path / "x.csv")
    assert result.exit_code == 130 and "--resume" in result.stderr


def test_existing_output_needs_resume_or_force(model, good_folder, tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("old\n")
    result = run("classify", good_folder, "--model", model, "-o", out)
    assert result.exit_code == 2 and "--resume" in result.output and "--force" in result.output
    assert out.read_text() == "old\n"
    assert run("classify", good_folder, "--model", model, "-o", out, "--resume").exit_code == 1  # not ours
    assert run("classify", good_folder, "--model", model, "-o", out, "--force").exit_code == 0
    assert len(read_csv(out)) == 21
    assert run("classify", good_folder, "--model", model, "-o", "-", "--resume").exit_code == 2


def test_default_output_is_predictions_csv_in_the_current_folder(model, good_folder, tmp_path):
    result = run("classify", good_folder, "--model", model.resolve(), "-q", cwd=tmp_path)
    assert result.exit_code == 0 and result.stderr.count("Warning") == 1
    assert len(read_csv(tmp_path / "predictions.csv")) == 21


def test_usage_errors_exit_2(model, good_folder, tmp_path):
    assert run("classify", tmp_path / "absent", "--model", model).exit_code == 2
    assert run("classify", good_folder, "--model", model, "--batch", 0).exit_code == 2
    assert run("classify", good_folder, "--model", model, "--device", "tpu").exit_code == 2
    assert run("classify", "--model", model).exit_code == 2


def test_model_problems_exit_1_with_a_reason(good_folder, tmp_path):
    out = tmp_path / "o.csv"
    result = run("classify", good_folder, "--model", tmp_path / "absent.onnx", "-o", out)
    assert result.exit_code == 1 and "model file not found" in result.output
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all")
    result = run("classify", good_folder, "--model", junk, "-o", out)
    assert result.exit_code == 1 and "not a model onnxruntime can load" in result.output
    bare = write_tiny_classifier(tmp_path / "bare.onnx", size=SIZE, drop_keys=(Meta.LABELS, Meta.STANDIN))
    result = run("classify", good_folder, "--model", bare, "-o", out)
    assert result.exit_code == 1 and "labels, standin" in result.output and "gender-cli export" in result.output
    backbone = write_tiny_classifier(tmp_path / "backbone.onnx", size=SIZE, kind="backbone")
    result = run("classify", good_folder, "--model", backbone, "-o", out)
    assert result.exit_code == 1 and "not a classifier" in result.output
    assert not out.exists()


def test_a_weights_file_as_model_says_how_to_make_a_classifier(good_folder, tmp_path):
    from helpers_mat import tiny_variables, write

    weights = write(tmp_path, tiny_variables("release"), "5", name="vgg_face.mat")
    result = run("classify", good_folder, "--model", weights, "-o", tmp_path / "o.csv")
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert f"{weights} is MATLAB weights, not an exported classifier: 'gender-cli convert {weights}'" in result.output
    assert "INVALID_PROTOBUF" not in result.output


def test_without_model_uses_the_workspace_classifier(model, good_folder, tmp_path):
    out = tmp_path / "o.csv"
    result = run("classify", good_folder, "-o", out)
    assert result.exit_code == 1 and "gender-cli export" in result.output
    workspace.models_dir().mkdir(parents=True)
    shutil.copy(model, workspace.classifier_path("fp32"))
    assert run("classify", good_folder, "-o", out).exit_code == 0


def test_standin_warning_only_for_standin_models(good_folder, tmp_path):
    real = write_tiny_classifier(tmp_path / "real.onnx", size=SIZE, standin=False)
    result = run("classify", good_folder, "--model", real, "-o", tmp_path / "a.csv")
    assert result.exit_code == 0 and "STAND-IN" not in result.stderr
    standin = write_tiny_classifier(tmp_path / "standin.onnx", size=SIZE, standin=True)
    result = run("classify", good_folder, "--model", standin, "-o", tmp_path / "b.csv", "-q")
    assert [line for line in result.stderr.splitlines() if "STAND-IN" in line] == [
        f"Warning: {contract.STANDIN_WARNING}"
    ]


def test_cpu_fallback_and_cuda_refusal(model, good_folder, tmp_path, monkeypatch):
    import onnxruntime

    from gender_cli.infer import session as session_module

    if CUDA in open_session(model, device="auto").providers:
        pytest.skip("CUDA loads on this machine; the fallback cannot be observed")
    # No NVIDIA GPU at all: CPU, and not a word about CUDA.
    monkeypatch.setattr(session_module, "nvidia_gpu_present", lambda: False)
    auto = open_session(model, device="auto")
    assert auto.providers == ["CPUExecutionProvider"] and auto.notice is None
    result = run("classify", good_folder, "--model", model, "-o", tmp_path / "a.csv")
    assert result.exit_code == 0 and "CUDA" not in result.stderr
    # A GPU is there but CUDA cannot load: one notice that says why.
    monkeypatch.setattr(session_module, "nvidia_gpu_present", lambda: True)
    if CUDA in onnxruntime.get_available_providers():
        auto = open_session(model, device="auto")
        assert auto.providers == ["CPUExecutionProvider"]
        assert auto.notice and "CUDA unavailable" in auto.notice and "CPU" in auto.notice
        result = run("classify", good_folder, "--model", model, "-o", tmp_path / "c.csv")
        assert result.exit_code == 0 and result.stderr.count("Notice: CUDA unavailable") == 1
    result = run("classify", good_folder, "--model", model, "-o", tmp_path / "b.csv", "--device", "cuda")
    assert result.exit_code == 1 and "--device cuda" in result.output and "CUDA" in result.output
    assert not (tmp_path / "b.csv").exists()


def test_classify_never_imports_tensorflow_or_training_packages(model, corpus, tmp_path):
    root, _ = corpus
    script = (
        "import sys\n"
        "for name in ('tensorflow', 'keras', 'scipy', 'h5py', 'onnx', 'tf2onnx'):\n"
        "    sys.modules[name] = None  # importing any of them now raises ImportError\n"
        "from gender_cli.cli.main import cli\n"
        "try:\n"
        "    cli(['classify', sys.argv[1], '--model', sys.argv[2], '-o', sys.argv[3], '-q'])\n"
        "except SystemExit as exit:\n"
        "    print('exit', exit.code)\n"
        "import gender_cli.infer.batches, gender_cli.infer.classify, gender_cli.infer.files\n"
        "import gender_cli.infer.images, gender_cli.infer.writer_text, gender_cli.infer.session\n"
        "import gender_cli.cli.cmd_bench, gender_cli.bench.bench\n"
        "loaded = [m for m in ('tensorflow', 'keras', 'scipy', 'h5py', 'onnx') if sys.modules.get(m)]\n"
        "print('heavy', loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(root), str(model), str(tmp_path / "o.csv")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "exit 3" in result.stdout, result.stderr
    assert "heavy []" in result.stdout, result.stderr


def test_real_face_sample_every_file_accounted_for(utkface_sample, model, tmp_path):
    out = tmp_path / "faces.csv"
    result = run("classify", utkface_sample, "--model", model, "-o", out, "--batch", 64)
    rows = read_csv(out)
    files = sorted(p for p in utkface_sample.rglob("*") if p.is_file())
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in files)
    assert result.exit_code == (3 if any(r["error"] for r in rows) else 0)
    assert sum(1 for r in rows if not r["error"]) >= 0.99 * len(files)


def test_real_export_of_the_tiny_standin_agrees_with_the_numpy_reference(tiny_network, good_folder, tmp_path):
    """H3's exporter on the tiny stand-in: classify's rows equal the NumPy oracle's."""
    from gender_cli.convert.reference import descriptor as reference_descriptor
    from gender_cli.export.export import export

    from helpers_infer import numpy_head, write_random_head

    dim = reference_descriptor(tiny_network, np.zeros((1, 224, 224, 3), np.uint8), "relu7").shape[1]
    kernels, biases = write_random_head(tmp_path / "run", dim)
    model = export(tiny_network, tmp_path / "classifier-fp32.onnx", head=tmp_path / "run").path
    out = tmp_path / "out.csv"
    result = run("classify", good_folder, "--model", model, "-o", out, "--batch", 8)
    assert result.exit_code == 0, result.output
    rows = read_csv(out)
    files = list_image_files([good_folder])
    images = np.stack([load_image(p) for p in files])
    expected = numpy_head(kernels, biases, reference_descriptor(tiny_network, images, "relu7"))
    written = np.array([[float(r["p_male"]), float(r["p_female"])] for r in rows])
    np.testing.assert_allclose(written, expected, atol=1e-4)
    confident = np.abs(expected[:, 1] - 0.5) > 1e-3
    labels = np.where(expected[:, 1] >= 0.5, "female", "male")
    assert confident.sum() >= len(rows) // 2
    assert all(r["label"] == label for r, label, sure in zip(rows, labels, confident) if sure)


def test_a_folder_that_cannot_be_listed_gets_an_unreadable_row(model, good_folder, tmp_path, monkeypatch):
    locked = good_folder / "locked"
    locked.mkdir()
    refuse_listing(monkeypatch, "locked")
    out = tmp_path / "out.csv"
    result = run("classify", good_folder, "--model", model, "-o", out)
    assert result.exit_code == 3
    rows = {r["path"]: r for r in read_csv(out)}
    assert len(rows) == 22
    assert rows[str(locked)]["error"] == "unreadable: cannot list folder (Permission denied)"


def test_output_inside_the_classified_folder_is_not_classified(model, good_folder):
    out = good_folder / "predictions.csv"
    assert run("classify", good_folder, "--model", model, "-o", out).exit_code == 0
    assert len(read_csv(out)) == 21
    assert run("classify", good_folder, "--model", model, "-o", out, "--resume").exit_code == 0
    assert len(read_csv(out)) == 21


def test_resume_cuts_a_partial_jsonl_line_and_refuses_a_damaged_file(tmp_path):
    from gender_cli.errors import GenderCliError
    from gender_cli.infer.rows import Columns, Row
    from gender_cli.infer.writer import open_writer as open_output

    out = tmp_path / "p.jsonl"
    writer, existing = open_output(str(out), "jsonl", Columns(contract.LABELS))
    with writer:
        writer.write([Row("a\nb.jpg", "male", [0.9, 0.1], None), Row("c.jpg", None, None, "empty: file is empty")])
    complete = out.read_bytes()
    out.write_bytes(complete + '{"path": "d.jpg", "lab'.encode())
    writer, existing = open_output(str(out), "jsonl", Columns(contract.LABELS), resume=True)
    writer.close()
    assert existing.categories == {"a\nb.jpg": None, "c.jpg": "empty"} and existing.cut_bytes > 0
    assert out.read_bytes() == complete
    out.write_bytes(b"garbage\n" + complete)
    with pytest.raises(GenderCliError, match="not a JSONL predictions file"):
        open_output(str(out), "jsonl", Columns(contract.LABELS), resume=True)
    out.write_bytes(complete + b"not json\n" + complete)
    with pytest.raises(GenderCliError, match="line 3 is not a valid JSONL"):
        open_output(str(out), "jsonl", Columns(contract.LABELS), resume=True)


def test_csv_resume_keeps_paths_with_newlines_and_cuts_inside_a_quoted_field(tmp_path):
    from gender_cli.infer.rows import Columns, Row
    from gender_cli.infer.writer import open_writer as open_output

    out = tmp_path / "p.csv"
    writer, _ = open_output(str(out), "csv", Columns(contract.LABELS))
    with writer:
        writer.write([Row("new\nline, ü.jpg", "female", [0.2, 0.8], None)])
    complete = out.read_bytes()
    out.write_bytes(complete + b'"half\nwritten')  # cut inside a quoted path with a newline
    writer, existing = open_output(str(out), "csv", Columns(contract.LABELS), resume=True)
    writer.close()
    assert list(existing.categories) == ["new\nline, ü.jpg"]
    assert out.read_bytes() == complete


def test_ctrl_c_on_the_real_command_then_resume(model, tmp_path):
    import signal
    import time

    from PIL import Image

    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(11)
    for i in range(300):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    out = tmp_path / "p.csv"
    command = [sys.executable, "-m", "gender_cli", "classify", str(folder), "--model", str(model), "-o", str(out)]
    process = subprocess.Popen([*command, "--batch", "1", "--workers", "1", "-q"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 5):
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130
    assert "--resume" in process.stderr.read()
    done = read_csv(out)
    assert 4 <= len(done) < 300
    assert subprocess.run([*command, "--resume", "-q"], capture_output=True).returncode == 0
    rows = read_csv(out)
    assert sorted(r["path"] for r in rows) == sorted(str(p) for p in folder.iterdir())
    assert rows[: len(done)] == done


def test_empty_folder_warns_and_writes_a_header_only(model, tmp_path):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "p.csv"
    result = run("classify", tmp_path / "empty", "--model", model, "-o", out, "-q")
    assert result.exit_code == 0 and "no files found" in result.stderr
    assert out.read_text() == "path,label,p_male,p_female,error\n"


def _images_fed(monkeypatch) -> list[int]:
    """Record the batch size of every onnxruntime run from now on."""
    import onnxruntime as ort

    fed: list[int] = []
    original = ort.InferenceSession.run

    def spy(self, output_names, input_feed, run_options=None):
        fed.append(input_feed[contract.INPUT_NAME].shape[0])
        return original(self, output_names, input_feed, run_options)

    monkeypatch.setattr(ort.InferenceSession, "run", spy)
    return fed


def _png_folder(folder: Path, count: int) -> Path:
    from PIL import Image

    folder.mkdir()
    for i in range(count):
        Image.new("RGB", (30, 30), (40 * i % 256, 90, 200)).save(folder / f"{i}.png")
    return folder


def test_a_small_job_runs_only_its_own_images(model, tmp_path, monkeypatch):
    """3 files with --batch 64 put 3 images through the graph, not 64 (CPU)."""
    folder = _png_folder(tmp_path / "three", 3)
    fed = _images_fed(monkeypatch)
    summary = classify_files([folder], model, tmp_path / "p.csv", batch=64)
    assert summary.classified == 3 and fed == [3]


def test_a_short_last_batch_is_not_padded_on_cpu_and_rows_do_not_depend_on_the_batch(model, tmp_path, monkeypatch):
    folder = _png_folder(tmp_path / "five", 5)
    fed = _images_fed(monkeypatch)
    classify_files([folder], model, tmp_path / "a.csv", batch=2)
    assert fed == [2, 2, 1]
    classify_files([folder], model, tmp_path / "b.csv", batch=1)
    a, b = read_csv(tmp_path / "a.csv"), read_csv(tmp_path / "b.csv")
    assert [r["path"] for r in a] == [r["path"] for r in b] and len(a) == 5
    for x, y in zip(a, b):
        assert x["label"] == y["label"] and abs(float(x["p_female"]) - float(y["p_female"])) < 1e-4  # GEMM blocking differs per batch size


def test_text_outputs_are_fsynced_once_a_second_and_on_close_not_per_block(tmp_path, monkeypatch):
    """Every block is written whole at once (a kill keeps it); the disk is waited for at
    most once per FSYNC_SECONDS while the run goes on, and when the output closes."""
    from gender_cli.infer import writer_text
    from gender_cli.infer.rows import Columns, Row
    from gender_cli.infer.writer import open_writer

    synced: list[int] = []
    monkeypatch.setattr(writer_text.os, "fsync", lambda fd: synced.append(fd))
    clock = iter(range(1000))
    monkeypatch.setattr(writer_text.time, "monotonic", lambda: next(clock) * 0.25)  # each call a quarter second on
    out = tmp_path / "rows.csv"
    writer, _ = open_writer(str(out), "csv", Columns(contract.LABELS))
    before = len(synced)  # the header
    for i in range(8):
        writer.write([Row(f"f{i}.png", "male", [0.9, 0.1], None)])
        assert len(read_csv(out)) == i + 1  # in the file before any fsync
    during = len(synced) - before
    writer.close()
    assert 1 <= during <= 4 and len(synced) == before + during + 1  # every ~second, then on close
