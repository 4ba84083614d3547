"""Prediction rows as columns: how the Ray stages send rows to the driver, and what the
Parquet writer takes without building a Python object per row.

Columns of ``n`` rows:

- ``path``: bytes, the file name in UTF-8 with surrogate escapes (Arrow strings must be
  valid UTF-8; a file name need not be, and must come back exactly);
- ``label``: str, "" for a file that failed;
- ``probabilities``: float64 ``[n, labels]``, NaN for a file that failed (the graph's
  float32 outputs, exactly);
- ``error``: str, "" when the file was classified.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gender_cli.infer.output import Row


def encode_names(names: Sequence[str]) -> list[bytes]:
    return [name.encode("utf-8", errors="surrogateescape") for name in names]


def decode_names(column: Sequence[bytes]) -> list[str]:
    return [bytes(name).decode("utf-8", errors="surrogateescape") for name in column]


def rows_to_columns(rows: Sequence[Row], labels: int) -> dict[str, np.ndarray]:
    missing = [float("nan")] * labels
    return {
        "path": np.array(encode_names([row.path for row in rows]), dtype=object),
        "label": np.array([row.label or "" for row in rows], dtype=object),
        "probabilities": np.array(
            [row.probabilities if row.probabilities is not None else missing for row in rows], dtype=np.float64
        ).reshape(len(rows), labels),
        "error": np.array([row.error or "" for row in rows], dtype=object),
    }


def columns_to_rows(columns: dict[str, np.ndarray]) -> list[Row]:
    return [
        Row(path, None, None, str(error)) if error else Row(path, str(label), probabilities.tolist(), None)
        for path, label, probabilities, error in zip(
            decode_names(columns["path"]), columns["label"], columns["probabilities"], columns["error"]
        )
    ]
