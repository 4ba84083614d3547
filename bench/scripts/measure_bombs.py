"""Measure how the weights readers answer files that declare far more than they hold.

Each bomb (``tests/helpers_bombs.py``: kilobytes that declare gigabytes) goes through the
real command, ``python -m gender_cli inspect BOMB``, in a child process; its wall time
and peak resident memory (``wait4``'s rusage: the child's own) are recorded with the
one line it printed and its exit status, in ``bench/results/bombs.json`` and ``.md``.

    python bench/scripts/measure_bombs.py              # after the fix
    python bench/scripts/measure_bombs.py --name bombs-before --cap-gib 3   # on older code: cap the address space

Goals (issue 20): one line, exit status 1, at most 10 s and 600 MB for each bomb.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure_convert import machine_info
from record import RESULTS, record

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from helpers_bombs import (  # noqa: E402
    write_keras_declared, write_v5_inflating, write_v5_many_cells, write_v73_declared,
)

GIB = 1 << 30
GOAL_SECONDS, GOAL_MB = 10.0, 600.0
BOMBS = {
    "MAT v5, a 1 GiB variable other than the network (1.0 MB file)": ("junk.mat", lambda p: write_v5_inflating(p, "junk", GIB)),
    "MAT v5, 'net' declaring 2 GiB (2.0 MB)": ("declares.mat", lambda p: write_v5_inflating(p, "net", 2 * GIB - (1 << 24))),
    "MAT v5, 'net' inflating 1 GiB of zeros (1.0 MB)": ("inflates.mat", lambda p: write_v5_inflating(p, "net", GIB - (1 << 24))),
    "MAT v5, 'layers' declaring 2e9 cells (184 bytes)": ("cells.mat", write_v5_many_cells),
    "MAT v7.3, a 40000x40000 double never written (1.9 KB)": ("v73.mat", write_v73_declared),
    "MAT v7.3, an 8000x8000 double never written (1.9 KB)": ("small.mat", lambda p: write_v73_declared(p, shape=(8000, 8000))),
    "Keras HDF5, a 40000x40000 kernel never written (3.6 KB)": ("keras.h5", write_keras_declared),
}


def measure(path: Path, cap_gib: float | None) -> dict:
    def capped() -> None:
        if cap_gib:
            limit = int(cap_gib * GIB)
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "gender_cli", "inspect", str(path)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, preexec_fn=capped)
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    lines = stderr.strip().splitlines()
    return {
        "file_bytes": path.stat().st_size,
        "exit_status": os.waitstatus_to_exitcode(status),
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "lines": len(lines),
        "last_line": (lines[-1] if lines else "")[:300],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="bombs")
    parser.add_argument("--cap-gib", type=float, default=None, help="cap the child's address space (old code)")
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for title, (name, write) in BOMBS.items():
            path = write(Path(tmp) / name)
            rows[title] = measure(path, args.cap_gib)
            print(title, rows[title], file=sys.stderr)
    met = all(r["exit_status"] == 1 and r["lines"] == 1 and r["seconds"] <= GOAL_SECONDS
              and r["peak_rss_mb"] <= GOAL_MB for r in rows.values())
    report = {"goal": {"seconds": GOAL_SECONDS, "peak_rss_mb": GOAL_MB, "lines": 1, "exit_status": 1},
              "machine": machine_info(), "bombs": rows, "met": met}
    table = ["| bomb | exit | s | peak MB | lines | the line |", "| --- | --- | --- | --- | --- | --- |"]
    for title, r in rows.items():
        line = r["last_line"].replace("|", "\\|").split(": ", 2)[-1]
        table.append(f"| {title} | {r['exit_status']} | {r['seconds']} | {r['peak_rss_mb']} | {r['lines']} | {line} |")
    markdown = "\n".join([
        "# Weights files that declare far more than they hold",
        "",
        f"`python bench/scripts/measure_bombs.py{f' --cap-gib {args.cap_gib:g}' if args.cap_gib else ''}`: "
        "`gender-cli inspect BOMB` in a child process, its own peak RSS.",
        "",
        f"Machine: {report['machine']['cpu_model']}, {report['machine']['usable_cores']} usable cores; load average "
        f"at start {report['machine']['load_average_at_start']} (shared machine).",
        "",
        *table,
        "",
        f"Goals: exit 1, one line, ≤ {GOAL_SECONDS:g} s, ≤ {GOAL_MB:g} MB: **{'met' if met else 'not met'}**.",
        "",
    ])
    print(record(RESULTS, args.name, report, markdown))


if __name__ == "__main__":
    main()
