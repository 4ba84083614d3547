"""The ``metadata_props`` an exported graph carries, so ``classify`` needs only the file."""

from __future__ import annotations

import json

import numpy as np

from gender_cli import __version__, contract
from gender_cli.contract import Meta
from gender_cli.convert.network import Network
from gender_cli.head_spec import HeadSpec

RESIZE = "stretch"  # what classify does by default; training descriptors used the same


def build_metadata(
    network: Network,
    descriptor: str,
    descriptor_dim: int,
    precision: str,
    head: HeadSpec | None,
    precision_check: dict | None = None,
) -> dict[str, str]:
    standin = bool(network.standin or (head is not None and head.standin))
    meta = {
        Meta.LABELS: json.dumps(list(head.labels) if head else list(contract.LABELS)),
        Meta.THRESHOLD: repr(float(head.threshold)) if head else "0.5",
        Meta.INPUT_SIZE: json.dumps([int(s) for s in network.input_size]),
        Meta.CHANNEL_ORDER: contract.CHANNEL_ORDER,
        Meta.MEAN: json.dumps([float(m) for m in np.asarray(network.mean).reshape(-1)]),
        Meta.DESCRIPTOR: descriptor,
        Meta.DESCRIPTOR_DIM: str(int(descriptor_dim)),
        Meta.PRECISION: precision,
        Meta.SOURCE_SHA256: network.source_sha256 or (head.backbone_sha256 if head else ""),
        Meta.STANDIN: "true" if standin else "false",
        Meta.VERSION: __version__,
        Meta.KIND: "classifier" if head else "backbone",
        Meta.RESIZE: RESIZE,
    }
    if network.preprocessing:
        meta[Meta.SOURCE_FORMAT] = network.source_format
        meta[Meta.SOURCE_PREPROCESSING] = json.dumps(network.preprocessing)
    if head is not None and head.source:
        meta[Meta.HEAD_SOURCE] = head.source
    if head is not None and head.metrics:
        meta[Meta.METRICS] = json.dumps(head.metrics)
    if precision_check:
        meta[Meta.PRECISION_CHECK] = json.dumps(precision_check)
    return meta
