"""Stand-in models and image subsets that the benchmark scripts share.

``standin_classifier`` builds, in a scratch workspace, what a user's
``convert`` + ``train`` + ``export`` would leave: the stand-in VGG-Face layer table
(seeded random weights, the real shapes), a seeded 64-unit gender head (and, with
``heads=("gender", "age")``, a seeded 64-unit age head over the ages 0-100) and an
exported classifier. Speed does not depend on the weight values; these models say
nothing about gender or age.
"""

from __future__ import annotations

import os
from pathlib import Path


HIDDEN = 64


def _dense_stack(dim: int, outputs: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    kernels = [
        (rng.normal(size=(dim, HIDDEN)) / np.sqrt(dim)).astype(np.float32),
        (rng.normal(size=(HIDDEN, outputs)) / np.sqrt(HIDDEN)).astype(np.float32),
    ]
    return kernels, [np.zeros(HIDDEN, np.float32), np.zeros(outputs, np.float32)]


def standin_head(run_dir: Path, dim: int, descriptor: str = "relu7") -> Path:
    """A seeded ``dim -> 64 -> 2`` head in the train contract (head.json + weights)."""
    from gender_cli import contract
    from gender_cli.head_spec import HeadSpec

    Path(run_dir).mkdir(parents=True, exist_ok=True)
    spec = HeadSpec(
        descriptor=descriptor, input_dim=dim, hidden=[HIDDEN], dropout=0.0,
        labels=list(contract.LABELS), threshold=0.5, standin=True,
    )
    spec.save(run_dir, *_dense_stack(dim, 2, 0))
    return run_dir


def standin_age_head(run_dir: Path, dim: int) -> None:
    """A seeded ``dim -> 64 -> 101`` age head in the train contract (age_head.json + weights)."""
    from gender_cli.head_spec import AgeHeadSpec

    spec = AgeHeadSpec(descriptor="relu7", input_dim=dim, hidden=[HIDDEN], dropout=0.0, standin=True)
    spec.save(run_dir, *_dense_stack(dim, len(spec.age_values()), 1))


STANDIN_HEADS = {"gender": standin_head, "age": standin_age_head}


def descriptor_dim(network, name: str = "relu7") -> int:
    import numpy as np

    from gender_cli.convert.reference import descriptor

    height, width = network.input_size[:2]
    return int(descriptor(network, np.zeros((1, height, width, 3), np.uint8), name).shape[1])


def classifier_with_standin_head(network, path: Path) -> Path:
    """``network`` exported to ``path`` with a seeded stand-in head on its default
    descriptor (``relu7`` for VGG-Face, ``embedding`` for dlib's network): for speed only."""
    from gender_cli.contract import default_descriptor
    from gender_cli.export.export import export

    name = default_descriptor(layer.name for layer in network.layers)
    head = standin_head(path.with_name(f"{path.stem}-head"), descriptor_dim(network, name), name)
    return export(network, path, head=head).path


def standin_workspace(size: str, home: Path, heads=("gender",)):
    """Point ``$GENDER_CLI_HOME`` at ``home`` and fill it with the stand-in layer table and
    a run folder holding ``heads``; returns the network (weights in memory)."""
    os.environ["GENDER_CLI_HOME"] = str(home)
    from gender_cli import workspace
    from gender_cli.convert.vgg_face import vgg_face_network

    network = vgg_face_network(size, seed=0)
    network.save(workspace.network_dir())
    run_dir = workspace.new_run_dir()
    for name in heads:
        STANDIN_HEADS[name](run_dir, descriptor_dim(network))
    return network


def standin_classifier(size: str, home: Path, precision: str = "fp32", calibration: Path | None = None,
                       heads=("gender",)) -> Path:
    """Export the stand-in classifier of ``size`` with ``heads`` into ``home``; returns its path."""
    from gender_cli import workspace
    from gender_cli.export.export import export

    network = standin_workspace(size, home, heads)
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
