"""Measure how long ``classify --engine ray`` stalls when a node of the cluster is lost mid-run.

    python bench/scripts/measure_node_loss.py [--images ../shared/data/utkface-sample] [--files 2000] [--kill-at 0.3]

For each node-death setting (Ray's defaults, then the quick detection the slow test
uses), starts a cluster of two raylets as users do (``local_services.RayNodes``:
``ray start --head`` with 2 CPUs, ``ray start --address`` with 1), and classifies
``--files`` faces in a fresh driver process (tiny stand-in classifier, 2 inference
actors of 0.5 CPU, one per node, batch 8) twice: once undisturbed, once with every
process of the second node killed (SIGKILL) when ``--kill-at`` of the rows are written.
The driver's output is polled every 20 ms for the time each row arrived, which gives:

- the run's seconds, and how many more the run with the lost node took;
- the longest wait between two rows after the kill (the stall: Ray notices the node is
  gone, then redoes its tasks and restarts its actor on the head), and between the first
  row and the kill (the usual unevenness);
- whether every file still has exactly one row.

Writes ``bench/results/node-loss.json`` and ``node-loss.md``. The weights are a
STAND-IN: the figures are about time only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from local_services import QUICK_NODE_DEATH, RayNodes
from measure_convert import machine_info
from measure_ray import log
from record import RESULTS, SHARED_FACES, header, machine_line, record
from standin_models import standin_classifier, subset

SETTINGS = {"Ray's defaults": {}, "quick detection (the slow test's)": QUICK_NODE_DEATH}
ACTOR_TITLE = "MapBatches(Classifier)"
POLL_S = 0.02
PACKAGES = ("gender-cli", "ray", "onnxruntime", "pyarrow")


def classify_run(cluster: RayNodes, model: Path, folder: Path, out: Path, files: int,
                 kill_at: float | None) -> dict:
    """One driver run; with ``kill_at``, node 1 is killed once that share of the rows is written."""
    command = [sys.executable, "-m", "gender_cli", "classify", str(folder), "--model", str(model), "-o", str(out),
               "--engine", "ray", "--actors", "2", "--cpus-per-actor", "0.5", "--batch", "8", "-q"]
    started = time.monotonic()
    driver = subprocess.Popen(command, env=cluster.environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    arrivals: list[tuple[float, int]] = []  # (seconds since start, rows written)
    killed_at = None
    actor_on_node = None
    while driver.poll() is None:
        rows = out.read_bytes().count(b"\n") - 1 if out.exists() else 0  # less the CSV header
        now = time.monotonic() - started
        if not arrivals or rows > arrivals[-1][1]:
            arrivals.append((now, rows))
        if kill_at is not None and killed_at is None and rows >= kill_at * files:
            actor_on_node = any(ACTOR_TITLE in command for command in cluster.processes(1).values())
            cluster.kill(1)
            killed_at = (now, rows)
        time.sleep(POLL_S)
    seconds = time.monotonic() - started
    if driver.returncode != 0:
        raise RuntimeError(f"classify exited with {driver.returncode}: {driver.stderr.read()}")
    lines = out.read_text().splitlines()[1:]
    paths = [line.split(",", 1)[0] for line in lines]
    first = next(t for t, rows in arrivals if rows > 0)  # start-up before it: the actors load the model
    result = {"seconds": seconds, "rows": len(lines), "files_with_one_row": len(set(paths)) == len(paths) == files,
              "first_row_s": first, "longest_gap_s": _longest_gap(arrivals, first, seconds)}
    if killed_at is not None:
        result.update({
            "killed_at_s": killed_at[0], "rows_at_kill": killed_at[1], "actor_on_lost_node": actor_on_node,
            "longest_gap_before_kill_s": _longest_gap(arrivals, first, killed_at[0]),
            "longest_gap_after_kill_s": _longest_gap(arrivals, killed_at[0], seconds),
            "first_row_after_kill_s": next((t - killed_at[0] for t, rows in arrivals
                                            if t > killed_at[0] and rows > killed_at[1]), None),
        })
    return result


def _longest_gap(arrivals: list[tuple[float, int]], since: float, until: float) -> float:
    """The longest time without a new row between ``since`` and ``until`` (the run's end)."""
    times = [since] + [t for t, _ in arrivals if since < t <= until] + [until]
    return max(b - a for a, b in zip(times, times[1:]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=SHARED_FACES, help="face crops to classify")
    parser.add_argument("--files", type=int, default=2000, help="how many of them (evenly spread)")
    parser.add_argument("--kill-at", type=float, default=0.3, help="share of the rows written when the node dies")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    machine = machine_info()

    runs = {}
    with tempfile.TemporaryDirectory(prefix="measure-node-loss-") as tmp:
        work = Path(tmp)
        log("building the tiny stand-in classifier")
        model = standin_classifier("tiny", work / "home")
        folder = subset(args.images, work / "faces", args.files)
        files = len(os.listdir(folder))
        for name, settings in SETTINGS.items():
            with RayNodes(head_cpus=2, settings=settings) as cluster:
                cluster.add_node(cpus=1)
                pair = {"load_average_before": [round(x, 2) for x in os.getloadavg()]}
                for label, kill_at in (("undisturbed", None), ("node lost", args.kill_at)):
                    log(f"{name}: {label}")
                    pair[label] = classify_run(cluster, model, folder, work / f"{len(runs)}-{label}.csv", files,
                                               kill_at)
                    log(f"  {pair[label]['seconds']:.1f} s")
            pair["extra_seconds"] = pair["node lost"]["seconds"] - pair["undisturbed"]["seconds"]
            runs[name] = pair

    result = {
        **header("measure_node_loss.py", argv, "classify --engine ray on two raylets, the second node killed mid-run: "
                 "the stall and the rows", machine, PACKAGES),
        "input": {"folder": str(args.images), "files": files, "batch": 8, "kill_at": args.kill_at,
                  "cluster": "head 2 CPUs + node 1 CPU, 2 inference actors of 0.5 CPU",
                  "settings": {name: settings for name, settings in SETTINGS.items()}},
        "runs": runs,
    }
    record(args.out, "node-loss", result, markdown(result))
    print(markdown(result))
    return 0


def markdown(r: dict) -> str:
    lines = [
        "# A node lost mid-run (`classify --engine ray`, two raylets)",
        "",
        f"`{r['command'].strip()}` at {r['timestamp']}. {r['input']['files']} UTKFace crops, tiny STAND-IN "
        f"classifier, batch {r['input']['batch']}, {r['input']['cluster']} (one per node); in the second run "
        f"every process of the second node gets SIGKILL once {r['input']['kill_at']:.0%} of the rows are written.",
        "",
        machine_line(r),
        "",
        "| node death noticed with | run | seconds | first row at s | longest wait for a row: before the kill | "
        "after it | first row after the kill | every file once |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, pair in r["runs"].items():
        calm, lost = pair["undisturbed"], pair["node lost"]
        lines.append(f"| {name} | undisturbed | {calm['seconds']:.1f} | {calm['first_row_s']:.1f} | "
                     f"{calm['longest_gap_s']:.1f} | | | "
                     f"{'yes' if calm['files_with_one_row'] else 'NO'} |")
        lines.append(
            f"| {name} | node lost at {lost['killed_at_s']:.1f} s ({lost['rows_at_kill']} rows"
            f"{', an inference actor on it' if lost['actor_on_lost_node'] else ''}) | {lost['seconds']:.1f} "
            f"({pair['extra_seconds']:+.1f}) | {lost['first_row_s']:.1f} | {lost['longest_gap_before_kill_s']:.1f} | "
            f"{lost['longest_gap_after_kill_s']:.1f} | {lost['first_row_after_kill_s']:.1f} | "
            f"{'yes' if lost['files_with_one_row'] else 'NO'} |"
        )
    settings = "; ".join(f"{name}: " + (", ".join(f"{k}={v}" for k, v in s.items()) or "none set")
                         for name, s in r["input"]["settings"].items())
    lines += ["", f"Settings of the raylets: {settings}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
