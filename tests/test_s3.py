"""Object storage for real: ``classify`` against a SeaweedFS S3 server (conftest ``s3``),
reached through the standard AWS variables as a user's run against AWS or MinIO is.

Rows read from ``s3://`` are the local run's; Parquet parts go to a bucket whole or not
at all and ``--resume`` reads them there; a store that refuses is one line, and a
connection lost mid-run stops the run with its rows intact for ``--resume``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

pa = pytest.importorskip("pyarrow", reason="pyarrow (the [ray] extra) is not installed")
pafs = pytest.importorskip("pyarrow.fs")

from gender_cli.cli.main import cli  # noqa: E402
from gender_cli.errors import GenderCliError, StoreLost  # noqa: E402

from helpers_infer import (  # noqa: E402
    assert_same_rows, classify_files, interrupt_after, jsonl_rows, parquet_rows, write_noise_images,
)
from helpers_s3 import Proxy  # noqa: E402
from helpers_train import read_csv  # noqa: E402

# as outside pytest: Pillow's decompression-bomb warning is an error (images.py sets it)
pytestmark = pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def key(uri: str) -> str:
    """An ``s3://`` URI as a path of the server's pyarrow file system."""
    return uri.removeprefix("s3://").rstrip("/")


def on_disk(root, prefix: str):
    """Maps an object's row name to the name of the same file in the local run."""
    return lambda name: str(root / name.removeprefix(prefix))


def test_rows_from_s3_are_the_local_run_s(s3, model, corpus, tmp_path):
    """The awkward-file corpus from a bucket: the same rows as from the disk, broken
    objects included (error rows with the same categories and messages)."""
    root, expected = corpus
    prefix = f"{s3.bucket}/corpus/"
    s3.server.upload(root, prefix)
    local = run("classify", root, "--model", model, "-o", tmp_path / "local.jsonl", "--batch", 4)
    remote = run("classify", prefix, "--model", model, "-o", tmp_path / "s3.jsonl", "--batch", 4)
    assert local.exit_code == remote.exit_code == 3, remote.output
    local_rows = jsonl_rows(tmp_path / "local.jsonl")
    del local_rows[str(root / "sub" / "dangling.jpg")]  # a link: object stores have none
    s3_rows = jsonl_rows(tmp_path / "s3.jsonl")
    assert len(s3_rows) == len(expected) - 1
    assert_same_rows(s3_rows, local_rows, rename=on_disk(root, prefix))
    assert s3_rows[prefix + "truncated.jpg"]["error"].startswith("truncated: ")
    assert s3_rows[prefix + "ünïcödé 顔.jpg"]["label"]


def test_parquet_parts_in_a_bucket_resume_and_read_back(s3, model, tmp_path):
    folder = write_noise_images(tmp_path / "faces", 12)
    out = f"{s3.bucket}/run/"
    with pytest.raises(KeyboardInterrupt):
        classify_files([folder], model, out, format="parquet", batch=4, on_batch=interrupt_after(2))
    filesystem = s3.server.filesystem()
    assert len(parquet_rows(key(out), filesystem)) == 8  # two batches, flushed as a part at Ctrl-C
    with filesystem.open_output_stream(key(out) + "/.part-00001.parquet.tmp") as stream:
        stream.write(b"what an upload cut short leaves")
    refused = run("classify", folder, "--model", model, "-o", out, "--format", "parquet")
    assert refused.exit_code == 2 and "already exists" in refused.output
    result = run("classify", folder, "--model", model, "-o", out, "--format", "parquet", "--resume", "--batch", 4)
    assert result.exit_code == 0, result.output
    assert "already done (--resume): 8" in result.stderr
    listed = sorted(info.base_name for info in filesystem.get_file_info(pafs.FileSelector(key(out))))
    assert listed == ["part-00000.parquet", "part-00001.parquet"]
    classify_files([folder], model, tmp_path / "local.jsonl", batch=4)
    assert_same_rows(parquet_rows(key(out), filesystem), jsonl_rows(tmp_path / "local.jsonl"))


