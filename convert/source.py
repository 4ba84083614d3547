"""Find the network a verb should work on: a weights file, a converted folder or the workspace.

TensorFlow-free: ``export`` and ``inspect``-like callers use it on machines without TF.
"""

from __future__ import annotations

from pathlib import Path

from gender_cli import workspace
from gender_cli.convert.network import Network
from gender_cli.errors import MissingArtifactError, ModelFileError

NETWORK_FILE = "network.json"
NETWORK_SUBDIR = "network"


def network_folder(path: Path) -> Path | None:
    """The folder holding ``network.json``: ``path`` itself or its ``network/`` child."""
    for candidate in (path, path / NETWORK_SUBDIR):
        if (candidate / NETWORK_FILE).is_file():
            return candidate
    return None


def load_network(path=None, mmap: bool = True) -> Network:
    """Load a network from a weights file, a converted folder, or (``None``) the workspace.

    A weights file is any format ``convert`` reads (:mod:`formats`). A converted folder
    is the ``network/`` folder written by ``convert`` or the folder above it
    (``converted/``); its arrays are memory-mapped unless ``mmap`` is false.
    """
    if path is None:
        return Network.load(workspace.require_network_dir(), mmap=mmap)
    path = Path(path).expanduser()
    if path.is_dir():
        folder = network_folder(path)
        if folder is None:
            raise MissingArtifactError(
                f"{path} is a folder without a converted network ({NETWORK_FILE}); "
                "make one with 'gender-cli convert vgg_face.mat'"
            )
        return Network.load(folder, mmap=mmap)
    if not path.exists():
        raise ModelFileError(f"no such file: {path}")
    from gender_cli.convert.formats import read_network  # SciPy/h5py/protobuf only when reading files

    network, _ = read_network(path)
    return network
