"""How fast ``gender-cli classify`` answers Ctrl-C, measured on the real command.

    python bench/scripts/measure_interrupt.py [--size full] [--batch 8] [--images DIR] [--repeat 5]

Builds the stand-in classifier of ``--size`` in a scratch workspace, then, ``--repeat``
times: starts ``gender-cli classify`` over ``--files`` images in a child process, waits
until its first rows are on disk, waits a little more so that the signal lands in the
middle of a batch, sends SIGINT and times how long the process takes to exit. Each
run checks the exit status (130), the ``--resume`` hint, and that every row on disk is
complete; the last run is then resumed to the end and every file must appear once.
Writes ``bench/results/interrupt.json`` and ``interrupt.md``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import RESULTS, SHARED_FACES

DELAYS = (0.1, 0.4, 0.7, 1.0, 1.3)  # seconds after the first rows land, spread over a batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="full", choices=["tiny", "full"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--images", type=Path, default=SHARED_FACES)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from record import record
    from gender_cli.bench.machine import cpu_model, package_versions
    from standin_models import standin_classifier, subset

    with tempfile.TemporaryDirectory(prefix="gender-cli-interrupt-") as tmp:
        work = Path(tmp)
        model = standin_classifier(args.size, work / "home")
        folder = subset(args.images, work / "images", args.files)
        runs = [_interrupted_run(model, folder, work / f"run{i}.csv", args.batch, delay) for i, delay in enumerate(DELAYS)]
        resumed = _resume(model, folder, work / f"run{len(DELAYS) - 1}.csv", args.batch)

    seconds = sorted(run["seconds_to_exit"] for run in runs)
    report = {
        "what": "seconds from SIGINT to the exit of gender-cli classify (stand-in classifier, CPU)",
        "command": f"python bench/scripts/measure_interrupt.py --size {args.size} --batch {args.batch} --files {args.files}",
        "timestamp": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average": os.getloadavg()},
        "versions": package_versions(["onnxruntime-gpu", "onnxruntime", "numpy", "pillow"]),
        "size": args.size,
        "batch": args.batch,
        "files": args.files,
        "runs": runs,
        "seconds_to_exit_max": seconds[-1],
        "seconds_to_exit_median": seconds[len(seconds) // 2],
        "goal_seconds": 2.0,
        "meets_goal": seconds[-1] <= 2.0 and all(run["ok"] for run in runs),
        "resumed": resumed,
    }
    print(_markdown(report))
    record(args.out, "interrupt", report, _markdown(report))
    return 0


def _command(model: Path, folder: Path, out: Path, batch: int) -> list[str]:
    return [sys.executable, "-m", "gender_cli", "classify", str(folder), "--model", str(model),
            "-o", str(out), "--batch", str(batch), "--device", "cpu", "-q"]


def _rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _interrupted_run(model: Path, folder: Path, out: Path, batch: int, delay: float) -> dict:
    started = time.perf_counter()
    process = subprocess.Popen(_command(model, folder, out, batch), stderr=subprocess.PIPE, text=True)
    while not _rows(out):
        if process.poll() is not None:
            raise SystemExit(f"classify ended before it could be interrupted: {process.stderr.read()}")
        time.sleep(0.01)
    first_rows = time.perf_counter() - started
    time.sleep(delay)
    sent = time.perf_counter()
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=120)
    seconds = time.perf_counter() - sent
    stderr = process.stderr.read()
    rows = _rows(out)
    complete = all(row["error"] or row["label"] in ("male", "female") for row in rows)
    return {
        "delay_after_first_rows_s": delay,
        "first_rows_after_s": round(first_rows, 2),
        "seconds_to_exit": round(seconds, 3),
        "exit_status": code,
        "resume_hint": "--resume" in stderr,
        "rows_on_disk": len(rows),
        "rows_complete": complete,
        "ok": code == 130 and "--resume" in stderr and complete,
    }


def _resume(model: Path, folder: Path, out: Path, batch: int) -> dict:
    before = len(_rows(out))
    code = subprocess.run([*_command(model, folder, out, batch), "--resume"], capture_output=True).returncode
    rows = _rows(out)
    paths = [row["path"] for row in rows]
    expected = sorted(str(p) for p in folder.iterdir())
    return {
        "rows_before": before,
        "exit_status": code,
        "rows_after": len(rows),
        "every_file_once": sorted(paths) == expected,
    }


def _markdown(report: dict) -> str:
    lines = [
        "# Ctrl-C during `gender-cli classify`",
        "",
        f"Measured {report['timestamp']} with `{report['command']}` on {report['machine']['cpu']} "
        f"({report['machine']['cores']} cores, load average {report['machine']['load_average'][0]:.2f}). "
        f"{report['size']} stand-in classifier (STAND-IN weights: speed only), batch {report['batch']}, CPU provider.",
        "",
        "| SIGINT sent after the first rows | seconds to exit | exit status | --resume hint | rows on disk, all complete |",
        "|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        lines.append(
            f"| +{run['delay_after_first_rows_s']:.1f} s | {run['seconds_to_exit']:.2f} | {run['exit_status']} | "
            f"{'yes' if run['resume_hint'] else 'NO'} | {run['rows_on_disk']}, {'yes' if run['rows_complete'] else 'NO'} |"
        )
    resumed = report["resumed"]
    lines += [
        "",
        f"Slowest exit {report['seconds_to_exit_max']:.2f} s, median {report['seconds_to_exit_median']:.2f} s "
        f"(goal: within {report['goal_seconds']:.0f} s): {'met' if report['meets_goal'] else 'NOT met'}.",
        f"`--resume` after the last interruption: {resumed['rows_before']} rows kept, exit {resumed['exit_status']}, "
        f"{resumed['rows_after']} rows, every file exactly once: {'yes' if resumed['every_file_once'] else 'NO'}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
