"""The engine interface: what runs the classifier over a run's files.

A run (``classify.classify``) lists the files, opens the output, skips what a resumed
output holds and writes and counts rows; an engine turns inputs into rows. Two
implementations, chosen by name from :data:`ENGINES`:

- ``local`` (:class:`~gender_cli.infer.engine_local.LocalEngine`): decode threads and
  one onnxruntime session in this process; also what the Python API predicts with.
- ``ray`` (:class:`~gender_cli.infer.engine_ray.RayEngine`): the same decoding and graph
  as Ray Data stages on a Ray cluster.

Both build their rows with ``rows.batch_rows`` and decode with ``images.load_image``,
so the same file gives the same row on either.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from gender_cli.infer.detect import FaceSettings
from gender_cli.infer.engine_local import LocalEngine
from gender_cli.infer.engine_ray import ClusterReport, RayEngine
from gender_cli.infer.images import ImageInput, Read
from gender_cli.infer.rows import Block

if TYPE_CHECKING:
    from gender_cli.infer.session import ModelInfo


class Engine(Protocol):
    """Runs one classifier over inputs and hands the rows over in blocks."""

    name: str
    model_path: Path
    info: ModelInfo  # the classifier's contract
    notice: str | None  # about the device it runs on, for the user
    providers: list[str]  # the execution providers that ran (Ray: known once blocks came back)
    cluster: ClusterReport | None  # what a Ray run ran on; None locally

    def start(self, files: int) -> float:
        """Get ready to classify ``files`` files; returns the seconds that took (Ray's start-up)."""

    def blocks(self, inputs: Sequence[ImageInput], read: Read | None = None,
               detect: FaceSettings | None = None) -> Iterator[Block]:
        """The rows of ``inputs`` (one per input, or per face with ``detect``); ``read``
        reads a named file (URIs through pyarrow)."""

    def stop(self) -> None:
        """Release what :meth:`start` took (a Ray started for the run)."""


ENGINES: dict[str, type[Engine]] = {"local": LocalEngine, "ray": RayEngine}
DEFAULT_ENGINE = "local"
