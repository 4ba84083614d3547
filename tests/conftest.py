"""Shared fixtures: an isolated workspace and in-memory stand-in networks.

``model`` (a tiny classifier graph) and ``corpus`` (the bad-input corpus) are shared
by the inference tests of both engines; other files of every awkward kind are built
by the fixtures of each test module. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
UTKFACE_SAMPLE = SHARED_DATA / "utkface-sample"


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
