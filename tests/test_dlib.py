"""dlib's face network: the pure-Python reader and writer, checked by dlib itself.

The reader's numbers are checked against dlib's own ``compute_face_descriptor``: on the
real network (face-recognition-models, the [detect] extra) with real face chips, and on
a full-size stand-in that our writer made and dlib loads. Files that are not the face
network (dlib's detector and landmark models, a cut-short or altered file) get one line.
"""

from __future__ import annotations

import importlib.util
import io
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gender_cli.cli.main import cli
from gender_cli.convert import dlib_resnet, reference
from gender_cli.convert.dlib_reader import read_source
from gender_cli.convert.dlib_serial import Reader, TruncatedError, Writer
from gender_cli.convert.formats import read_network
from gender_cli.errors import ModelFileError, UnsupportedLayerError

HAVE_DLIB = importlib.util.find_spec("dlib") is not None
needs_dlib = pytest.mark.skipif(not HAVE_DLIB, reason="dlib is in the [detect] extra")


def _real_file(name: str = dlib_resnet.FILE_NAME) -> Path:
    from gender_cli.infer.detect import dlib_model

    try:
        return dlib_model(name)
    except Exception as exc:  # noqa: BLE001 - any reason the package is missing
        pytest.skip(f"face-recognition-models is in the [detect] extra ({exc})")


@pytest.fixture(scope="module")
def standin_full(tmp_path_factory) -> Path:
    from gender_cli.convert.standin import make_standin

    return make_standin(tmp_path_factory.mktemp("dlib") / dlib_resnet.FILE_NAME, size="full", format="dlib")


@pytest.fixture(scope="module")
def standin_tiny(tmp_path_factory) -> Path:
    from gender_cli.convert.standin import make_standin

    return make_standin(tmp_path_factory.mktemp("dlib-tiny") / dlib_resnet.FILE_NAME, size="tiny", format="dlib")


