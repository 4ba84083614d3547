"""Tiny ONNX graphs that obey gender_cli.contract, built with onnx.helper.

They let the inference tests run without waiting for the real exporter: input uint8
NHWC ``images``, mean subtracted inside, a 4-d ``descriptor`` (global average of the
channels through a fixed 3x4 matrix) and softmax ``probabilities`` over 2 labels.
The NumPy twin ``reference_forward`` is the oracle the tests compare against.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gender_cli import contract
from gender_cli.contract import Meta

MEAN = np.array([129.1863, 104.7624, 93.5940], dtype=np.float32)
W_DESCRIPTOR = np.array(
    [[0.02, -0.01, 0.03, 0.00], [-0.02, 0.04, 0.01, 0.01], [0.01, 0.00, -0.03, 0.02]], dtype=np.float32
)
W_HEAD = np.array([[1.5, -1.0], [-2.0, 1.0], [0.5, 0.7], [1.0, -1.2]], dtype=np.float32)
B_HEAD = np.array([0.1, -0.1], dtype=np.float32)


def metadata(size: int, precision="fp32", standin=True, kind="classifier", **extra) -> dict[str, str]:
    values = {
        Meta.LABELS: json.dumps(list(contract.LABELS)),
        Meta.THRESHOLD: "0.5",
        Meta.INPUT_SIZE: json.dumps([size, size, 3]),
        Meta.CHANNEL_ORDER: "RGB",
        Meta.MEAN: json.dumps([float(v) for v in MEAN]),
        Meta.DESCRIPTOR: "relu7",
        Meta.DESCRIPTOR_DIM: "4",
        Meta.PRECISION: precision,
        Meta.SOURCE_SHA256: "0" * 64,
        Meta.STANDIN: "true" if standin else "false",
        Meta.VERSION: "0.1.0",
        Meta.KIND: kind,
        Meta.RESIZE: "stretch",
    }
    values.update(extra)
    return values


def write_tiny_classifier(
    path: Path,
    size: int = 32,
    precision: str = "fp32",
    standin: bool = True,
    kind: str = "classifier",
    drop_keys: tuple[str, ...] = (),
    busy: int = 0,
    **extra_meta,
) -> Path:
    """``busy`` > 0 adds that many (3*size*size)^2 MatMul+Tanh steps whose result is
    multiplied by zero before it meets the logits: the same probabilities, slower."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Cast", ["images"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["x", "mean"], ["centred"]),
        helper.make_node("ReduceMean", ["centred"], ["pooled"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["pooled", "w_descriptor"], ["descriptor"]),
    ]
    outputs = [helper.make_tensor_value_info("descriptor", TensorProto.FLOAT, ["N", 4])]
    initialisers = [
        numpy_helper.from_array(MEAN, "mean"),
        numpy_helper.from_array(W_DESCRIPTOR, "w_descriptor"),
    ]
    if kind == "classifier":
        nodes += [
            helper.make_node("MatMul", ["descriptor", "w_head"], ["logits_raw"]),
            helper.make_node("Add", ["logits_raw", "b_head"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ]
        outputs.insert(0, helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2]))
        initialisers += [numpy_helper.from_array(W_HEAD, "w_head"), numpy_helper.from_array(B_HEAD, "b_head")]
    if busy and kind == "classifier":
        nodes, initialisers = _with_busy_work(nodes, initialisers, size, busy)
    graph = helper.make_graph(
        nodes,
        "tiny_gender",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["N", size, size, 3])],
        outputs,
        initialisers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", contract.OPSET)])
    model.ir_version = contract.IR_VERSION
    meta = metadata(size, precision=precision, standin=standin, kind=kind, **extra_meta)
    for key in drop_keys:
        meta.pop(key, None)
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _with_busy_work(nodes, initialisers, size: int, steps: int):
    from onnx import helper, numpy_helper

    features = 3 * size * size
    rng = np.random.default_rng(0)
    weight = (rng.standard_normal((features, features)) / np.sqrt(features)).astype(np.float32)
    initialisers = initialisers + [
        numpy_helper.from_array(weight, "w_busy"),
        numpy_helper.from_array(np.array([-1, features], dtype=np.int64), "busy_shape"),
        numpy_helper.from_array(np.zeros(1, dtype=np.float32), "zero"),
    ]
    busy = [helper.make_node("Reshape", ["x", "busy_shape"], ["busy_0"])]
    for step in range(steps):
        busy += [
            helper.make_node("MatMul", [f"busy_{step}", "w_busy"], [f"busy_{step}_mm"]),
            helper.make_node("Tanh", [f"busy_{step}_mm"], [f"busy_{step + 1}"]),
        ]
    busy += [
        helper.make_node("ReduceSum", [f"busy_{steps}"], ["busy_sum"], keepdims=1),
        helper.make_node("Mul", ["busy_sum", "zero"], ["busy_nothing"]),
    ]
    # the softmax now reads logits + 0 * (the busy branch)
    softmax = nodes[-1]
    nodes = nodes[:-1] + busy + [
        helper.make_node("Add", ["logits", "busy_nothing"], ["logits_busy"]),
        helper.make_node("Softmax", ["logits_busy"], list(softmax.output), axis=1),
    ]
    return nodes, initialisers