class _CutShort:
    """A file system whose uploads stop half-way: raising (a dropped connection) or not
    (a store that kept less than it was sent)."""

    def __init__(self, filesystem, raises: bool):
        self.filesystem, self.raises = filesystem, raises

    def __getattr__(self, name):
        return getattr(self.filesystem, name)

    def open_output_stream(self, path):
        real, raises = self.filesystem.open_output_stream(path), self.raises

        class Stream:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                real.close()  # as pyarrow's own stream does: what was sent is stored

            def write(self, data):
                real.write(data[: data.size // 2])
                if raises:
                    raise OSError("AWS Error NETWORK_CONNECTION during UploadPart operation: connection reset")

        return Stream()


@pytest.mark.parametrize("raises", [True, False], ids=["upload fails", "store keeps half"])
def test_a_part_is_in_the_bucket_whole_or_not_at_all(s3, raises):
    from gender_cli.infer.parquet_parts import open_parts

    out = f"{s3.bucket}/run/"
    parts = open_parts(out)
    data = pa.py_buffer(os.urandom(200_000))
    parts.filesystem = _CutShort(parts.filesystem, raises)
    with pytest.raises(GenderCliError, match="cannot write part-00000.parquet to " + out):
        parts.commit("part-00000.parquet", data)
    assert parts.names() == [".part-00000.parquet.tmp"]  # half of it, under the name readers skip
    parts = open_parts(out)
    parts.remove_temporaries()  # what opening the output for a run does
    assert parts.names() == []
    parts.commit("part-00000.parquet", data)
    assert parts.names() == ["part-00000.parquet"]
    with parts.filesystem.open_input_stream(parts.path("part-00000.parquet")) as stream:
        assert stream.read() == data.to_pybytes()


def error_lines(result) -> list[str]:
    assert "Traceback" not in result.output
    return [line for line in result.output.splitlines() if line.startswith("Error")]


def test_refusals_of_the_store_are_one_line(s3, model, tmp_path, monkeypatch):
    folder = write_noise_images(tmp_path / "faces", 2)
    source = f"{s3.bucket}/faces/"
    s3.server.upload(folder, source)
    text = run("classify", source, "--model", model, "-o", f"{s3.bucket}/rows.csv")
    assert text.exit_code == 2 and "an object cannot be appended to" in text.output
    assert "--format parquet" in text.output
    for where in ("input", "output"):
        args = ("s3://no-such-bucket/faces", "-o", tmp_path / "rows.csv") if where == "input" else (
            source, "-o", "s3://no-such-bucket/run/", "--format", "parquet")
        missing = run("classify", *args, "--model", model)
        assert missing.exit_code == 1 and error_lines(missing) == [
            f"Error: no such bucket: no-such-bucket (s3://no-such-bucket/{'faces' if where == 'input' else 'run/'})"]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    denied = run("classify", source, "--model", model, "-o", tmp_path / "rows.csv")
    assert denied.exit_code == 1 and len(error_lines(denied)) == 1
    assert "ACCESS_DENIED" in denied.output and "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in denied.output
    from local_services import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    refused = run("classify", source, "--model", model, "-o", tmp_path / "rows.csv")
    assert refused.exit_code == 1 and len(error_lines(refused)) == 1
    assert "check AWS_ENDPOINT_URL" in refused.output
    assert not (tmp_path / "rows.csv").exists()


def test_a_connection_lost_mid_run_keeps_the_rows_and_resume_finishes(s3, model, tmp_path, monkeypatch):
    """The store goes away after two batches: the run stops with one line instead of
    writing an error row for every file it can no longer reach; --resume finishes."""
    folder = write_noise_images(tmp_path / "faces", 16)
    source = f"{s3.bucket}/faces/"
    s3.server.upload(folder, source)
    proxy = Proxy(int(s3.server.endpoint.rsplit(":", 1)[1])).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    calls = []

    def cut_after_two_batches(count):
        calls.append(count)
        if len(calls) == 2:
            proxy.cut()

    out = tmp_path / "rows.csv"
    with pytest.raises(StoreLost, match=r"lost the object store while reading s3://.*rerun the same command"):
        classify_files([source], model, out, batch=2, workers=1, on_batch=cut_after_two_batches)
    partial = read_csv(out)
    assert 4 <= len(partial) < 16 and not any(row["error"] for row in partial)
    proxy.restore()
    result = run("classify", source, "--model", model, "-o", out, "--resume", "--batch", 2)
    assert result.exit_code == 0, result.output
    rows = read_csv(out)
    assert rows[: len(partial)] == partial and not any(row["error"] for row in rows)
    assert sorted(row["path"] for row in rows) == sorted(f"{source}face_{i:02d}.png" for i in range(16))


def test_ray_reads_a_bucket_and_writes_its_parts_there(s3, model, corpus, tmp_path):
    """A fresh process as a user runs it: the CLI starts a local Ray whose workers read
    the objects with the environment's credentials; the driver commits the parts."""
    pytest.importorskip("ray", reason="the [ray] extra (ray[data]) is not installed")
    root, _ = corpus
    prefix, out = f"{s3.bucket}/corpus/", f"{s3.bucket}/ray/"
    s3.server.upload(root, prefix)
    result = subprocess.run(
        [sys.executable, "-m", "gender_cli", "classify", prefix, "--model", str(model), "-o", out,
         "--format", "parquet", "--engine", "ray", "--batch", "4"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 3, result.stderr
    assert "ray: local" in result.stderr and f"rows written to {out}" in result.stderr
    assert run("classify", root, "--model", model, "-o", tmp_path / "local", "--format", "parquet").exit_code == 3
    local_rows = parquet_rows(tmp_path / "local")
    del local_rows[str(root / "sub" / "dangling.jpg")]
    assert_same_rows(parquet_rows(key(out), s3.server.filesystem()), local_rows, rename=on_disk(root, prefix))


def test_reads_from_an_object_store_get_more_decode_threads(model):
    """A read from a store waits on the network: four threads per core unless --workers says."""
    from gender_cli.infer.engine_local import REMOTE_THREADS_PER_CORE, LocalEngine
    from gender_cli.infer.sources import Reader, RemoteRoot
    from gender_cli.system import available_cpus

    remote = Reader([RemoteRoot("s3://bucket/faces/", pafs.LocalFileSystem(), "/faces/")])
    assert LocalEngine.open(model, "cpu").threads(remote) == REMOTE_THREADS_PER_CORE * available_cpus()
    assert LocalEngine.open(model, "cpu").threads(Reader()) is None  # iter_batches: one per core
    assert LocalEngine.open(model, "cpu", workers=3).threads(remote) == 3


def test_a_run_s_own_parts_in_a_bucket_are_not_its_input():
    """``classify s3://b/faces/ -o s3://b/faces/run/``: a resumed run must not classify its parts."""
    from gender_cli.infer.sources import without

    files = ["s3://b/faces/a.jpg", "s3://b/faces/run/part-00000.parquet", "s3://b/faces/runs.jpg", "faces/run/x.jpg"]
    assert without(files, ["s3://b/faces/run/"]) == ["s3://b/faces/a.jpg", "s3://b/faces/runs.jpg", "faces/run/x.jpg"]
