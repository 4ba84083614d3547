"""Write a measurement's figures into bench/results: ``<stem>.json`` (every figure) and
``<stem>.md`` (the table a reader looks at), both replaced whole."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results"  # bench/results
SHARED_FACES = Path(__file__).resolve().parents[3] / "shared" / "data" / "utkface-sample"  # ../shared beside the clone


def linked_subset(folder: Path, files: list[Path]) -> Path:
    """``folder`` holding links to ``files``: a subset of a data set without copying it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        (folder / f.name).symlink_to(f)
    return folder


def timed(run, count: int) -> tuple[float, float]:
    """(wall seconds, process CPU seconds per item) of one call of ``run`` over ``count`` items."""
    import time

    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, (time.process_time() - cpu) / count


def record(folder: Path, stem: str, report: dict, markdown: str) -> Path:
    from gender_cli.atomic import write_bytes_atomically, write_json_atomically

    folder = Path(folder)
    write_json_atomically(folder / f"{stem}.json", report)
    write_bytes_atomically(folder / f"{stem}.md", markdown.encode("utf-8"))
    return folder / f"{stem}.md"
