"""``classify --detect``: one row per face, no_face rows, resumable per file, crops and
drawings; without --detect nothing changes and OpenCV is not even imported."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from helpers_faces import centre, frontal_faces, write_photo  # noqa: E402
from helpers_train import read_csv  # noqa: E402
from helpers_infer import classify_files, reference_forward, write_tiny_classifier  # noqa: E402

from gender_cli.cli.main import cli
from gender_cli.contract import Meta
from gender_cli.infer.session import load_classifier
from gender_cli.infer.detect import FaceSettings
from gender_cli.photos import background

SIZE = 32
HEADER = ["path", "face", "faces", "box", "detector_score", "label", "p_male", "p_female", "error"]


@pytest.fixture
def photos(tmp_path, utkface_sample):
    """one.jpg (1 face), two.jpg (2), three.jpg (3), none.jpg (0), broken.jpg; placements by name."""
    root = tmp_path / "photos"
    placements = {
        "one.jpg": write_photo(root / "one.jpg", frontal_faces(utkface_sample, 1), seed=1),
        "two.jpg": write_photo(root / "two.jpg", frontal_faces(utkface_sample, 2, start=1), seed=2),
        "three.jpg": write_photo(root / "three.jpg", frontal_faces(utkface_sample, 3, start=3), seed=3,
                                 size=(600, 300)),
    }
    background(np.random.default_rng(4), (400, 300)).save(root / "none.jpg", quality=92)
    placements["none.jpg"] = []
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return root, placements


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_one_row_per_face_in_left_to_right_order(model, photos, tmp_path):
    root, placements = photos
    out = tmp_path / "out.csv"
    result = run("classify", root, "--model", model, "-o", out, "--detect", "--batch", 4)
    assert result.exit_code == 3, result.output  # broken.jpg; no_face alone would not fail
    rows = read_csv(out)
    assert list(rows[0]) == HEADER
    by_file: dict[str, list[dict]] = {}
    for row in rows:
        by_file.setdefault(Path(row["path"]).name, []).append(row)
    assert sorted(by_file) == ["broken.jpg", "none.jpg", "one.jpg", "three.jpg", "two.jpg"]
    for name, expected in placements.items():
        got = by_file[name]
        if not expected:
            assert len(got) == 1 and got[0]["error"].startswith("no_face: ") and got[0]["faces"] == "0"
            assert got[0]["label"] == got[0]["box"] == got[0]["face"] == ""
            continue
        assert [int(r["face"]) for r in got] == list(range(len(expected)))
        for row, placement in zip(got, expected):
            box = [int(v) for v in row["box"].split()]
            assert int(row["faces"]) == len(expected) and row["error"] == ""
            assert placement.contains(centre(box)), (name, box, placement)
            assert row["label"] in ("male", "female") and float(row["detector_score"]) > 0
            assert float(row["p_male"]) + float(row["p_female"]) == pytest.approx(1, abs=2e-6)
    assert by_file["broken.jpg"][0]["error"].split(":")[0] in ("corrupt", "truncated", "not_image")
    assert "faces: 6 in 3 files, no face: 1" in result.output


def test_probabilities_are_those_of_the_saved_crops(model, photos, tmp_path):
    """The rows classify exactly the crops --save-crops writes (checked by the NumPy twin
    of the graph), and --draw writes one picture per readable photo."""
    root, _ = photos
    out, crops, drawn = tmp_path / "out.csv", tmp_path / "crops", tmp_path / "drawn"
    result = run("classify", root, "--model", model, "-o", out, "--detect", "--save-crops", crops, "--draw", drawn)
    assert result.exit_code == 3, result.output
    rows = [r for r in read_csv(out) if r["face"] != ""]
    for row in rows:
        mirrored = crops / "%2F" / Path(row["path"]).relative_to("/")  # an absolute path's root: a first part %2F
        crop_path = mirrored.with_name(mirrored.name + f".face{row['face']}.png")
        crop = np.asarray(Image.open(crop_path))
        assert crop.shape == (SIZE, SIZE, 3)
        expected, _ = reference_forward(crop[None])
        assert float(row["p_female"]) == pytest.approx(float(expected[0, 1]), abs=2e-6)
    assert len(list(crops.rglob("*.png"))) == len(rows) == 6
    for _ in range(2):  # crops written inside the classified folder do not become its inputs next time
        again = run("classify", root, "--model", model, "-o", tmp_path / "again.csv", "--detect", "--force",
                    "--save-crops", root / "crops")
        assert "files: 5 " in again.output and len(read_csv(tmp_path / "again.csv")) == 8
    drawings = sorted(p.name for p in drawn.rglob("*.jpg"))
    assert drawings == ["none.jpg.boxes.jpg", "one.jpg.boxes.jpg", "three.jpg.boxes.jpg", "two.jpg.boxes.jpg"]
    with Image.open(drawn.rglob("three.jpg.boxes.jpg").__next__()) as picture:
        assert picture.size == (600, 300)


def test_no_face_fails_the_run_only_with_require_face(model, photos, tmp_path):
    root, _ = photos
    none = root / "none.jpg"
    assert run("classify", none, "--model", model, "-o", tmp_path / "a.csv", "--detect").exit_code == 0
    result = run("classify", none, "--model", model, "-o", tmp_path / "b.csv", "--detect", "--require-face")
    assert result.exit_code == 3


def test_jsonl_rows_carry_numbers(model, photos, tmp_path):
    root, placements = photos
    out = tmp_path / "out.jsonl"
    assert run("classify", root / "two.jpg", root / "none.jpg", "--model", model, "-o", out, "--detect").exit_code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [list(r) for r in records] == [HEADER] * 3
    first, second, none = records
    assert (first["face"], second["face"], first["faces"]) == (0, 1, 2)
    assert isinstance(first["box"], list) and len(first["box"]) == 4 and all(isinstance(v, int) for v in first["box"])
    assert placements["two.jpg"][1].contains(centre(second["box"]))
    assert none["faces"] == 0 and none["face"] is None and none["box"] is None and none["label"] is None


def test_resume_after_everything_adds_nothing(model, photos, tmp_path):
    root, _ = photos
    out = tmp_path / "out.csv"
    run("classify", root, "--model", model, "-o", out, "--detect", "--batch", 2)
    before = out.read_bytes()
    result = run("classify", root, "--model", model, "-o", out, "--detect", "--resume", "--batch", 2)
    assert out.read_bytes() == before
    assert "already done (--resume): 5" in result.output


def test_the_api_gives_the_cli_face_rows(model, photos, tmp_path):
    """Classifier(detect=True): one Prediction per face, the CLI's rows; a photo's bytes
    give what its file gives."""
    from gender_cli import Classifier

    root, _ = photos
    out = tmp_path / "out.jsonl"
    run("classify", root, "--model", model, "-o", out, "--detect", "-q")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    classifier = Classifier(model, device="cpu", detect=True)
    files = sorted(root.iterdir())
    predicted = classifier.predict(files)
    assert len(predicted) == len(rows) == 8  # 1 + 2 + 3 faces, none.jpg's and broken.jpg's error rows
    for p, row in zip(predicted, rows):
        assert (p.source, p.face, p.faces, p.error, p.label) == (row["path"], row["face"], row["faces"], row["error"],
                                                                row["label"])
        assert list(p.box or []) == (row["box"] or []) and p.detector_score == row["detector_score"]
    assert [p.category for p in predicted if not p.ok] == ["not_image", "no_face"]  # broken.jpg, none.jpg
    three = root / "three.jpg"
    from_bytes = classifier.predict(three.read_bytes())
    assert [(p.face, p.box) for p in from_bytes] == [(p.face, p.box) for p in predicted if p.source == str(three)]
    assert {p.source for p in from_bytes} == {0}
    record = predicted[0].to_dict()
    assert list(record)[:5] == ["source", "face", "faces", "box", "detector_score"]


def test_a_multi_face_file_cut_short_is_done_again(model, photos, tmp_path):
    """Batches of one row: three.jpg's faces straddle three writes. Stop after its first
    face's row; --resume must remove that row and do the whole file again."""
    root, _ = photos
    out = tmp_path / "out.csv"
    settings = FaceSettings()
    written: list[int] = []

    def stop_inside_three(count: int) -> None:
        written.append(count)
        rows = read_csv(out)
        if rows and Path(rows[-1]["path"]).name == "three.jpg":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        classify_files([root], model, out, batch=1, detect=settings, on_batch=stop_inside_three)
    assert not [t for t in threading.enumerate() if t.name.startswith("faces")]  # stopped and joined
    cut = read_csv(out)
    assert [r["face"] for r in cut if Path(r["path"]).name == "three.jpg"] == ["0"]

    summary = classify_files([root], model, out, batch=1, detect=settings, resume=True)
    assert summary.redone == 1
    rows = read_csv(out)
    fresh = tmp_path / "fresh.csv"
    classify_files([root], model, fresh, batch=1, detect=settings)
    assert sorted(map(tuple, (r.values() for r in rows))) == sorted(map(tuple, (r.values() for r in read_csv(fresh))))
    assert [r["face"] for r in rows if Path(r["path"]).name == "three.jpg"] == ["0", "1", "2"]


