"""Prediction rows as columns: how the Ray stages send rows to the driver, and what the
Parquet writer takes without building a Python object per row.

Columns of ``n`` rows:

- ``path``: bytes, the file name in UTF-8 with surrogate escapes (Arrow strings must be
  valid UTF-8; a file name need not be, and must come back exactly);
- ``label``: str, "" for a file that failed or a graph without the gender head;
- ``probabilities``: float64 ``[n, labels]`` (``labels`` is 0 without the gender head),
  NaN for a file that failed (the graph's float32 outputs, exactly);
- one float64 column per value head, named as its output column (``age``), NaN for a
  file that failed;
- ``error``: str, "" when the file was classified;
- with face detection (``encode_face_cells``, made by the decode tasks; read back by
  ``columns_to_rows`` with ``extra=detect.FACE_COLUMNS``): ``face`` and ``faces`` int64
  (-1 for none), ``box`` int64 ``[n, 4]`` (-1 for none), ``detector_score`` float64
  (NaN for none).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gender_cli.infer.rows import Row


def encode_names(names: Sequence[str]) -> list[bytes]:
    return [name.encode("utf-8", errors="surrogateescape") for name in names]


def decode_names(column: Sequence[bytes]) -> list[str]:
    return [bytes(name).decode("utf-8", errors="surrogateescape") for name in column]


def rows_to_columns(rows: Sequence[Row], labels: int, values: Sequence[str] = ()) -> dict[str, np.ndarray]:
    nan = float("nan")
    return {
        "path": np.array(encode_names([row.path for row in rows]), dtype=object),
        "label": np.array([row.label or "" for row in rows], dtype=object),
        "probabilities": np.array(
            [row.probabilities if row.probabilities is not None else [nan] * labels for row in rows], dtype=np.float64
        ).reshape(len(rows), labels),
        **{
            name: np.array([row.values[name] if row.values else nan for row in rows], dtype=np.float64)
            for name in values
        },
        "error": np.array([row.error or "" for row in rows], dtype=object),
    }


def columns_to_rows(columns: dict[str, np.ndarray], values: Sequence[str] = (), extra: Sequence[str] = ()) -> list[Row]:
    gender = columns["probabilities"].shape[1] > 0
    rows = []
    for index, (path, label, error) in enumerate(zip(decode_names(columns["path"]), columns["label"], columns["error"])):
        if error:
            rows.append(Row(path, None, None, str(error)))
        else:
            probabilities = columns["probabilities"][index].tolist() if gender else None
            value = {name: float(columns[name][index]) for name in values}
            rows.append(Row(path, str(label) if gender else None, probabilities, None, value))
        if extra:
            rows[-1].extra = decode_face_cells(columns, index)
    return rows


def encode_face_cells(extras: Sequence[Sequence]) -> dict[str, np.ndarray]:
    """The face columns of rows whose ``extra`` cells are (face, faces, box, detector_score)."""
    cells = [(*extra, *[None] * (4 - len(extra))) for extra in extras]
    n = len(cells)
    return {
        "face": np.array([-1 if c[0] is None else c[0] for c in cells], dtype=np.int64),
        "faces": np.array([-1 if c[1] is None else c[1] for c in cells], dtype=np.int64),
        "box": np.array([[-1] * 4 if c[2] is None else list(c[2]) for c in cells], dtype=np.int64).reshape(n, 4),
        "detector_score": np.array([np.nan if c[3] is None else c[3] for c in cells], dtype=np.float64),
    }


def decode_face_cells(columns: dict[str, np.ndarray], index: int) -> tuple:
    """Row ``index``'s (face, faces, box, detector_score), None where empty."""
    face, faces, score = int(columns["face"][index]), int(columns["faces"][index]), float(columns["detector_score"][index])
    box = [int(v) for v in columns["box"][index]]
    return (None if face < 0 else face, None if faces < 0 else faces, None if box[0] < 0 else box,
            None if np.isnan(score) else score)
