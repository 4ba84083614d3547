"""``--format parquet``: a folder of complete part files, read back by pyarrow, resumable."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow (the [ray] extra) is not installed")

from gender_cli import contract  # noqa: E402
from gender_cli.cli.main import cli  # noqa: E402
from gender_cli.errors import GenderCliError  # noqa: E402
from gender_cli.infer.rows import Columns, Row  # noqa: E402
from gender_cli.infer.writer import open_writer  # noqa: E402

from helpers_infer import classify_files, interrupt_after, write_noise_images, write_tiny_classifier  # noqa: E402


def open_parquet_output(output, labels, resume=False):
    return open_writer(output, "parquet", Columns(labels), resume=resume)


@pytest.fixture
def model(tmp_path) -> Path:
    return write_tiny_classifier(tmp_path / "tiny.onnx", size=32)


@pytest.fixture
def faces(tmp_path) -> Path:
    folder = write_noise_images(tmp_path / "faces", 10, seed=3)
    (folder / "empty.jpg").write_bytes(b"")
    return folder


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_parquet_holds_the_csv_rows_unrounded(model, faces, tmp_path):
    assert run("classify", faces, "--model", model, "-o", tmp_path / "p.csv").exit_code == 3
    result = run("classify", faces, "--model", model, "-o", tmp_path / "out.parquet", "--batch", 4)
    assert result.exit_code == 3, result.output
    table = pq.read_table(tmp_path / "out.parquet")  # the real reader, on the folder
    assert table.schema.names == ["path", "label", "p_male", "p_female", "error"]
    assert str(table.schema.field("p_male").type) == "double"
    parquet_rows = {r["path"]: r for r in table.to_pylist()}
    with open(tmp_path / "p.csv", newline="") as handle:
        csv_rows = {r["path"]: r for r in csv.DictReader(handle)}
    assert set(parquet_rows) == set(csv_rows) and len(parquet_rows) == 11
    for path, row in csv_rows.items():
        got = parquet_rows[path]
        assert (got["label"] or "") == row["label"] and (got["error"] or "") == row["error"]
        if row["error"]:
            assert got["p_male"] is None and got["p_female"] is None
        else:
            assert float(row["p_female"]) == pytest.approx(got["p_female"], abs=5e-7)  # CSV rounds to 6 digits
    assert sorted(p.name for p in (tmp_path / "out.parquet").iterdir()) == ["part-00000.parquet"]


def test_interrupted_parquet_run_resumes_with_every_file_once(model, faces, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        classify_files([faces], model, out, format="parquet", batch=3, on_batch=interrupt_after(2))
    first = pq.read_table(out).column("path").to_pylist()
    assert len(first) == 6  # the rows written before Ctrl-C were flushed as a part
    (out / ".part-00001.parquet.tmp").write_bytes(b"half a part")  # as a hard kill mid-write leaves
    result = run("classify", faces, "--model", model, "-o", out, "--format", "parquet", "--resume", "--batch", 3)
    assert result.exit_code == 3 and "already done (--resume): 6" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    paths = pq.read_table(out).column("path").to_pylist()
    assert sorted(paths) == sorted(str(p) for p in faces.iterdir()) and paths[:6] == first


def test_parts_are_cut_by_rows_and_a_foreign_folder_is_refused(tmp_path):
    out = tmp_path / "parts"
    writer, _ = open_parquet_output(str(out), contract.LABELS)
    writer.rows_per_part = 2
    with writer:
        for i in range(5):  # a part once 2 rows wait, the rest at close
            writer.write([Row(f"{i}.jpg", "male", [0.9, 0.1], None)])
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert pq.read_table(out).num_rows == 5
    other = tmp_path / "other"
    other.mkdir()
    pq.write_table(pq.read_table(out).drop(["error"]), other / "part-00000.parquet")
    with pytest.raises(GenderCliError, match="has the columns"):
        open_parquet_output(str(other), contract.LABELS, resume=True)


def test_parquet_output_usage_errors(model, faces, tmp_path):
    assert run("classify", faces, "--model", model, "-o", "-", "--format", "parquet").exit_code == 2
    (tmp_path / "file.parquet").write_text("x")
    assert run("classify", faces, "--model", model, "-o", tmp_path / "file.parquet").exit_code == 2
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("not ours")
    result = run("classify", faces, "--model", model, "-o", busy, "--format", "parquet")
    assert result.exit_code == 2 and "--resume" in result.output
    assert run("classify", faces, "--model", model, "-o", busy, "--format", "parquet", "--force").exit_code == 3
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt", "part-00000.parquet"]


def test_a_name_that_is_not_utf8_keeps_its_row_with_escaped_bytes(tmp_path):
    import os

    odd = os.fsdecode(b"faces/odd-\xff.jpg")  # how Python hands over such a file name
    writer, _ = open_parquet_output(str(tmp_path / "out"), contract.LABELS)
    with writer:
        writer.write([Row(odd, "male", [0.75, 0.25], None), Row("faces/ok.jpg", None, None, "empty: file is empty")])
    rows = pq.read_table(tmp_path / "out").to_pylist()
    assert [r["path"] for r in rows] == ["faces/odd-\\xff.jpg", "faces/ok.jpg"]
    assert rows[0]["p_male"] == 0.75 and rows[1]["label"] is None and rows[1]["error"] == "empty: file is empty"
