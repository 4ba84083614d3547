"""Find, align and crop every face of each file, and pack the crops into batches.

Per file, in the decode threads (:func:`find_faces`): decode it upright and RGB
(``images.load_picture``; a JPEG is draft-decoded no smaller than ``SEARCH_SIDE`` on
its long side), search a copy whose long side is at most ``SEARCH_SIDE`` pixels with
the chosen detector, keep the ``max_faces`` largest faces, order them left to right
(by box centre), and cut each one's aligned crop (``align.crop_face``) out of the
decoded picture. Boxes are reported in the upright original's pixels. A file without
a face is a ``no_face`` result; an unreadable file keeps its image error category.

Batches (:func:`iter_face_batches`): files are worked on several at once and come out
in input order; their rows are packed ``batch_size`` to a batch (one row per face,
one error row for a file without a crop), so a file's faces may straddle two batches.

Rows carry ``FACE_COLUMNS`` between ``path`` and ``label``. ``faces`` (how many faces
the file has, on each of its rows) is what lets a resumed output tell a file whose
rows were all written from one that was cut short (:func:`incomplete_paths`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from gender_cli.errors import StoreLost
from gender_cli.infer.align import crop as crop_by
from gender_cli.infer.detect import NO_FACE, Face, FaceSettings, detector_for_thread, eye_angle
from gender_cli.infer.images import ImageError, ImageInput, Read, input_name, load_picture
from gender_cli.infer.rows import Row
from gender_cli.system import available_cpus

SEARCH_SIDE = 1280  # larger pictures are searched at this long side (detection cost grows with pixels)
DETECT_FAILED = "detect_failed"
SCORE_DIGITS = 4
STAGES = ("decode", "detect", "crop")


@dataclass
class FoundFace:
    box: tuple[int, int, int, int]  # x, y, w, h in the upright original's pixels
    score: float
    angle: float | None  # degrees the face was turned to level its eyes; None: eyes not found
    crop: np.ndarray  # uint8 (H, W, 3), the graph's input size

    @property
    def aligned(self) -> bool:
        return self.angle is not None


@dataclass
class FileFaces:
    """What one file gave: its faces, or why it has none."""

    index: int  # position in the caller's list
    path: ImageInput  # as the caller gave it (a file name, or an input of the Python API)
    faces: list[FoundFace] = field(default_factory=list)
    error: tuple[str, str] | None = None  # (category, message)
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # this thread's CPU time per stage of STAGES
    preview: np.ndarray | None = None  # a small copy of the picture, for drawing
    preview_scale: float = 1.0  # original pixels per preview pixel

    @property
    def error_text(self) -> str | None:
        return f"{self.error[0]}: {self.error[1]}" if self.error else None

    @property
    def name(self) -> str:
        """How its rows name it."""
        return input_name(self.path, self.index)


def find_faces(
    index: int,
    path: ImageInput,
    settings: FaceSettings,
    size: tuple[int, int],
    preview_side: int | None = None,
    on_crop: Callable[[ImageInput, int, np.ndarray], None] | None = None,
    read: Read | None = None,
) -> FileFaces:
    """Every face of ``path`` as aligned crops of ``size`` (H, W); never raises for a bad
    file (only :class:`StoreLost`, when the store holding it stopped answering). ``read(path)`` gives a named file's bytes (URIs are read through pyarrow)."""
    result = FileFaces(index, path)
    started = time.thread_time()
    try:
        picture = load_picture(path, long_side=SEARCH_SIDE, read=read)
    except ImageError as exc:
        result.error = (exc.category, str(exc))
        return result
    except StoreLost:
        raise  # not this file's fault: the run stops, and a resumed run reads it
    except Exception as exc:  # a Pillow bug must cost one row, not the whole run
        result.error = ("corrupt", f"{type(exc).__name__}: {exc}")
        return result
    decoded = time.thread_time()
    search, shrink = _shrink(picture.pixels, SEARCH_SIDE)  # shrink: search pixels per picture pixel
    try:
        found = detector_for_thread(settings.detector).find(
            search, settings.smallest_face * shrink / picture.scale[0]
        )
    except Exception as exc:  # a detector failing on one picture must not stop the run
        result.error = (DETECT_FAILED, f"{settings.detector}: {type(exc).__name__}: {exc}")
        return result
    detected = time.thread_time()
    chosen = sorted(found, key=lambda face: face.area, reverse=True)[: settings.max_faces]
    chosen.sort(key=lambda face: (face.box[0] + face.box[2] / 2, face.box[1] + face.box[3] / 2))
    for number, face in enumerate(chosen):
        crop = crop_by(picture.pixels, face, settings, size, scale=shrink)
        angle = eye_angle(face.eyes) if face.eyes is not None else None
        result.faces.append(FoundFace(_original_box(face, shrink, picture), face.score, angle, crop))
        if on_crop is not None:
            on_crop(result.path, number, crop)
    if not chosen:
        result.error = (NO_FACE, f"no face found ({settings.detector}, faces of {settings.smallest_face} px and up)")
    if preview_side is not None:
        result.preview, reduce = _shrink(picture.pixels, preview_side)
        result.preview_scale = picture.scale[0] / reduce
    result.cpu_seconds = {"decode": decoded - started, "detect": detected - decoded, "crop": time.thread_time() - detected}
    return result


