"""Stand-in models and image subsets that the benchmark scripts share.

``standin_classifier`` builds, in a scratch workspace, what a user's
``convert`` + ``train`` + ``export`` would leave: the stand-in VGG-Face layer table
(seeded random weights, the real shapes), a seeded 64-unit head and an exported
classifier. Speed does not depend on the weight values; these models say nothing
about gender.
"""

from __future__ import annotations

import os
from pathlib import Path


def standin_head(run_dir: Path, dim: int) -> None:
    """A seeded ``dim -> 64 -> 2`` head in the train contract (head.json + weights)."""
    import numpy as np

    from gender_cli import contract
    from gender_cli.head_spec import HeadSpec

    rng = np.random.default_rng(0)
    hidden = 64
    kernels = [
        (rng.normal(size=(dim, hidden)) / np.sqrt(dim)).astype(np.float32),
        (rng.normal(size=(hidden, 2)) / np.sqrt(hidden)).astype(np.float32),
    ]
    biases = [np.zeros(hidden, np.float32), np.zeros(2, np.float32)]
    spec = HeadSpec(
        descriptor="relu7", input_dim=dim, hidden=[hidden], dropout=0.0,
        labels=list(contract.LABELS), threshold=0.5, standin=True,
    )
    spec.save(run_dir, kernels, biases)


def descriptor_dim(network) -> int:
    import numpy as np

    from gender_cli.convert.reference import descriptor

    height, width = network.input_size[:2]
    return int(descriptor(network, np.zeros((1, height, width, 3), np.uint8), "relu7").shape[1])


def standin_workspace(size: str, home: Path):
    """Point ``$GENDER_CLI_HOME`` at ``home`` and fill it with the stand-in layer table and
    head; returns the network (weights in memory)."""
    os.environ["GENDER_CLI_HOME"] = str(home)
    from gender_cli import workspace
    from gender_cli.convert.vgg_face import vgg_face_network

    network = vgg_face_network(size, seed=0)
    network.save(workspace.network_dir())
    standin_head(workspace.new_run_dir(), descriptor_dim(network))
    return network


def standin_classifier(size: str, home: Path, precision: str = "fp32", calibration: Path | None = None) -> Path:
    """Export the stand-in classifier of ``size`` into ``home``; returns its path."""
    from gender_cli import workspace
    from gender_cli.export.export import export

    network = standin_workspace(size, home)
    return export(
        network, workspace.classifier_path(precision), head=workspace.latest_head_dir(),
        precision=precision, calibration=calibration,
    ).path


def subset(images: Path, folder: Path, count: int | None) -> Path:
    """``images`` itself, or a folder of links to ``count`` evenly spread files of it."""
    if count is None:
        return images
    from gender_cli.infer.files import list_image_files

    files = list_image_files([images])
    step = max(1, len(files) // count)
    folder.mkdir(parents=True, exist_ok=True)
    for path in files[::step][:count]:
        link = folder / path.name
        if not link.exists():
            link.symlink_to(path.resolve())
    return folder
