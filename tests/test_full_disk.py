"""A full disk is an error, not a traceback: every writer names its file in one line.

The disk is a tiny tmpfs where this process may mount one (root on Linux); elsewhere
``os.write`` refuses with ENOSPC once the folder has taken its room (every writer of
ours writes through ``os.write``; Keras, NumPy and Matplotlib files are then not
covered, the tmpfs case covers them).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from gender_cli.cli.main import cli

from helpers_infer import write_tiny_classifier  # noqa: E402
from helpers_train import read_csv, write_colour_dataset  # noqa: E402

DISK_BYTES = 256 * 1024
PAGE = 4096


class FullDisk:
    def __init__(self, folder: Path, monkeypatch):
        self.folder = folder
        self.monkeypatch = monkeypatch
        self.mounted = False
        self.filler = folder / "filler"

    def leave(self, room: int) -> Path:
        """Make only about ``room`` bytes writable in the folder; returns it."""
        self.folder.mkdir(exist_ok=True)
        if os.geteuid() == 0 and shutil.which("mount"):
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(self.folder)],
                                  capture_output=True)
            self.mounted = done.returncode == 0
        if self.mounted:  # tmpfs counts whole pages
            self.filler.write_bytes(b"\0" * (DISK_BYTES - -(-room // PAGE) * PAGE))
            return self.folder
        written = {"bytes": self.filler.stat().st_size if self.filler.exists() else 0}
        real_write = os.write
        folder = str(self.folder.resolve())

        def write(fd, data):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                target = ""
            if target.startswith(folder + os.sep):
                if written["bytes"] + len(data) > room:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                written["bytes"] += len(data)
            return real_write(fd, data)

        self.monkeypatch.setattr(os, "write", write)
        return self.folder

    def free(self) -> None:
        if self.mounted:
            self.filler.unlink()
        else:
            self.monkeypatch.undo()

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.folder)], capture_output=True)


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    disk = FullDisk(tmp_path / "disk", monkeypatch)
    yield disk
    disk.close()


def run(args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def error_line(result) -> str:
    """The one line of the error (a stand-in warning may come before it), no traceback."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output, result.output
    lines = result.output.rstrip("\n").split("\n")
    errors = [line for line in lines if line.startswith("Error: ")]
    assert errors == [lines[-1]], result.output
    return lines[-1]


def assert_one_line(result, path_start: str):
    line = error_line(result)
    assert path_start in line and "No space left on device" in line


def test_classify_on_a_full_disk_keeps_its_rows_and_resumes(full_disk, tmp_path):
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    for i in range(40):
        Image.new("RGB", (24, 24), (6 * i, 100, 50)).save(images / f"face_{i:02d}.png")
    model = write_tiny_classifier(tmp_path / "classifier.onnx")
    out = full_disk.leave(room=PAGE) / "predictions.csv"  # about 9 of the 10 batches
    result = run(["classify", images, "--model", model, "-o", out, "--batch", 4, "-q"])
    line = error_line(result)
    assert line.startswith(f"Error: cannot write {out}: No space left on device") and "--resume" in line
    assert out.read_bytes().endswith(b"\n")  # the failed batch was cut back: no torn row
    kept = read_csv(out)
    assert 0 < len(kept) < 40 and all(row["label"] in ("male", "female") for row in kept)
    full_disk.free()
    result = run(["classify", images, "--model", model, "-o", out, "--batch", 4, "-q", "--resume"])
    assert result.exit_code == 0, result.output
    rows = read_csv(out)
    assert sorted(row["path"] for row in rows) == sorted(str(p) for p in images.iterdir())


def test_export_on_a_full_disk_names_its_file_and_leaves_nothing(full_disk, tiny_network, tmp_path):
    tiny_network.save(tmp_path / "converted" / "network")
    out = full_disk.leave(room=40_000) / "backbone.onnx"
    result = run(["export", tmp_path / "converted", "--backbone-only", "-o", out, "-q"])
    assert_one_line(result, str(out))
    left = sorted(p.name for p in full_disk.folder.iterdir() if p.name != "filler")
    assert left == []  # no half-written model, no temporary file


def test_bench_json_on_a_full_disk_names_its_file(full_disk, tmp_path):
    model = write_tiny_classifier(tmp_path / "classifier-fp32.onnx")
    out = full_disk.leave(room=0) / "bench.json"
    result = run(["bench", "--model", model, "--device", "cpu", "--batch", 2, "--warmup", 0, "--iters", 1,
                  "--no-variants", "-o", out, "-q"])
    assert_one_line(result, str(out))


def test_train_on_a_full_disk_names_the_file_it_could_not_write(full_disk, tiny_network, tmp_path):
    tiny_network.save(tmp_path / "converted" / "network")
    data = tmp_path / "data"
    write_colour_dataset(data, per_class=12, size=32)
    run_dir = full_disk.leave(room=0) / "run"
    result = run(["train", data, "--weights", tmp_path / "converted", "-o", run_dir, "--epochs", 2, "-q"])
    assert_one_line(result, str(run_dir))


def test_convert_on_a_full_disk_names_its_file_and_keeps_the_old_output(full_disk, tmp_path):
    from gender_cli.convert.standin import make_standin

    weights = make_standin(tmp_path / "VGG_FACE.caffemodel", "tiny", format="caffe")
    out = full_disk.leave(room=40_000) / "converted"
    result = run(["convert", weights, "-o", out, "-q"])
    assert_one_line(result, str(full_disk.folder))
    assert sorted(p.name for p in full_disk.folder.iterdir() if p.name != "filler") == []  # no staging left


def test_make_standin_on_a_full_disk_names_its_file(full_disk):
    out = full_disk.leave(room=10_000) / "VGG_FACE.caffemodel"
    result = run(["make-standin", "--format", "caffe", "--size", "tiny", "-o", out, "-q"])
    assert_one_line(result, str(out))
    assert sorted(p.name for p in full_disk.folder.iterdir() if p.name != "filler") == []
