"""The local engine: decode threads and one onnxruntime session in this process.

Files (or, from the Python API, any inputs ``images.load_image`` takes) are decoded
in background threads (``batches``: one per core, :data:`REMOTE_THREADS_PER_CORE` per
core when the files come from an object store) while the graph runs on the current batch; each
batch of rows is one :class:`~gender_cli.infer.rows.Block`, in input order. With face
detection the crops come from ``faces.iter_face_batches`` (detection in the decode
threads) and the rows are one per face; aligned crops are saved as they are cut
(``save_crops``), drawings once all of a file's faces are classified (``draw``).
OpenCV is imported only then.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gender_cli.devices import DEFAULT_DEVICE
from gender_cli.infer.batches import DEFAULT_BATCH, iter_batches
from gender_cli.infer.detect import FaceSettings
from gender_cli.infer.images import ImageInput, Read
from gender_cli.infer.rows import Block, FileDone, HeadOutputs, Row, batch_rows
from gender_cli.infer.sources import Reader
from gender_cli.system import available_cpus

if TYPE_CHECKING:  # onnxruntime is imported when a model is opened, not with the CLI's options
    from gender_cli.infer.session import LoadedModel, ModelInfo

# A read from an object store waits on the network (a local one hardly does): more decode
# threads keep the cores busy meanwhile (docs/decisions.md, 2026-12-06).
REMOTE_THREADS_PER_CORE = 4


class LocalEngine:
    """Runs a loaded classifier over inputs in this process (see the module docstring)."""

    name = "local"

    def __init__(
        self,
        model: LoadedModel,
        batch: int,
        workers: int | None = None,
        resize: str | None = None,
        save_crops: str | os.PathLike | None = None,
        draw: str | os.PathLike | None = None,
    ):
        self.model = model
        self.batch = model.fixed_batch or batch  # a graph exported with a static N takes nothing else
        self.workers = workers
        self.resize = resize or model.info.resize
        self.save_crops = save_crops
        self.draw = draw

    @classmethod
    def open(cls, model: str | os.PathLike | None, device: str = DEFAULT_DEVICE, batch: int = DEFAULT_BATCH,
             workers: int | None = None, resize: str | None = None, save_crops: str | os.PathLike | None = None,
             draw: str | os.PathLike | None = None) -> LocalEngine:
        """Load ``model`` (None: the workspace's default classifier) on ``device``."""
        from gender_cli.infer.session import load_classifier

        return cls(load_classifier(model, device), batch, workers, resize, save_crops, draw)

    @property
    def info(self) -> ModelInfo:
        return self.model.info

    @property
    def model_path(self) -> Path:
        return self.model.path

    @property
    def notice(self) -> str | None:
        return self.model.notice

    @property
    def providers(self) -> list[str]:
        return self.model.providers

    cluster = None  # only a Ray run has one

    def start(self, files: int) -> float:
        return 0.0

    def stop(self) -> None:
        pass

    def threads(self, read: Read | None) -> int | None:
        """Decode threads: as asked, else one per core (None), or REMOTE_THREADS_PER_CORE per
        core for files from an object store."""
        if self.workers is None and isinstance(read, Reader) and read.remote:
            return REMOTE_THREADS_PER_CORE * available_cpus()
        return self.workers

    def blocks(self, inputs: Sequence[ImageInput], read: Read | None = None,
               detect: FaceSettings | None = None) -> Iterator[Block]:
        """The rows of ``inputs``, a block per batch, in input order."""
        if detect is not None:
            yield from self._face_blocks(inputs, read, detect)
            return
        for batch in iter_batches(
            inputs, self.batch, size=self.info.image_size, resize=self.resize, workers=self.threads(read),
            fixed_shape=self.model.fixed_batch is not None, read=read,
        ):
            yield Block.of_rows(batch_rows(self.model, batch))

    def _face_blocks(self, inputs: Sequence[ImageInput], read: Read | None, settings: FaceSettings) -> Iterator[Block]:
        from gender_cli.infer.draw import FaceFiles
        from gender_cli.infer.faces import error_row, face_columns, iter_face_batches

        files = FaceFiles(self.save_crops, self.draw, self.info.labels)
        so_far: dict[int, list[Row]] = {}  # file index -> the rows of its faces so far (for drawings)
        for batch in iter_face_batches(
            inputs, self.batch, self.info.image_size, settings, self.threads(read), preview_side=files.preview_side,
            on_crop=files.save_crop if files.crops else None, fixed_shape=self.model.fixed_batch is not None,
            read=read,
        ):
            heads = HeadOutputs.run(self.model, batch.images, batch.used) if batch.used else None
            rows, done = [], []
            for entry in batch.entries:
                file = entry.file
                if entry.slot is None:
                    rows.append(error_row(entry))
                else:
                    rows.append(heads.row(file.name, entry.slot, face_columns(entry), index=file.index))
                    so_far.setdefault(file.index, []).append(rows[-1])
                if entry.last:
                    files.draw(file, so_far.pop(file.index, []))
                    done.append(FileDone(file.error[0] if not file.faces else None, len(file.faces),
                                         sum(face.aligned for face in file.faces)))
            yield Block(rows, done=done)
