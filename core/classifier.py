"""The Python face of ``classify``: :class:`Classifier`, its :class:`Prediction` results.

A ``Classifier`` holds one exported classifier open on the local engine, the very
engine ``gender-cli classify`` runs, so a file gives the same answer from Python as in
the CLI's output row (same decoding, EXIF handling, colour conversion and resize)::

    from gender_cli import Classifier

    classifier = Classifier()                       # the workspace's default classifier
    for p in classifier.predict(["a.jpg", "b.png"]):
        print(p.source, p.label, p.probabilities, p.error)

``predict`` also takes numpy arrays (uint8, H x W x 3 RGB, or an N x H x W x 3 batch),
PIL images and raw file bytes; ``iter`` streams over a folder or URI; ``classify``
writes an output file as the CLI does. A broken input is a ``Prediction`` whose
``error`` says why, never an exception.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from gender_cli.devices import DEFAULT_DEVICE
from gender_cli.infer.detect import FaceOptions, FaceSettings, check_settings, settings_for_model
from gender_cli.infer.engine_local import LocalEngine
from gender_cli.infer.images import ImageInput
from gender_cli.infer.request import DEFAULT_BATCH, ClassifyRequest, source_names
from gender_cli.infer.rows import Row, category_of, unlisted_row
from gender_cli.infer.sources import Reader, list_sources

if TYPE_CHECKING:
    import pandas

    from gender_cli.infer.classify import ClassifySummary
    from gender_cli.infer.engine_ray import RayOptions
    from gender_cli.infer.session import ModelInfo

Detect = Union[bool, dict, FaceOptions, FaceSettings, None]
"""Face detection as ``detect=`` takes it: None/False (the images as they are), True
(the model's settings, else the defaults), or a dict of ``detector``, ``min_face``,
``margin``, ``max_faces`` (``--detect``'s options)."""


@dataclass(frozen=True)
class Prediction:
    """One input's answer (one face's, with detection).

    ``source`` is the input's path as given (a file name), or its position in the list
    of inputs (arrays, PIL images, bytes). ``label`` is the decided label (the model's
    threshold on the second label's probability), ``probabilities`` maps each label to
    its probability; both None without a gender head. ``age`` is in years (None
    without the age head). With detection, ``face`` (0, 1, ... left to right),
    ``faces`` (how many the input has), ``box`` (x, y, w, h in the upright original's
    pixels) and ``detector_score``. ``error`` is None, or ``"category: message"``
    (``not_image``, ``corrupt``, ``no_face``, ...), and then the answers are None.
    """

    source: str | int
    label: str | None
    probabilities: dict[str, float] | None
    age: float | None = None
    error: str | None = None
    face: int | None = None
    faces: int | None = None
    box: tuple[int, int, int, int] | None = None
    detector_score: float | None = None
    detected: bool = field(default=False, repr=False)  # made with face detection: the face fields apply

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def category(self) -> str | None:
        """The error's category (``not_image``, ``no_face``, ...), None when classified."""
        return category_of(self.error)

    def to_dict(self) -> dict[str, Any]:
        """A flat record with the CLI's columns (``source`` for ``path``; probabilities as
        ``p_<label>``, unrounded)::

            {"source": "a.jpg", "label": "female", "p_male": 0.1, "p_female": 0.9, "age": 31.2, "error": None}
        """
        record: dict[str, Any] = {"source": self.source}
        if self.detected:
            record.update(face=self.face, faces=self.faces, box=self.box, detector_score=self.detector_score)
        if self.probabilities is not None or self.label is not None:
            record["label"] = self.label
            record.update({f"p_{label}": p for label, p in self.probabilities.items()} if self.probabilities else {})
        record["age"] = self.age
        record["error"] = self.error
        return record


class Predictions(list):
    """A list of :class:`Prediction` that turns into records or a DataFrame."""

    def to_dicts(self) -> list[dict[str, Any]]:
        """One ``Prediction.to_dict()`` record per prediction, with every column present."""
        records = [prediction.to_dict() for prediction in self]
        names = list(dict.fromkeys(name for record in records for name in record))
        return [{name: record.get(name) for name in names} for record in records]

    def to_pandas(self) -> pandas.DataFrame:
        """The records as a pandas DataFrame (pandas is not a dependency of gender-cli)."""
        try:
            import pandas
        except ImportError:
            raise ImportError("to_pandas() needs pandas (pip install pandas); to_dicts() gives the same records") from None
        return pandas.DataFrame(self.to_dicts())


class Classifier:
    """An exported classifier, open on this machine (CUDA when it loads, else CPU).

    ``model``: an ``.onnx`` file from ``gender-cli export`` (None: the workspace's default
    classifier, as for the CLI); ``device``: ``auto``, ``cuda`` or ``cpu``; ``batch``:
    images per inference batch (None: the CLI's default); ``detect``: find, align and
    crop every face first (see :data:`Detect`), one prediction per face; ``workers``:
    decode threads (None: one per core).

    Example::

        classifier = Classifier("models/classifier-fp32.onnx", device="cpu")
        classifier.info.labels                      # ('male', 'female')
        predictions = classifier.predict(images)    # a list of arrays -> one Prediction each
        predictions.to_pandas()
    """

    def __init__(self, model: str | os.PathLike | None = None, device: str = DEFAULT_DEVICE,
                 batch: int | None = None, detect: Detect = None, workers: int | None = None):
        # What every run of this classifier shares, checked as a run's options are; each
        # classify() call fills in its own sources and output.
        self._runs = ClassifyRequest([os.curdir], model=model, output="-", device=device, detect=detect,
                                     batch=DEFAULT_BATCH if batch is None else batch, workers=workers)
        self._engine = LocalEngine.open(model, device, self._runs.batch, workers)
        self._settings = settings_for_model(self._runs.detect, self.info.raw)
        if self._settings is not None:
            check_settings(self._settings)

    @property
    def info(self) -> ModelInfo:
        """What the classifier is: ``labels``, ``threshold``, ``heads``, ``input_size``,
        ``precision``, ``source_format``, ``standin`` (random stand-in weights: its answers
        mean nothing), ``resize``; ``raw`` holds every metadata entry."""
        return self._engine.info

    @property
    def path(self) -> Path:
        """The ``.onnx`` file."""
        return self._engine.model_path

    @property
    def providers(self) -> list[str]:
        """The onnxruntime execution providers in use (``CUDAExecutionProvider``, ...)."""
        return self._engine.providers

    @property
    def notice(self) -> str | None:
        """Why CUDA was not used on a machine with a GPU, if that happened."""
        return self._engine.notice

    @property
    def face_settings(self) -> FaceSettings | None:
        """How faces are found and cropped (None without detection)."""
        return self._settings

    @property
    def device(self) -> str:
        """The device asked for (``auto``, ``cuda``, ``cpu``); ``providers`` says what runs."""
        return self._runs.device

    @property
    def batch(self) -> int:
        return self._runs.batch

    def __repr__(self) -> str:
        return f"Classifier({str(self.path)!r}, device={self.device!r}, providers={self.providers})"

    def predict(self, inputs: ImageInput | Iterable[ImageInput]) -> Predictions:
        """One :class:`Prediction` per input (per face with detection), in input order.

        ``inputs``: a file name, its raw bytes, a PIL image, a uint8 H x W x 3 RGB array,
        an N x H x W x 3 batch (N inputs), or a list of any of these. A file is decoded
        exactly as ``gender-cli classify`` decodes it; a PIL image is taken as already
        opened (its EXIF orientation applied, no JPEG draft decoding); an array is only
        resized. An input that cannot be read is a Prediction with ``error`` set.

        Example::

            classifier.predict(np.zeros((2, 224, 224, 3), np.uint8))   # two Predictions
        """
        items = _flatten(inputs)
        rows = [row for block in self._engine.blocks(items, detect=self._settings) for row in block.rows]
        return Predictions(self._prediction(row, _source(items, row.index)) for row in rows)

    def iter(self, source: str | os.PathLike | Sequence[str | os.PathLike], recursive: bool = True) -> Iterator[Prediction]:
        """Stream a Prediction for every file under ``source`` (folders, files, or URIs
        pyarrow reads: ``s3://``, ``file://``, ...), in listing order, without writing a
        file. Every file gets one (a folder that cannot be listed, one with its error).

        Example::

            unreadable = [p.source for p in classifier.iter("photos/") if not p.ok]
        """
        listing = list_sources(source_names(source), recursive=recursive)
        for path, exc in listing.unlistable:
            yield self._prediction(unlisted_row(path, exc), str(path))
        for block in self._engine.blocks(listing.files, Reader(listing.roots), self._settings):
            for row in block.rows:
                yield self._prediction(row, row.path)

    def classify(self, source: str | os.PathLike | Sequence[str | os.PathLike], output: str | os.PathLike | None = None,
                 format: str | None = None, resume: bool = False, engine: str = "local", force: bool = False,
                 recursive: bool = True, require_face: bool = False, ray: RayOptions | None = None) -> ClassifySummary:
        """Write the rows of every file under ``source`` into ``output``, exactly as
        ``gender-cli classify`` does, and return the summary it prints.

        ``output``: a file (``.csv``, ``.jsonl``), a folder for ``format="parquet"``, or
        ``"-"`` for stdout (None: ``predictions.csv``, or the format's default);
        ``resume`` continues an interrupted output, ``force`` replaces one (an existing
        output is refused otherwise); ``engine="ray"`` runs on Ray (``ray``: where and
        how big). Raises ``RequestError`` for contradicting arguments, ``GenderCliError``
        when the output cannot be written.

        Example::

            summary = classifier.classify("photos/", "rows.jsonl")
            summary.classified, summary.failed, summary.errors
        """
        from gender_cli.infer.classify import classify
        from gender_cli.infer.engine_ray import RayOptions

        request = dataclasses.replace(
            self._runs, sources=source, model=str(self.path), output=None if output is None else os.fspath(output),
            format=format, resume=resume, force=force, recursive=recursive, require_face=require_face, engine=engine,
            workers=self._runs.workers if engine == "local" else None, ray=ray or RayOptions(),
        )
        return classify(request, engine=self._engine if engine == "local" else None)

    def _prediction(self, row: Row, source: str | int) -> Prediction:
        probabilities = None
        if row.probabilities is not None:
            probabilities = dict(zip(self.info.gender_labels, (float(p) for p in row.probabilities)))
        age = (row.values or {}).get("age")
        face = dict(zip(("face", "faces", "box", "detector_score"), row.extra)) if self._settings else {}
        box = face.get("box")
        return Prediction(source, row.label, probabilities, age, row.error, face.get("face"), face.get("faces"),
                          tuple(box) if box is not None else None, face.get("detector_score"),
                          detected=self._settings is not None)


def _flatten(inputs) -> list[ImageInput]:
    """A list of single inputs: an N x H x W x 3 array is N of them."""
    if isinstance(inputs, (str, os.PathLike, bytes, bytearray, memoryview)) or not isinstance(inputs, Iterable):
        inputs = [inputs]
    elif isinstance(inputs, np.ndarray) and inputs.ndim != 4:
        inputs = [inputs]
    items: list[ImageInput] = []
    for item in inputs:
        if isinstance(item, np.ndarray) and item.ndim == 4:
            items.extend(item)
        else:
            items.append(item)
    return items


def _source(items: Sequence[ImageInput], index: int) -> str | int:
    item = items[index]
    return os.fspath(item) if isinstance(item, (str, os.PathLike)) else index
