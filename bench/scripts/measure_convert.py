"""Measure ``gender-cli convert`` on a full-size network: wall time, peak memory, disk written.

Runs the real command (``python -m gender_cli convert``) in a child process (so the
imports, reading the weights file and saving every output all count), takes the
child's peak resident memory from ``wait4``'s rusage (file pages it maps count too),
times each step from the progress lines it prints, and writes
``bench/results/<name>.json`` and ``<name>.md`` with the machine and versions.

    python bench/scripts/measure_convert.py                         # a full-size .mat stand-in first
    python bench/scripts/measure_convert.py --format caffe --name convert-caffe
    python bench/scripts/measure_convert.py --keras --name convert-keras   # also model.keras
    python bench/scripts/measure_convert.py --weights vgg_face.mat --repeat 3

Targets (issues 3 and 10): at most 20 s and 3 GiB peak RSS on 2 cores, for every format.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from gender_cli.bench.machine import cpu_model, memory_gib, package_versions
from record import RESULTS

TARGET_SECONDS = 20.0
TARGET_PEAK_GIB = 3.0
STEPS = ("reading weights", "saving layer table", "saving head", "building Keras model", "saving Keras model")
PACKAGES = ("gender-cli", "tensorflow", "keras", "numpy", "scipy", "h5py", "protobuf", "click")


def machine_info() -> dict:
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gib": memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def versions() -> dict:
    return package_versions(PACKAGES)


def make_standin(folder: Path, fmt: str, layout: str | None, mat_version: str) -> tuple[Path, float]:
    from gender_cli.convert.formats import FORMATS
    from gender_cli.convert.standin import make_standin

    started = time.perf_counter()
    path = make_standin(folder / FORMATS[fmt].default_file, size="full", layout=layout,
                        mat_version=mat_version, format=fmt)
    return path, time.perf_counter() - started


def run_convert_once(weights: Path, work: Path, extra: list[str]) -> dict:
    """One ``gender-cli convert`` in a child process, measured from outside."""
    out_dir = work / "converted"
    env = {**os.environ, "GENDER_CLI_HOME": str(work / "home")}
    command = [sys.executable, "-m", "gender_cli", "convert", str(weights), "-o", str(out_dir), *extra]
    step_times: dict[str, float] = {}
    stderr_lines: list[str] = []

    load_before = round(os.getloadavg()[0], 2)
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def read_stderr():
        for line in child.stderr:
            stderr_lines.append(line)
            step = line.strip().removesuffix(" ...")
            if step in STEPS:
                step_times[step] = time.perf_counter() - started

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    stdout = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=5)

    marks = [("start", 0.0)] + [(s, step_times[s]) for s in STEPS if s in step_times] + [("exit", wall)]
    phases = {"python start + imports": round(marks[1][1], 2)} if len(marks) > 2 else {}
    for (name, t0), (_, t1) in zip(marks[1:-1], marks[2:]):
        phases[name] = round(t1 - t0, 2)
    outputs = {}
    if out_dir.is_dir():
        outputs = {
            f"{p.name}_mib": round(sum(f.stat().st_size for f in ([p] if p.is_file() else p.rglob("*"))
                                       if f.is_file()) / 2**20, 1)
            for p in sorted(out_dir.iterdir())
        }
    return {
        "exit_code": child.returncode,
        "load_average_1min_before": load_before,
        "wall_s": round(wall, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux: ru_maxrss is in KiB
        "user_cpu_s": round(usage.ru_utime, 2),
        "system_cpu_s": round(usage.ru_stime, 2),
        "phases_s": phases,
        "outputs": outputs,
        "summary": stdout.strip(),
        "stderr_tail": "".join(stderr_lines[-5:]).strip() if child.returncode else "",
    }


def write_markdown(result: dict, path: Path) -> None:
    m, best = result["machine"], result["best"]
    lines = [
        "# `gender-cli convert` — full-size measurement",
        "",
        f"Input: {result['input']['description']} ({result['input']['size_mib']} MiB).",
        f"Command: `{result['command']}`.",
        f"Machine: {m['cpu_model']}, {m['usable_cores']} usable of {m['logical_cores']} logical cores, "
        f"{m['ram_gib']} GiB RAM; load average at start {m['load_average_at_start']} "
        "(shared machine: other jobs may have been running).",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items() if v) + ".",
        "",
        "| run | wall (s) | peak RSS (MiB) | user CPU (s) | sys CPU (s) | load avg before |",
        "|---|---|---|---|---|---|",
    ]
    for i, run in enumerate(result["runs"], 1):
        lines.append(
            f"| {i} | {run['wall_s']} | {run['peak_rss_mib']} | {run['user_cpu_s']} | "
            f"{run['system_cpu_s']} | {run['load_average_1min_before']} |"
        )
    lines += [
        "",
        f"Targets: ≤ {TARGET_SECONDS:g} s and ≤ {TARGET_PEAK_GIB:g} GiB "
        f"({TARGET_PEAK_GIB * 1024:g} MiB). Median wall {result['median_wall_s']} s, "
        f"highest peak {result['max_peak_rss_mib']} MiB: "
        f"**{'met' if result['meets_targets'] else 'NOT met'}**.",
        "",
        "Steps of the fastest run (from the progress lines on stderr):",
        "",
        "| step | seconds |",
        "|---|---|",
    ]
    lines += [f"| {name} | {seconds} |" for name, seconds in best["phases_s"].items()]
    lines += ["", f"Outputs: {best['outputs']}", ""]
    path.write_text("\n".join(lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    from gender_cli.convert.standin import STANDIN_LAYOUTS

    parser.add_argument("--weights", type=Path, help="weights file to convert (default: a fresh full-size stand-in)")
    parser.add_argument("--format", default="mat", choices=list(STANDIN_LAYOUTS), help="stand-in format")
    parser.add_argument("--layout", default=None, help="stand-in layout (default: the format's first)")
    parser.add_argument("--mat-version", default="5", choices=("5", "7.3"), help="stand-in MAT version")
    parser.add_argument("--keras", action="store_true", help="convert --keras (also write model.keras)")
    parser.add_argument("--repeat", type=int, default=1, help="number of measured converts")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the results")
    parser.add_argument("--name", default="convert", help="results file stem (NAME.json, NAME.md)")
    args = parser.parse_args(argv)
    machine = machine_info()  # before the runs, so the load average is the starting one

    with tempfile.TemporaryDirectory(prefix="measure-convert-") as tmp:
        tmp = Path(tmp)
        if args.weights is None:
            layout = args.layout or STANDIN_LAYOUTS[args.format][0]
            print(f"writing a full-size {args.format} stand-in ...", file=sys.stderr)
            weights, standin_seconds = make_standin(tmp, args.format, layout, args.mat_version)
            version = f", MAT v{args.mat_version}" if args.format == "mat" else ""
            description = f"full-size {args.format} stand-in, {layout} layout{version}"
        else:
            weights, standin_seconds = args.weights.resolve(), None
            description = str(weights)
        extra = ["--keras"] if args.keras else []
        description += " (convert --keras)" if args.keras else ""
        runs = []
        for i in range(args.repeat):
            print(f"convert run {i + 1}/{args.repeat} ...", file=sys.stderr)
            work = tmp / f"run{i}"
            work.mkdir()
            runs.append(run_convert_once(weights, work, extra))
            print(f"  {runs[-1]['wall_s']} s, peak {runs[-1]['peak_rss_mib']} MiB", file=sys.stderr)
        size_mib = round(weights.stat().st_size / 2**20, 1)

    ok_runs = [r for r in runs if r["exit_code"] == 0]
    best = min(ok_runs or runs, key=lambda r: r["wall_s"])
    median_wall = round(statistics.median(r["wall_s"] for r in runs), 2)
    max_peak = max(r["peak_rss_mib"] for r in runs)
    result = {
        "what": "gender-cli convert, full-size VGG-Face, child process measured from outside",
        "machine": machine,
        "versions": versions(),
        "command": "python bench/scripts/measure_convert.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "input": {"description": description, "size_mib": size_mib, "standin_write_s": standin_seconds},
        "targets": {"wall_s": TARGET_SECONDS, "peak_rss_gib": TARGET_PEAK_GIB},
        "runs": runs,
        "best": best,
        "median_wall_s": median_wall,
        "max_peak_rss_mib": max_peak,
        "meets_targets": bool(
            len(ok_runs) == len(runs) and median_wall <= TARGET_SECONDS and max_peak <= TARGET_PEAK_GIB * 1024
        ),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(result, args.results / f"{args.name}.md")
    print(json.dumps({k: result[k] for k in ("median_wall_s", "max_peak_rss_mib", "meets_targets")}))
    return 0 if ok_runs else 1


if __name__ == "__main__":
    sys.exit(main())
