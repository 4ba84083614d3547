"""Disk written and peak memory of every verb at full size, measured on the real commands.

    python bench/scripts/measure_footprint.py [--images ../shared/data/utkface-sample] [--train 80] [--classify 200]

Runs the chain a user runs, each verb in its own child process (peak RSS from
``wait4``), in a scratch workspace: ``make-standin`` (full size) -> ``convert`` ->
``train`` (on --train real faces, half per class) -> ``export --precision int8``
-> ``classify`` (--classify faces, batch 64) -> ``bench`` (batch 64) -> ``evaluate``.
After each verb it records what the workspace and the outputs grew by. Writes
``bench/results/footprint.json`` and ``footprint.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from record import RESULTS, SHARED_FACES



def disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def run_verb(argv: list[str], env: dict, cwd: Path) -> dict:
    """Run ``gender-cli ARGV`` in a child process; its wall time and peak RSS (``wait4``)."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "gender_cli", *argv], env=env, cwd=cwd,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    streams = {}
    readers = [threading.Thread(target=lambda name=name: streams.__setitem__(name, getattr(child, name).read()))
               for name in ("stdout", "stderr")]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    for reader in readers:
        reader.join()
    code = os.waitstatus_to_exitcode(status)
    child.returncode = code
    if code not in (0, 3):
        raise SystemExit(f"gender-cli {' '.join(argv)} failed ({code}):\n{streams['stderr'][-2000:]}")
    return {"argv": argv, "exit_status": code, "wall_s": round(wall, 1),
            "peak_rss_mib": round(usage.ru_maxrss / 1024), "stdout_tail": streams["stdout"].strip().splitlines()[-3:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=SHARED_FACES)
    parser.add_argument("--train", type=int, default=80)
    parser.add_argument("--classify", type=int, default=200)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from record import record
    from gender_cli.bench.machine import cpu_model, memory_gib, package_versions
    from standin_models import subset

    steps = []
    with tempfile.TemporaryDirectory(prefix="gender-cli-footprint-") as tmp:
        work = Path(tmp)
        home = work / "home"
        env = {**os.environ, "GENDER_CLI_HOME": str(home)}
        data = _labelled_subset(args.images, work / "data", args.train)
        faces = subset(args.images, work / "faces", args.classify)
        plan = [
            ("make-standin", ["make-standin", "-o", "vgg_face.mat", "-q"], [work / "vgg_face.mat"]),
            ("convert", ["convert", "vgg_face.mat", "-q"], [home / "converted"]),
            ("train", ["train", str(data), "-q", "--batch", "16"], [home / "runs", home / "models", home / "cache"]),
            ("export int8", ["export", "--precision", "int8", "--calibration", str(faces), "-q"], [home / "models"]),
            ("classify", ["classify", str(faces), "-o", "predictions.csv", "--batch", "64", "-q"], [work / "predictions.csv"]),
            ("bench", ["bench", "--batch", "64", "--iters", "3", "--warmup", "1", "--no-variants", "-q"], []),
            ("evaluate", ["evaluate", str(data), "-o", "evaluation", "-q"], [work / "evaluation"]),
        ]
        for name, argv_, outputs in plan:
            before = {str(p): disk_bytes(p) if p.exists() else 0 for p in outputs}
            figures = run_verb(argv_, env, work)
            grown = {str(p.relative_to(work)): (disk_bytes(p) if p.exists() else 0) - before[str(p)] for p in outputs}
            figures.update(name=name, disk_written_mib={k: round(v / 2**20, 1) for k, v in grown.items()})
            steps.append(figures)
            print(f"{name}: peak {figures['peak_rss_mib']} MiB, {figures['wall_s']} s, wrote {figures['disk_written_mib']}",
                  file=sys.stderr, flush=True)
        workspace_total = round(disk_bytes(home) / 2**20, 1)

    report = {
        "what": "peak RSS and disk written per verb, full-size stand-in weights, CPU",
        "command": "python bench/scripts/measure_footprint.py " + " ".join(argv or sys.argv[1:]),
        "timestamp": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "ram_gib": memory_gib(),
                    "load_average": [round(x, 2) for x in os.getloadavg()]},
        "versions": package_versions(["onnxruntime-gpu", "onnxruntime", "tensorflow", "numpy"]),
        "steps": steps,
        "workspace_total_mib": workspace_total,
    }
    print(markdown(report))
    record(args.out, "footprint", report, markdown(report))
    return 0


def _labelled_subset(images: Path, folder: Path, count: int) -> Path:
    """``count`` UTKFace files, half of each gender (names say it: <age>_<gender>_...)."""
    folder.mkdir(parents=True)
    picked = {"0": 0, "1": 0}
    for path in sorted(images.iterdir()):
        gender = path.name.split("_")[1] if path.name.count("_") >= 3 else None
        if gender in picked and picked[gender] < count // 2:
            (folder / path.name).symlink_to(path.resolve())
            picked[gender] += 1
    return folder


def markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [
        "# Disk and memory per verb (full size)",
        "",
        f"Measured {report['timestamp']} with `{report['command'].strip()}` on {machine['cpu']} "
        f"({machine['cores']} cores, {machine['ram_gib']} GiB; load average {machine['load_average'][0]}). "
        "STAND-IN weights with the real shapes (145 M parameters); each verb in its own process.",
        "",
        "| verb | peak memory (RSS) | wall | disk written |",
        "|---|---|---|---|",
    ]
    for step in report["steps"]:
        written = ", ".join(f"{k} {v:.1f} MiB" for k, v in step["disk_written_mib"].items()) or "nothing (report on stdout)"
        lines.append(f"| `gender-cli {' '.join(step['argv'][:1])}` ({step['name']}) | {step['peak_rss_mib'] / 1024:.2f} GiB "
                     f"| {step['wall_s']:.0f} s | {written} |")
    lines += ["", f"Workspace after the whole chain: {report['workspace_total_mib']:.0f} MiB.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