def test_incomplete_rows_in_the_middle_are_refused(model, photos, tmp_path):
    root, _ = photos
    out = tmp_path / "out.csv"
    run("classify", root, "--model", model, "-o", out, "--detect")
    lines = out.read_text().splitlines(keepends=True)
    three = [i for i, line in enumerate(lines) if "three.jpg" in line]
    del lines[three[1]]  # a face row of three.jpg: incomplete, but two.jpg's rows follow
    out.write_text("".join(lines))
    result = run("classify", root, "--model", model, "-o", out, "--detect", "--resume")
    assert result.exit_code == 1 and "incomplete" in result.output and "three.jpg" in result.output


def test_the_model_metadata_sets_the_crop_unless_told_otherwise(tmp_path, photos):
    root, _ = photos
    trained = FaceSettings("opencv", min_face=300, margin=0.5)
    model = write_tiny_classifier(tmp_path / "faces.onnx", size=SIZE, **trained.to_meta())
    out = tmp_path / "out.csv"
    result = run("classify", root / "two.jpg", "--model", model, "-o", out, "--detect")
    assert "no face: 1" in result.output and "faces from 300 px" in result.output  # the model's min face
    result = run("classify", root / "two.jpg", "--model", model, "-o", out, "--detect", "--force", "--min-face", 40)
    assert "faces: 2 in 1 files" in result.output and "margin 0.5" in result.output
    result = run("classify", root / "two.jpg", "--model", model, "-o", out, "--force")
    assert "pass --detect" in result.output  # a face model run on the raw files says so
    assert read_csv(out)[0].keys() == {"path", "label", "p_male", "p_female", "error"}


