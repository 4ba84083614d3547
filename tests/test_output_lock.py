"""One writer per output, and resume by file: no row lost or doubled when runs meet.

Two runs on one output (fresh, ``--resume`` or ``--force``, CSV, JSONL or Parquet) must
not both write; a run killed with ``kill -9`` leaves a lock the next run takes over; a
resume names files by what they are, not how they were spelled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from gender_cli.cli.main import cli
from gender_cli.errors import GenderCliError, RequestError

from helpers_infer import classify_files, interrupt_after, write_noise_images  # noqa: E402
from helpers_train import read_csv  # noqa: E402

FILES = 7


@pytest.fixture
def photos(tmp_path) -> Path:
    return write_noise_images(tmp_path / "photos", FILES)


def _paths(output: Path, fmt: str) -> list[str]:
    if fmt == "parquet":
        import pyarrow.dataset as ds

        return ds.dataset(output, format="parquet").to_table(columns=["path"]).column("path").to_pylist()
    if fmt == "jsonl":
        import json

        return [json.loads(line)["path"] for line in output.read_text().splitlines()]
    return [row["path"] for row in read_csv(output)]


@pytest.mark.parametrize("fmt, second", [("csv", {}), ("jsonl", {"resume": True}), ("parquet", {"force": True})])
def test_a_second_writer_beside_a_running_one_is_refused(model, photos, tmp_path, fmt, second):
    """While run A writes, run B (fresh, --resume or --force) on the same output is refused
    and A's output ends with every file exactly once (before: 2 rows per file, or a
    Parquet part of one run overwritten by the other's)."""
    from gender_cli.infer.classify import classify
    from gender_cli.infer.request import ClassifyRequest

    output = tmp_path / f"rows.{fmt}"
    second_run = ClassifyRequest([str(photos)], model=model, output=str(output), format=fmt, batch=2, device="cpu",
                                 **second)  # checked before A started, as when both start together
    refused = []

    def start_b(_count):
        if not refused:
            try:
                classify(second_run)
            except GenderCliError as exc:
                refused.append(str(exc))
            else:
                refused.append(None)

    summary = classify_files([photos], model, output, format=fmt, batch=2, on_batch=start_b)
    assert summary.classified == FILES
    assert refused and refused[0] is not None, "the second writer was let in"
    assert str(output) in refused[0] and f"process {os.getpid()}" in refused[0]
    assert sorted(_paths(output, fmt)) == sorted(str(p) for p in photos.iterdir())


def test_a_fresh_run_refuses_an_output_written_since_its_request_was_checked(model, photos, tmp_path):
    """Run B's request saw no output; run A wrote it meanwhile: B must not truncate it."""
    from gender_cli.infer.classify import classify
    from gender_cli.infer.request import ClassifyRequest

    output = tmp_path / "rows.csv"
    late = ClassifyRequest([str(photos)], model=model, output=str(output), device="cpu")
    classify_files([photos], model, output)
    with pytest.raises(RequestError, match="already exists"):
        classify(late)
    assert len(read_csv(output)) == FILES


HOLDER = textwrap.dedent("""
    import sys, time
    from gender_cli.infer.lock import hold_output
    lock = hold_output(sys.argv[1], sys.argv[2] == "folder")
    print("held", flush=True)
    time.sleep(120)
""")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_cli_names_the_holder_and_a_killed_holders_lock_is_taken_over(model, photos, tmp_path, fmt):
    output = tmp_path / f"rows.{fmt}"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(output), "folder" if fmt == "parquet" else "file"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = CliRunner().invoke(cli, ["classify", str(photos), "--model", str(model), "-o", str(output),
                                          "--device", "cpu", "-q", "--force"])
        assert result.exit_code == 1, result.output
        message = [line for line in result.output.splitlines() if not line.startswith("Warning: this model")]
        assert len(message) == 1 and str(output) in message[0] and f"process {holder.pid}" in message[0]
        assert "Traceback" not in result.output
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    result = CliRunner().invoke(cli, ["classify", str(photos), "--model", str(model), "-o", str(output),
                                      "--device", "cpu", "-q", "--force"])
    assert result.exit_code == 0, result.output
    assert sorted(_paths(output, fmt)) == sorted(str(p) for p in photos.iterdir())


def test_a_run_that_stops_before_writing_leaves_no_output_behind(model, photos, tmp_path, monkeypatch):
    from gender_cli.infer import classify as run

    output = tmp_path / "rows.csv"

    def refuse(*args, **kwargs):
        raise GenderCliError("no writer today")

    monkeypatch.setattr(run, "open_writer", refuse)
    with pytest.raises(GenderCliError):
        classify_files([photos], model, output)
    assert not output.exists()


def test_resume_matches_files_not_spellings(model, photos, tmp_path, monkeypatch):
    """First run with an absolute folder, resume from its parent with a relative one: no
    file is classified again; the rows keep each run's spelling."""
    output = tmp_path / "rows.csv"
    with pytest.raises(KeyboardInterrupt):
        classify_files([photos.resolve()], model, output, batch=3, on_batch=interrupt_after(1))
    first = len(read_csv(output))
    assert 0 < first < FILES
    monkeypatch.chdir(photos.parent)
    again = classify_files(["photos"], model, output, resume=True)
    assert again.skipped == first and again.classified == FILES - first
    rows = [row["path"] for row in read_csv(output)]
    assert len(rows) == FILES
    assert sorted(os.path.realpath(p) for p in rows) == sorted(str(p.resolve()) for p in photos.iterdir())
    assert sum(p.startswith("photos/") for p in rows) == FILES - first


def test_resume_that_matches_no_row_is_refused(model, photos, tmp_path, monkeypatch):
    """Rows written with relative paths from another folder name no file listed now:
    the resume says so instead of doubling every row."""
    output = tmp_path / "rows.csv"
    monkeypatch.chdir(tmp_path)
    classify_files(["photos"], model, output)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "photos").mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    with pytest.raises(GenderCliError, match="none of its 7 rows names a file listed now"):
        classify_files([photos], model, output, resume=True)
    assert len(read_csv(output)) == FILES


def test_two_links_to_one_photo_keep_a_row_each_through_a_resume(model, photos, tmp_path):
    (photos / "again.png").symlink_to(photos / "face_00.png")
    output = tmp_path / "rows.csv"
    with pytest.raises(KeyboardInterrupt):
        classify_files([photos], model, output, batch=2, on_batch=interrupt_after(1))
    classify_files([photos], model, output, resume=True)
    assert sorted(_paths(output, "csv")) == sorted(str(p) for p in photos.iterdir())


def test_resume_key_of_uris():
    from gender_cli.infer.resume import resume_key

    assert resume_key("S3://Bucket/faces/a%20b.jpg?endpoint_override=x") == "s3://bucket/faces/a b.jpg"
    assert resume_key("s3://bucket/faces//a.jpg") != resume_key("s3://bucket/faces/a.jpg")  # two objects
    assert resume_key("file:///tmp/../tmp/x.jpg") == resume_key("/tmp/x.jpg")


def test_two_runs_may_both_write_to_dev_null(model, photos):
    from gender_cli.infer.lock import hold_output

    with hold_output("/dev/null", False):
        summary = classify_files([photos], model, "/dev/null", format="csv", force=True)
    assert summary.classified == FILES
