"""``gender-cli report``: a classify output summarised, recounted from the rows themselves."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from helpers_infer import write_tiny_classifier  # noqa: E402
from helpers_train import read_csv, write_png, write_utkface_named  # noqa: E402

from gender_cli.cli.main import cli
from gender_cli.contract import Meta


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def classified(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    photos = base / "photos"
    write_utkface_named(photos / "studio", {0: 30})
    write_utkface_named(photos / "street" / "night", {1: 20}, seed=1)
    write_png(photos / "loose.png", value=90, size=40)
    (photos / "street" / "empty.jpg").write_bytes(b"")
    (photos / "studio" / "notes.jpg").write_text("not a picture")
    model = write_tiny_classifier(base / "tiny.onnx", size=32)
    rows = base / "rows.csv"
    result = invoke("classify", photos, "--model", model, "-o", rows, "--device", "cpu", "-q")
    assert result.exit_code == 3, result.output
    return {"base": base, "photos": photos, "rows": rows, "model": model}


def test_counts_band_and_errors_recount_from_the_rows(classified, tmp_path):
    result = invoke("report", classified["rows"], "-o", tmp_path / "r", "--uncertain", "0.2")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    rows = read_csv(classified["rows"])
    ok = [r for r in rows if not r["error"]]
    assert (summary["rows"], summary["classified"], summary["failed"]) == (len(rows), len(ok), len(rows) - len(ok))
    assert summary["errors"] == {"empty": 1, "not_image": 1}
    assert summary["by_label"] == {label: sum(r["label"] == label for r in ok) for label in ("male", "female")}
    folder = {"studio": 30 + 1, "street": 20 + 1, ".": 1}
    assert {name: counts["rows"] for name, counts in summary["by_folder"].items()} == folder
    assert summary["by_folder"]["street"]["failed"] == 1
    assert summary["threshold"]["value"] == 0.5
    near = sorted((abs(float(r["p_female"]) - 0.5), r["path"]) for r in ok if abs(float(r["p_female"]) - 0.5) <= 0.2)
    assert summary["uncertain"]["rows"] == len(near) > 0
    assert [r["path"] for r in read_csv(tmp_path / "r" / "uncertain.csv")] == [path for _, path in near]
    assert sum(summary["histogram"]["counts"]) == len(ok)
    assert summary["histogram"]["counts"][0] == sum(float(r["p_female"]) < 0.05 for r in ok)
    text = (tmp_path / "r" / "report.html").read_text()
    # thumbnails of the uncertain files and a tile for each failed one
    assert text.count('src="data:image/jpeg;base64,') == min(len(near), 24)
    assert text.count("cannot be shown") == 2
    assert result.output.splitlines()[0].startswith(f"{len(rows)} rows: {len(ok)} classified, 2 failed")


def test_rows_of_a_graph_from_before_calibration_say_which_threshold(classified, tmp_path):
    strict = write_tiny_classifier(tmp_path / "strict.onnx", size=32, **{Meta.THRESHOLD: "0.9"})
    rows = tmp_path / "strict.jsonl"
    invoke("classify", classified["photos"], "--model", strict, "-o", rows, "--device", "cpu", "-q")
    result = invoke("report", rows, "-o", tmp_path / "r")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    records = [json.loads(line) for line in rows.read_text().splitlines()]
    female = [r["p_female"] for r in records if r["label"] == "female"]
    assert summary["threshold"]["value"] == pytest.approx(min(female))
    assert "not 0.5" in summary["threshold"]["source"]
    given = invoke("report", rows, "-o", tmp_path / "g", "--threshold", "0.9")
    assert given.exit_code == 0, given.output
    assert json.loads((tmp_path / "g" / "summary.json").read_text())["threshold"] == {"value": 0.9, "source": "given"}


def test_a_file_that_is_not_a_classify_output_is_a_one_line_error(tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("name,score\na,1\n")
    result = invoke("report", other, "-o", tmp_path / "r")
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {other} is not a 'gender-cli classify' output: no path, error column " \
                                    "(columns: name, score)"
    assert invoke("report", tmp_path / "missing.csv").exit_code == 1
    assert invoke("report", other, "--uncertain", "0.7").exit_code == 2


def test_face_rows_count_faces_and_show_the_face(tmp_path):
    from PIL import Image

    photo = tmp_path / "group.png"
    pixels = np.zeros((60, 90, 3), np.uint8)
    pixels[10:40, 50:80] = (200, 30, 30)  # the second face: red
    Image.fromarray(pixels).save(photo)
    rows = tmp_path / "faces.csv"
    rows.write_text("path,face,faces,box,detector_score,label,p_male,p_female,error\n"
                    f"{photo},0,2,5 5 20 20,7,male,0.550000,0.450000,\n"
                    f"{photo},1,2,50 10 30 30,9,female,0.020000,0.980000,\n")
    result = invoke("report", rows, "-o", tmp_path / "r")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert (summary["one_row_per"], summary["rows"], summary["files"]) == ("face", 2, 1)
    assert summary["uncertain"]["paths"] == [str(photo)]
    # the uncertain face's thumbnail is its own crop, not the photo
    import base64
    import io
    import re

    uris = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', (tmp_path / "r" / "report.html").read_text())
    assert len(uris) == 1
    thumb = np.asarray(Image.open(io.BytesIO(base64.b64decode(uris[0]))).convert("RGB"), float)
    assert thumb.shape[:2] == (20, 20) and thumb.mean() < 10


def test_report_runs_on_the_inference_install(classified, tmp_path):
    """report summarises classify output where only the core install is present: no
    TensorFlow, SciPy or matplotlib (those come with the [train] extra)."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "for name in ('tensorflow', 'keras', 'scipy', 'h5py', 'onnx', 'tf2onnx', 'matplotlib'):\n"
        "    sys.modules[name] = None  # importing any of them now raises ImportError\n"
        "from gender_cli.cli.main import cli\n"
        "try:\n"
        "    cli(['report', sys.argv[1], '-o', sys.argv[2]])\n"
        "except SystemExit as exit:\n"
        "    print('exit', exit.code)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(classified["rows"]), str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=120)
    assert "exit 0" in done.stdout, done.stderr
    assert (tmp_path / "r" / "report.html").stat().st_size > 1000