def test_face_options_need_detect(model, tmp_path):
    for option in (["--margin", "0.2"], ["--detector", "opencv"], ["--require-face"], ["--draw", str(tmp_path)]):
        result = run("classify", tmp_path, "--model", model, "-o", tmp_path / "o.csv", *option)
        assert result.exit_code == 2 and "only with --detect" in result.output


@pytest.mark.parametrize("option, says", [
    (["--engine", "ray", "--draw", "drawn"], "use them with --engine local"),
    (["--format", "parquet"], "not --format parquet"),
])
def test_detect_refuses_parquet_and_files_beside_a_ray_run_in_one_line(model, tmp_path, option, says):
    out = tmp_path / "o.out"
    result = run("classify", tmp_path, "--model", model, "-o", out, "--detect", *option)
    assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output
    assert not out.exists()  # refused before anything was written


def test_classify_without_detect_imports_no_opencv(model, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (20, 20), (1, 2, 3)).save(folder / "a.png")
    code = (
        "import sys\n"
        "from gender_cli.cli.main import cli\n"
        f"try:\n    cli(['classify', {str(folder)!r}, '--model', {str(model)!r}, '-o', {str(tmp_path / 'o.csv')!r}, "
        "'-q', '--device', 'cpu'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('cv2', 'dlib', 'tensorflow') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "o.csv").read_text().splitlines()[0] == "path,label,p_male,p_female,error"


def test_stdout_output_with_detect(model, photos):
    root, _ = photos
    result = CliRunner().invoke(cli, ["classify", str(root / "one.jpg"), "--model", str(model), "-o", "-",
                                      "--detect", "-q"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()  # the data only; the notices went to stderr
    assert lines[0] == ",".join(HEADER) and len(lines) == 2 and lines[1].split(",")[1:3] == ["0", "1"]


def test_a_model_trained_on_faces_names_its_detector(tmp_path):
    model = write_tiny_classifier(tmp_path / "m.onnx", size=SIZE, **FaceSettings("dlib-hog").to_meta())
    raw = load_classifier(model, "cpu").info.raw
    assert raw[Meta.FACE_DETECTOR] == "dlib-hog" and raw[Meta.FACE_MIN_SIZE] == "80"


@pytest.mark.parametrize("heads", ["both", "age"])
def test_every_head_answers_per_face(heads, tiny_network, photos, tmp_path):
    """A graph with the age head (beside the gender head or alone) gives its columns per
    face too, the values of the saved crops through the graph."""
    import onnxruntime as ort

    from helpers_export import save_age_head, save_head  # noqa: E402

    from gender_cli.export.export import export

    head_dir = tmp_path / "heads"
    if heads == "both":
        save_head(head_dir, "relu7", 16, seed=3)
    save_age_head(head_dir, "relu7", 16, seed=4)
    graph = export(tiny_network, tmp_path / "graph.onnx", head=head_dir).path
    root, _ = photos
    out, crops, drawn = tmp_path / "out.csv", tmp_path / "crops", tmp_path / "drawn"
    result = run("classify", root / "two.jpg", root / "none.jpg", "--model", graph, "-o", out, "--detect",
                 "--save-crops", crops, "--draw", drawn, "--device", "cpu")
    assert result.exit_code == 0, result.output
    rows = read_csv(out)
    gender = ["label", "p_male", "p_female"] if heads == "both" else []
    assert list(rows[0]) == ["path", "face", "faces", "box", "detector_score", *gender, "age", "error"]
    faces = [r for r in rows if r["face"] != ""]
    assert len(faces) == 2 and [r for r in rows if r["face"] == ""][0]["age"] == ""
    pictures = np.stack([np.asarray(Image.open(p)) for p in sorted(crops.rglob("*.png"))])
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    expected = session.run(["age"], {"images": pictures})[0]
    assert [float(r["age"]) for r in faces] == pytest.approx(expected.tolist(), abs=0.005 + 1e-6)
    assert len(list(drawn.rglob("*.boxes.jpg"))) == 2


def test_the_summary_does_not_count_a_tolerated_no_face_as_failed(model, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    background(np.random.default_rng(5), (160, 120)).save(folder / "none.jpg", quality=92)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    result = run("classify", folder, "--model", model, "-o", tmp_path / "a.csv", "--detect")
    assert result.exit_code == 3
    assert "files: 2  classified: 0  failed: 1" in result.stderr
    assert "no face: 1 (not a failure without --require-face)" in result.stderr
    strict = run("classify", folder, "--model", model, "-o", tmp_path / "b.csv", "--detect", "--require-face")
    assert strict.exit_code == 3 and "files: 2  classified: 0  failed: 2" in strict.stderr
