"""What ``--save-crops`` and ``--draw`` write: one file per input and face, never through a link.

A link planted inside the crops or drawings folder (to a folder or a file elsewhere)
must not carry a write outside it, and two inputs must never map to one file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gender_cli.cli.main import cli
from gender_cli.infer.draw import FaceFiles, mirrored_parts
from gender_cli.photos import background

CROP = np.full((8, 8, 3), 200, np.uint8)


def test_a_link_to_a_folder_outside_is_refused_not_followed(tmp_path):
    crops, outside = tmp_path / "crops", tmp_path / "outside"
    crops.mkdir()
    outside.mkdir()
    (crops / "photos").symlink_to(outside)
    with pytest.raises(OSError) as info:
        FaceFiles(crops, None, ["male", "female"]).save_crop(Path("photos/p1.jpg"), 0, CROP)
    assert "link" in str(info.value) and "photos" in str(info.value)
    assert list(outside.iterdir()) == []


def test_a_link_in_the_crop_s_place_is_replaced_and_its_target_untouched(tmp_path):
    crops, victim = tmp_path / "crops", tmp_path / "victim.txt"
    (crops / "photos").mkdir(parents=True)
    victim.write_text("precious")
    (crops / "photos" / "p1.jpg.face0.png").symlink_to(victim)
    FaceFiles(crops, None, ["male", "female"]).save_crop(Path("photos/p1.jpg"), 0, CROP)
    assert victim.read_text() == "precious"
    written = crops / "photos" / "p1.jpg.face0.png"
    assert not written.is_symlink() and written.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("first, second", [
    ("../photos/p1.jpg", "__/photos/p1.jpg"),
    ("/photos/p1.jpg", "photos/p1.jpg"),
    ("s3://bucket/p1.jpg", "s3:/bucket/p1.jpg"),
    ("%2E%2E/p1.jpg", "../p1.jpg"),
    ("%2F/p1.jpg", "/p1.jpg"),
])
def test_different_inputs_never_share_a_file(first, second):
    assert mirrored_parts(first, ".face0.png") != mirrored_parts(second, ".face0.png")


def test_two_inputs_that_once_collided_get_a_drawing_each(model, tmp_path, monkeypatch):
    """``../photos/p1.jpg`` and ``__/photos/p1.jpg`` (both real) used to share one drawing."""
    work = tmp_path / "work"
    for folder, seed in ((tmp_path / "photos", 1), (work / "__" / "photos", 2)):
        folder.mkdir(parents=True)
        background(np.random.default_rng(seed), (120, 90)).save(folder / "p1.jpg", quality=92)
    monkeypatch.chdir(work)
    drawn = tmp_path / "drawn"
    result = CliRunner().invoke(cli, ["classify", "../photos/p1.jpg", "__/photos/p1.jpg", "--model", str(model),
                                      "--detect", "--draw", str(drawn), "-o", str(tmp_path / "rows.csv"), "-q"])
    assert result.exit_code == 0, result.output
    assert len([p for p in drawn.rglob("*.jpg") if p.is_file()]) == 2


def test_a_planted_link_stops_the_run_with_one_line(model, tmp_path):
    photos, drawn, outside = tmp_path / "photos", tmp_path / "drawn", tmp_path / "outside"
    photos.mkdir()
    outside.mkdir()
    background(np.random.default_rng(3), (120, 90)).save(photos / "p1.jpg", quality=92)
    drawn.mkdir()
    (drawn / "%2F").symlink_to(outside)  # where drawings of absolute input paths go
    result = CliRunner().invoke(cli, ["classify", str(photos), "--model", str(model), "--detect", "--draw",
                                      str(drawn), "-o", str(tmp_path / "rows.csv"), "-q"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if not line.startswith("Warning: this model")]
    assert len(lines) == 1 and "a link or a file stands where a folder is written" in lines[0]
    assert list(outside.iterdir()) == []
