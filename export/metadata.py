"""The ``metadata_props`` an exported graph carries, so ``classify`` needs only the file.

A graph with the gender head alone carries exactly the keys it carried before the age
head existed (no ``heads`` key: its absence means the gender head alone); any other
set of heads is named in ``heads``, and an age head adds ``age_range`` and
``age_metrics``.
"""

from __future__ import annotations

import json

import numpy as np

from gender_cli import __version__, contract
from gender_cli.contract import AGE_HEAD, GENDER_HEAD, Meta
from gender_cli.convert.network import Network
from gender_cli.infer.images import DEFAULT_RESIZE

RESIZE = DEFAULT_RESIZE  # what classify does by default; training descriptors used the same


def build_metadata(
    network: Network,
    descriptor: str,
    descriptor_dim: int,
    precision: str,
    heads,
    precision_check: dict | None = None,
) -> dict[str, str]:
    """``heads``: the loaded heads (``head_graph.Heads``), or None for a backbone."""
    specs = {task: heads.get(task).spec for task in heads.names} if heads is not None else {}
    head, age = specs.get(GENDER_HEAD), specs.get(AGE_HEAD)
    standin = bool(network.standin or any(spec.standin for spec in specs.values()))
    sha256 = next((spec.backbone_sha256 for spec in specs.values() if spec.backbone_sha256), "")
    faces = next((spec.faces for spec in specs.values() if spec.faces), None)
    meta = {
        Meta.LABELS: json.dumps(list(head.labels) if head else list(contract.LABELS)),
        Meta.THRESHOLD: repr(float(head.threshold)) if head else "0.5",
        Meta.INPUT_SIZE: json.dumps([int(s) for s in network.input_size]),
        Meta.CHANNEL_ORDER: contract.CHANNEL_ORDER,
        Meta.MEAN: json.dumps([float(m) for m in np.asarray(network.mean).reshape(-1)]),
        Meta.DESCRIPTOR: descriptor,
        Meta.DESCRIPTOR_DIM: str(int(descriptor_dim)),
        Meta.PRECISION: precision,
        Meta.SOURCE_SHA256: network.source_sha256 or sha256,
        Meta.STANDIN: "true" if standin else "false",
        Meta.VERSION: __version__,
        Meta.KIND: "classifier" if specs else "backbone",
        Meta.RESIZE: RESIZE,
    }
    if network.preprocessing:
        meta[Meta.SOURCE_FORMAT] = network.source_format
        meta[Meta.SOURCE_PREPROCESSING] = json.dumps(network.preprocessing)
        if network.preprocessing.get("face_crop"):  # classify --detect crops as the backbone expects
            meta[Meta.FACE_CROP] = network.preprocessing["face_crop"]
    if head is not None and head.source:
        meta[Meta.HEAD_SOURCE] = head.source
    if faces:
        meta.update(faces)  # how the training faces were found and cropped
    if head is not None and head.metrics:
        meta[Meta.METRICS] = json.dumps(head.metrics)
    if head is not None and head.calibration:
        meta[Meta.CALIBRATION] = json.dumps(head.calibration)
    if specs and list(specs) != [GENDER_HEAD]:
        meta[Meta.HEADS] = json.dumps(list(specs))
    if age is not None:
        meta[Meta.AGE_RANGE] = json.dumps([int(a) for a in age.ages])
        if age.metrics:
            meta[Meta.AGE_METRICS] = json.dumps(age.metrics)
    if precision_check:
        meta[Meta.PRECISION_CHECK] = json.dumps(precision_check)
    return meta
