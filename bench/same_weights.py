"""The network and head behind an exported classifier, for framework comparisons.

``bench --compare-tf`` and ``bench --compare-torch`` time another framework on the
same weights as the ONNX model: the workspace's converted network (``gender-cli
convert``) up to the model's descriptor, plus the latest trained head (``gender-cli
train``) when it fits that descriptor. Both find them here, TF- and torch-free, so a
missing network fails fast before any framework is imported. Only the gender head is
rebuilt: a graph's age head (a small dense stack) is left out of the comparison, and
the notes say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gender_cli.contract import AGE, GENDER_HEAD
from gender_cli.convert.network import Network
from gender_cli.errors import GenderCliError
from gender_cli.head_spec import HeadSpec, heads_in
from gender_cli.infer.session import LoadedModel


@dataclass
class Head:
    spec: HeadSpec
    kernels: list[np.ndarray]  # [in, out]
    biases: list[np.ndarray]


@dataclass
class SameWeights:
    network: Network
    head: Head | None  # None: time the backbone up to the descriptor only
    notes: list[str] = field(default_factory=list)


def find_same_weights(model: LoadedModel) -> SameWeights:
    """The workspace's network and fitting head; raises GenderCliError (naming
    'gender-cli convert') when there is no converted network."""
    from gender_cli import workspace
    from gender_cli.convert.source import load_network

    network = load_network(None)
    notes = []
    sha = model.info.raw.get("source_sha256")
    if sha and getattr(network, "source_sha256", None) and network.source_sha256 != sha:
        notes.append("the workspace network's weights differ from the ONNX model's (speed comparison only)")
    if AGE in model.info.value_columns:
        notes.append("the graph's age head is not rebuilt here: compared up to the gender head")
    try:
        head_dir = workspace.latest_head_dir()
    except GenderCliError:
        notes.append("no trained head in the workspace: timing the backbone up to the descriptor only")
        return SameWeights(network, None, notes)
    if GENDER_HEAD not in heads_in(head_dir):
        notes.append(f"the latest trained run ({head_dir.name}) has no gender head: timing the backbone only")
        return SameWeights(network, None, notes)
    spec, kernels, biases = HeadSpec.load(head_dir)
    if spec.descriptor != model.info.descriptor:
        notes.append(f"latest head uses {spec.descriptor}; timing the backbone only")
        return SameWeights(network, None, notes)
    return SameWeights(network, Head(spec, kernels, biases), notes)