def _shrink(pixels: np.ndarray, long_side: int) -> tuple[np.ndarray, float]:
    """``pixels`` with its long side at most ``long_side``, and the factor applied."""
    height, width = pixels.shape[:2]
    factor = min(1.0, long_side / max(height, width))
    if factor == 1.0:
        return pixels, 1.0
    target = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(pixels, target, interpolation=cv2.INTER_AREA), factor


def _original_box(face: Face, shrink: float, picture) -> tuple[int, int, int, int]:
    """The face's box in the upright original's pixels, clipped to the picture."""
    width, height = picture.original_size
    sx, sy = picture.scale[0] / shrink, picture.scale[1] / shrink
    x, y, w, h = face.box
    left, top = max(0.0, x * sx), max(0.0, y * sy)
    right, bottom = min(float(width), (x + w) * sx), min(float(height), (y + h) * sy)
    return round(left), round(top), max(0, round(right - left)), max(0, round(bottom - top))


# --------------------------------------------------------------------------- batches
@dataclass
class FaceEntry:
    """One output row: face ``face`` of ``file`` (its crop in ``slot``), or the file's error row."""

    file: FileFaces
    face: int | None
    slot: int | None
    last: bool  # the file's last row


@dataclass
class FaceBatch:
    """``images[:used]`` hold the crops that ``entries`` point at; the rest is padding."""

    entries: list[FaceEntry]
    images: np.ndarray
    used: int = 0

    @property
    def files_done(self) -> int:
        return sum(entry.last for entry in self.entries)


def iter_face_batches(
    paths: Sequence[ImageInput],
    batch_size: int,
    size: tuple[int, int],
    settings: FaceSettings,
    workers: int | None = None,
    prefetch: int = 3,
    preview_side: int | None = None,
    on_crop: Callable[[ImageInput, int, np.ndarray], None] | None = None,
    fixed_shape: bool = False,
    read: Read | None = None,
) -> Iterator[FaceBatch]:
    """Yield batches of ``batch_size`` rows covering ``paths`` in order (fewer for a job
    of fewer files, unless ``fixed_shape``, as ``batches.iter_batches`` does).

    About ``prefetch * batch_size`` files are being worked on at any time. Stopping
    early cancels the queued files and joins the threads before returning.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if not fixed_shape:
        batch_size = min(batch_size, max(1, len(paths)))
    height, width = size
    executor = ThreadPoolExecutor(max_workers=workers or available_cpus(), thread_name_prefix="faces")
    pending: deque[Future] = deque()
    queued = iter(enumerate(paths))
    ahead = max(1, prefetch) * batch_size

    def new_batch() -> FaceBatch:
        return FaceBatch([], np.zeros((batch_size, height, width, 3), dtype=np.uint8))

    def top_up() -> None:
        while len(pending) < ahead:
            item = next(queued, None)
            if item is None:
                return
            pending.append(executor.submit(find_faces, item[0], item[1], settings, size, preview_side, on_crop, read))

    try:
        top_up()
        batch = new_batch()
        while pending:
            result = pending.popleft().result()
            top_up()
            count = len(result.faces) or 1  # a file without a crop still has its row
            for number in range(count):
                slot = None
                if result.faces:
                    slot = batch.used
                    batch.images[slot] = result.faces[number].crop
                    batch.used += 1
                batch.entries.append(FaceEntry(result, number if result.faces else None, slot, number == count - 1))
                if len(batch.entries) == batch_size:
                    yield batch
                    batch = new_batch()
        if batch.entries:
            yield batch
    finally:
        for future in pending:
            future.cancel()
        executor.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------- rows
def face_columns(entry: FaceEntry) -> tuple:
    """The ``FACE_COLUMNS`` values of ``entry``'s row."""
    file = entry.file
    if entry.face is None:
        return None, 0 if file.error and file.error[0] == NO_FACE else None, None, None
    face = file.faces[entry.face]
    return entry.face, len(file.faces), list(face.box), round(face.score, SCORE_DIGITS)


def error_row(entry: FaceEntry) -> Row:
    """The row of a file without a crop (no face, or unreadable)."""
    return Row(entry.file.name, None, None, entry.file.error_text, extra=face_columns(entry), index=entry.file.index)


def incomplete_paths(records: list[dict]) -> set[str]:
    """Paths of a resumed output whose face rows are not all there (read back from CSV
    as text or from JSONL as numbers): a file is complete when it has an error row, or
    rows for faces 0 .. faces-1."""
    seen: dict[str, set[int]] = {}
    expected: dict[str, int] = {}
    complete: set[str] = set()
    for record in records:
        path = record["path"]
        if record.get("error") or record.get("face") in (None, ""):
            complete.add(path)
            continue
        try:
            seen.setdefault(path, set()).add(int(record["face"]))
            expected[path] = int(record["faces"])
        except (TypeError, ValueError):
            seen.setdefault(path, set()).add(-1)  # unreadable numbers: redo the file
            expected[path] = 0
    return {path for path, faces in seen.items() if path not in complete and faces != set(range(expected[path]))}