def reference_forward(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NumPy twin of the tiny graph: (probabilities, descriptor)."""
    centred = images.astype(np.float32) - MEAN
    descriptor = centred.mean(axis=(1, 2)) @ W_DESCRIPTOR
    logits = descriptor @ W_HEAD + B_HEAD
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True), descriptor


# --------------------------------------------------------------------------- corpus
RED, BLUE, GREEN, WHITE = (255, 0, 0), (0, 0, 255), (0, 255, 0), (255, 255, 255)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_declaring(width: int, height: int) -> bytes:
    """A ~100-byte PNG whose header declares a width x height RGB canvas."""
    import struct
    import zlib

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def _encoded(img, fmt: str, **kwargs) -> bytes:
    import io

    buffer = io.BytesIO()
    img.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _noise_rgb(width: int, height: int, seed: int = 0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def build_corpus(root: Path) -> dict[str, str | None]:
    """Write files of every awkward kind under ``root``.

    Returns {relative path: expected error category or None for a good image}.
    The symlink loop ``sub/loop -> ..`` is created too; it must add no entries.
    """
    import struct

    from PIL import Image

    root = Path(root)
    (root / "sub" / "deep").mkdir(parents=True, exist_ok=True)
    expected: dict[str, str | None] = {}

    def put(name: str, data: bytes, category: str | None) -> None:
        (root / name).write_bytes(data)
        expected[name] = category

    put("good.jpg", _encoded(_noise_rgb(64, 48), "JPEG", quality=90), None)
    put("name with spaces, commas; and 'quotes'.png", _encoded(_noise_rgb(30, 20, 1), "PNG"), None)
    put("ünïcödé 顔.jpg", _encoded(_noise_rgb(50, 50, 2), "JPEG"), None)
    put("sub/deep/nested.bmp", _encoded(_noise_rgb(10, 12, 3), "BMP"), None)

    alpha = Image.new("RGBA", (20, 20), (0, 0, 0, 0))  # fully transparent black ...
    alpha.paste((255, 0, 0, 255), (0, 0, 20, 10))  # ... with an opaque red top half
    put("alpha.png", _encoded(alpha, "PNG"), None)
    put("grey_alpha.png", _encoded(Image.new("LA", (8, 8), (0, 0)), "PNG"), None)

    ramp = (np.arange(16 * 16, dtype=np.uint32).reshape(16, 16) * 257).astype(np.uint16)
    put("sixteen_bit.png", _encoded(Image.fromarray(ramp), "PNG"), None)
    put("float.tif", _encoded(Image.fromarray(np.full((6, 6), 0.5, np.float32)), "TIFF"), None)
    put("cmyk.jpg", _encoded(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95), None)
    put("grey.png", _encoded(Image.new("L", (9, 7), 77), "PNG"), None)
    put("palette.png", _encoded(Image.new("RGB", (12, 12), GREEN).convert("P"), "PNG"), None)
    frames = [Image.new("RGB", (10, 10), RED).convert("P"), Image.new("RGB", (10, 10), BLUE).convert("P")]
    put("animated.gif", _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:]), None)
    put("one_pixel.png", _encoded(Image.new("RGB", (1, 1), BLUE), "PNG"), None)

    # Stored 80x40 red|blue; EXIF orientation 6 means "rotate 90 degrees clockwise to
    # display", so the displayed picture is 40x80 with red on top and blue below.
    stored = Image.new("RGB", (80, 40), BLUE)
    stored.paste(RED, (0, 0, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    put("rotated.jpg", _encoded(stored, "JPEG", quality=95, exif=exif.tobytes()), None)

    put("empty.jpg", b"", "empty")
    jpeg = _encoded(_noise_rgb(64, 64, 4), "JPEG")
    put("truncated.jpg", jpeg[: len(jpeg) // 2], "truncated")
    put("header_only.jpg", jpeg[:300], "truncated")  # Pillow says "Truncated File Read"
    png = _encoded(_noise_rgb(40, 40, 5), "PNG")
    idat = png.find(b"IDAT")
    length = struct.unpack(">I", png[idat - 4 : idat])[0]
    data = bytearray(png[idat + 4 : idat + 4 + length])
    data[5:15] = b"\xff" * 10  # broken zlib stream, valid chunk CRC
    put(
        "corrupt.png",
        png[: idat - 4] + _png_chunk(b"IDAT", bytes(data)) + png[idat + 8 + length :],
        "corrupt",
    )
    put("random_bytes.jpg", bytes(np.random.default_rng(6).integers(0, 256, 500, dtype=np.uint8)), "not_image")
    put("notes.jpg", "this is a text file, not a picture\n".encode(), "not_image")
    put("bomb.png", png_declaring(20_000, 20_000), "too_large")
    put("bomb_moderate.png", png_declaring(12_000, 10_000), "too_large")  # 1x-2x the limit
    put("sub/README", b"no extension at all", "not_image")

    (root / "sub" / "loop").symlink_to("..", target_is_directory=True)
    (root / "sub" / "dangling.jpg").symlink_to("does-not-exist.jpg")
    expected["sub/dangling.jpg"] = "unreadable"
    return expected


def write_noise_images(folder: Path, count: int, seed: int = 7, sizes=(8, 60)) -> Path:
    """``count`` PNGs of random pixels and random sizes: face_00.png, face_01.png, ..."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        width, height = (int(v) for v in rng.integers(*sizes, size=2))
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(folder / f"face_{i:02d}.png")
    return folder


def interrupt_after(calls: int):
    """An ``on_batch`` callback that raises KeyboardInterrupt (as Ctrl-C would) on its ``calls``-th call."""
    seen = []

    def callback(count: int) -> None:
        seen.append(count)
        if len(seen) == calls:
            raise KeyboardInterrupt

    return callback


# --------------------------------------------------------------------------- real exports
def write_random_head(run_dir: Path, input_dim: int, descriptor: str = "relu7", hidden=(8,), seed: int = 0):
    """A stand-in trained head (HeadSpec files); returns (kernels, biases)."""
    from gender_cli.head_spec import HeadSpec

    rng = np.random.default_rng(seed)
    dims = [input_dim, *hidden, 2]
    kernels = [(rng.normal(size=(a, b)) / np.sqrt(a)).astype(np.float32) for a, b in zip(dims, dims[1:])]
    biases = [(rng.normal(size=b) * 0.1).astype(np.float32) for b in dims[1:]]
    spec = HeadSpec(
        descriptor=descriptor, input_dim=input_dim, hidden=list(hidden), dropout=0.0,
        labels=list(contract.LABELS), threshold=0.5, standin=True,
    )
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    spec.save(run_dir, kernels, biases)
    return kernels, biases


def numpy_head(kernels, biases, descriptor: np.ndarray) -> np.ndarray:
    x = descriptor.astype(np.float64)
    for index, (kernel, bias) in enumerate(zip(kernels, biases)):
        x = x @ kernel + bias
        if index < len(kernels) - 1:
            x = np.maximum(x, 0)
    exp = np.exp(x - x.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def refuse_listing(monkeypatch, folder_name: str) -> None:
    """Make ``os.scandir`` refuse folders named ``folder_name``, as chmod 000 would for a
    non-root user (tests run as root here, where chmod does not stop reading)."""
    import os

    real_scandir = os.scandir

    def refuse(path):
        if Path(path).name == folder_name:
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)


def classify_files(sources, model, output, on_start=None, on_batch=None, opened=None, **options):
    """``classify`` through the library, as the CLI runs it (device ``cpu`` unless given;
    ``opened``: an engine already open)."""
    from gender_cli.infer.classify import classify
    from gender_cli.infer.request import ClassifyRequest

    options.setdefault("device", "cpu")
    request = ClassifyRequest(sources, model=model, output=str(output), **options)
    return classify(request, engine=opened, on_start=on_start, on_batch=on_batch)


# -- rows as the real readers give them back, and comparing two runs' rows ----------------
def parquet_rows(folder, filesystem=None) -> dict[str, dict]:
    """The rows of a Parquet output folder (local, or a path in ``filesystem``), by path;
    pyarrow reads the folder of parts as one table."""
    import pyarrow.parquet as pq

    rows = pq.read_table(str(folder), filesystem=filesystem).to_pylist()
    by_path = {r["path"]: r for r in rows}
    assert len(by_path) == len(rows), "a file has more than one row"
    return by_path


def jsonl_rows(path: Path) -> dict[str, dict]:
    text = path.read_bytes().decode("utf-8", errors="surrogateescape")  # names that are not UTF-8 stay exact
    return {r["path"]: r for r in map(json.loads, text.splitlines())}


def assert_same_rows(rows: dict[str, dict], local_rows: dict[str, dict], rename=lambda p: p) -> None:
    """``rows`` (another engine's or another source's, names mapped by ``rename``) are the
    local run's: the same files, labels and errors, probabilities within 1e-6."""
    assert {rename(p) for p in rows} == set(local_rows)
    for path, row in rows.items():
        local = local_rows[rename(path)]
        assert row["label"] == local["label"] and row["error"] == local["error"], path
        for key in ("p_male", "p_female"):
            if local[key] is None:
                assert row[key] is None
            else:
                assert abs(row[key] - local[key]) <= 1e-6, (path, key)