def _chips(count: int, seed: int = 0) -> np.ndarray:
    """Real face crops resized to 150x150 when the shared sample is present, else smooth
    generated pictures."""
    from conftest import UTKFACE_SAMPLE

    if UTKFACE_SAMPLE.is_dir():
        from PIL import Image

        files = sorted(UTKFACE_SAMPLE.glob("*.jpg"))[:: max(1, 2000 // count)][:count]
        return np.stack([np.asarray(Image.open(f).convert("RGB").resize((150, 150), Image.BILINEAR)) for f in files])
    from gender_cli.export.calibration import synthetic_images

    return synthetic_images((150, 150), count, seed).images


def _dlib_descriptors(path: Path, chips: np.ndarray) -> np.ndarray:
    import dlib

    model = dlib.face_recognition_model_v1(str(path))
    return np.array([np.array(model.compute_face_descriptor(chip)) for chip in chips])


def _relative(got: np.ndarray, expected: np.ndarray) -> float:
    return float((np.abs(got - expected).max(axis=1) / np.abs(expected).max(axis=1)).max())


# -- the encodings ----------------------------------------------------------------------


def test_integers_and_reals_are_dlibs_bytes():
    stream = io.BytesIO()
    w = Writer(stream)
    w.int(1), w.int(0), w.int(-28), w.ulong(4736)
    w.real(0.04, 24), w.real(1.0), w.real(0.0)
    # as in the real file: int 1, zero, int16 -28, 4736, float 0.04, double 1.0 and 0.0
    assert stream.getvalue() == bytes.fromhex("0101 0100 811c 028012 030ad7a3 811c 0110 8104 0100 010b")
    r = Reader(stream.getvalue())
    assert (r.int(), r.int(), r.int(), r.ulong()) == (1, 0, -28, 4736)
    assert r.real(np.float32) == np.float32(0.04) and r.real() == 1.0 and r.real() == 0.0


def test_a_declared_tensor_larger_than_the_file_is_refused_before_allocating():
    stream = io.BytesIO()
    w = Writer(stream)
    w.int(2), w.dims((40000, 40000, 1, 1))
    with pytest.raises(TruncatedError, match="40000x40000x1x1 floats"):
        Reader(stream.getvalue() + b"\0" * 64).tensor()


# -- the real network -------------------------------------------------------------------


@needs_dlib
def test_the_real_network_gives_dlibs_descriptors():
    path = _real_file()
    network, head = read_network(path)
    assert head is None and not network.standin and network.input_size == (150, 150, 3)
    assert network.source_format == "dlib" and network.preprocessing["scale"] == 1 / 256
    chips = _chips(6)
    expected = _dlib_descriptors(path, chips)
    assert _relative(reference.descriptor(network, chips, "embedding"), expected) < 1e-5


@needs_dlib
def test_the_real_file_is_read_in_full_as_the_face_network():
    source = read_source(_real_file())
    assert source.first_problem() is None and source.layout == "face-resnet-v1"
    assert len(source.entries) == 108 and sum(e.params for e in source.entries) == 5_614_592
    types = [e.type for e in source.entries]
    assert types.count("con") == 29 and types.count("affine") == 29 and types.count("add_prev") == 14
    assert types[-2:] == ["avg_pool_everything", "fc_no_bias"]
    assert source.entries[-1].layer.weights.shape == (1, 1, 256, 128)


@pytest.mark.parametrize("name, says", [
    ("mmod_human_face_detector.dat", "dlib's MMOD face detector .*--detector dlib-cnn"),
    ("shape_predictor_5_face_landmarks.dat", "a dlib shape predictor \\(5 face landmarks\\)"),
    ("shape_predictor_68_face_landmarks.dat", "a dlib shape predictor \\(68 face landmarks\\)"),
])
def test_the_other_dlib_files_get_one_line_saying_what_they_are(name, says):
    result = CliRunner().invoke(cli, ["convert", "--quiet", str(_real_file(name))])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: ") and re.search(says, line), line


# -- stand-ins ----------------------------------------------------------------------------


@needs_dlib
def test_a_full_size_standin_loads_in_dlib_and_the_exported_graph_gives_its_descriptors(standin_full, tmp_path):
    import onnxruntime as ort

    from gender_cli.export.export import export

    network, _ = read_network(standin_full)
    assert network.standin
    result = export(network, tmp_path / "backbone.onnx")
    assert result.metadata["descriptor"] == "embedding" and result.metadata["input_size"] == "[150, 150, 3]"
    chips = _chips(4, seed=1)
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    got = session.run(["descriptor"], {"images": chips})[0]
    assert _relative(got, _dlib_descriptors(standin_full, chips)) < 1e-4


def test_the_standin_has_the_real_files_layout(standin_full):
    from gender_cli.convert.dlib_reader import read_dlib

    ours = read_dlib(standin_full.read_bytes(), standin_full)
    assert ours.problem is None and ours.standin_note and "not dlib's face network" in ours.standin_note
    assert [r.version for r in ours.records].count("con_4") == 29
    definition = dlib_resnet.ops("full")
    assert len(ours.wrappers) == len(definition) and ours.wrappers[-1] == 3
    try:
        real = read_dlib(_real_file().read_bytes(), "real")
    except pytest.skip.Exception:
        return
    assert ours.wrappers == real.wrappers and ours.loss == real.loss
    assert [(r.version, r.describe()) for r in ours.records] == [(r.version, r.describe()) for r in real.records]


def test_the_tiny_standin_reads_back_as_the_table_it_was_written_from(standin_tiny):
    network, _ = read_network(standin_tiny)
    written = dlib_resnet.dlib_resnet_network("tiny")
    assert [(l.name, l.type, l.inputs) for l in network.layers] == [(l.name, l.type, l.inputs) for l in written.layers]
    for ours, theirs in zip(network.layers, written.layers):
        for field in ("weights", "bias"):
            if getattr(theirs, field) is not None:
                np.testing.assert_array_equal(getattr(ours, field), getattr(theirs, field), err_msg=ours.name)
    images = _chips(2)
    np.testing.assert_array_equal(reference.descriptor(network, images, "embedding"),
                                  reference.descriptor(written, images, "embedding"))


# -- files gender-cli cannot convert ---------------------------------------------------


def test_a_cut_short_file_names_where_it_ends(standin_tiny, tmp_path):
    data = standin_tiny.read_bytes()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnsupportedLayerError, match=r"cut\.dat: layer \d+ 'layer\d+' \(\?\): cut short in the layer record"):
        read_network(cut)
    cut.write_bytes(data[:200])
    with pytest.raises(ModelFileError, match="cut short before its first layer"):
        read_network(cut)


def test_an_unknown_layer_record_is_named(standin_tiny, tmp_path):
    data = bytearray(standin_tiny.read_bytes())
    at = data.index(b"max_pool_2")
    data[at : at + 10] = b"max_pool_9"
    odd = tmp_path / "odd.dat"
    odd.write_bytes(bytes(data))
    with pytest.raises(UnsupportedLayerError, match=r"layer 4 'layer4' \(\?\): dlib layer 'max_pool_9' is not one gender-cli reads"):
        read_network(odd)
    result = CliRunner().invoke(cli, ["inspect", str(odd)])
    assert result.exit_code == 0 and "max_pool_9" in result.output and "conv1" in result.output


def test_a_network_laid_out_otherwise_names_the_first_layer_that_differs(standin_tiny, tmp_path):
    data = bytearray(standin_tiny.read_bytes())
    at = data.index(b"max_pool_2") + len(b"max_pool_2")
    assert data[at : at + 4] == bytes.fromhex("0103 0103")  # the 3x3 window
    data[at : at + 4] = bytes.fromhex("0102 0102")
    odd = tmp_path / "odd.dat"
    odd.write_bytes(bytes(data))
    with pytest.raises(UnsupportedLayerError, match=r"layer 4 'layer4' \(max_pool\): max_pool 2x2, stride 2, padding 0 "
                       r"where dlib's face-recognition ResNet has max_pool 'pool1'"):
        read_network(odd)


# -- the verbs ----------------------------------------------------------------------------


def test_convert_recognises_the_file_by_content_and_inspect_lists_its_layers(standin_tiny, tmp_path):
    renamed = tmp_path / "weights.bin"
    renamed.write_bytes(standin_tiny.read_bytes())
    runner = CliRunner()
    result = runner.invoke(cli, ["inspect", str(renamed)])
    assert result.exit_code == 0, result.output
    assert "dlib DNN (loss_metric_2)" in result.output and "fc_no_bias" in result.output
    assert re.search(r"block14_add +add_prev .* block14_shortcut, block14_affine2", result.output), result.output
    result = runner.invoke(cli, ["convert", str(renamed)])
    assert result.exit_code == 0, result.output
    assert "(dlib): 108 layers" in result.output and "scale 0.00390625 folded" in result.output


# -- faces in photos: dlib's chip convention ---------------------------------------------


@needs_dlib
def test_detected_faces_are_cut_as_dlib_cuts_them_and_give_its_descriptors(utkface_sample, standin_full, tmp_path):
    """With the dlib detector the whole path is dlib's own: HOG box, 5-point landmarks,
    ``get_face_chip`` at 150 with padding 0.25, then the network, which is what
    ``compute_face_descriptor(img, shape)`` does."""
    import dlib
    import onnxruntime as ort
    from PIL import Image

    from gender_cli.export.export import export
    from gender_cli.infer.detect import DLIB_LANDMARKS, FaceSettings, dlib_model, settings_for_model
    from gender_cli.infer.faces import find_faces

    network, _ = read_network(standin_full)
    graph = export(network, tmp_path / "backbone.onnx")
    settings = settings_for_model({"detector": "dlib-hog"}, graph.metadata)
    assert graph.metadata["face_crop"] == "dlib-chip" and settings.crop == "dlib-chip" and settings.margin_used == 0.25
    photo = Image.new("RGB", (420, 360), (90, 120, 150))
    photo.paste(Image.open(sorted(utkface_sample.glob("*.jpg"))[7]).convert("RGB").resize((230, 230)), (120, 70))
    photo.save(tmp_path / "photo.png")
    found = find_faces(0, tmp_path / "photo.png", settings, (150, 150))
    assert found.error is None and len(found.faces) == 1

    pixels = np.asarray(photo)
    rect = dlib.get_frontal_face_detector()(pixels, 0)[0]  # faces from 80 px: no upsampling
    shape = dlib.shape_predictor(str(dlib_model(DLIB_LANDMARKS)))(pixels, rect)
    np.testing.assert_array_equal(found.faces[0].crop, dlib.get_face_chip(pixels, shape, size=150, padding=0.25))
    session = ort.InferenceSession(str(graph.path), providers=["CPUExecutionProvider"])
    ours = session.run(["descriptor"], {"images": found.faces[0].crop[None]})[0]
    theirs = np.array(dlib.face_recognition_model_v1(str(standin_full)).compute_face_descriptor(pixels, shape))[None]
    assert _relative(ours, theirs) < 1e-4
    assert FaceSettings(crop="dlib-chip").key().endswith("-dlib-chip")  # cached descriptors never mix crops


def test_the_demo_takes_the_real_network_or_a_vgg_format_not_both(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--backbone", "dlib", "--format", "caffe", "-o", str(tmp_path / "d")])
    assert result.exit_code == 2 and "--backbone dlib uses dlib's real network" in result.output
    assert not (tmp_path / "d").exists()


@needs_dlib
def test_convert_takes_the_installed_network_by_name(tmp_path, monkeypatch):
    _real_file()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["convert", "dlib", "-q"])
    assert result.exit_code == 0, result.output
    assert "dlib_face_recognition_resnet_model_v1.dat (dlib): 108 layers" in result.output
    (tmp_path / "dlib").write_bytes(b"a file of that name wins")
    result = CliRunner().invoke(cli, ["convert", "dlib", "-q"])
    assert result.exit_code == 1 and "not a weights file gender-cli reads" in result.output
