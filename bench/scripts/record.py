"""Write a measurement's figures into bench/results: ``<stem>.json`` (every figure) and
``<stem>.md`` (the table a reader looks at), both replaced whole; ``header`` and
``machine_line`` give the figures and the sentence every such report starts with."""

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


def header(script: str, argv: list[str] | None, what: str, machine: dict, packages) -> dict:
    """What was measured, the command that did it, when, on what, with which versions."""
    import datetime
    import os
    import sys

    from gender_cli.bench.machine import package_versions

    return {
        "what": what,
        "command": f"python bench/scripts/{script} " + " ".join(argv if argv is not None else sys.argv[1:]),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "versions": package_versions(packages),
    }


def machine_line(report: dict, shared: str = "shared") -> str:
    """The machine, its load at the start and the end (``shared`` says what that means for
    the figures) and the versions, as a report's sentence."""
    m = report["machine"]
    return (f"Machine: {m['cpu_model']}, {m['usable_cores']} cores, {m['ram_gib']} GiB; load average "
            f"{m['load_average_at_start']} at start, {report['load_average_at_end']} at the end ({shared}). Versions: "
            + ", ".join(f"{k} {v}" for k, v in report["versions"].items() if v) + ".")
