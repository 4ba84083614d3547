"""What the age head costs: the two-head graph against the gender-only one, and against
two backbone passes per image.

    python bench/scripts/measure_age_head.py [--sizes tiny full] [--batch 8] [--rounds 60 12] [--threads N]

For each network size, builds the stand-in network and exports two fp32 classifiers
from the same backbone and the same seeded gender head: gender-only, and gender + a
seeded age head (64 hidden units, softmax over the ages 0-100, expected value). Then,
on one fixed synthetic batch, CPU provider, it times rounds of one call of each mode,
back to back in an order that rotates each round, so that load from other jobs on the
shared machine hits the three alike and each round compares like with like:

* ``gender``  the gender-only graph, one run per batch;
* ``both``    the two-head graph, one run per batch (gender and age from one pass);
* ``twice``   the two-head graph run twice per batch: one backbone pass per attribute,
  as deepface's ``analyze(actions=["age", "gender"])`` runs a full VGG-Face network for
  age and another for gender.

img/s come from the median per-batch time over all rounds. The ratios are the medians
of the per-round ratios (paired: the three calls of a round ran within a second or
so of each other), with the ratio of the medians and of the fastest calls beside
them. The goal: ``both`` >= 0.98x ``gender`` (median per-round ratio).
It also checks that adding the age head leaves the gender output unchanged. Writes
``bench/results/age-head.json`` and ``age-head.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from record import RESULTS

GOAL = 0.98  # two-head img/s over gender-only img/s
WARMUP = 3
MODES = ("gender", "both", "twice")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "full"], choices=["tiny", "full"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, nargs="+", default=[60, 12],
                        help="rounds per size, in the order of --sizes (the last one repeats)")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: all cores)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from gender_cli.bench.machine import cpu_model, package_versions
    from record import record

    load_before = os.getloadavg()
    sizes = {}
    with tempfile.TemporaryDirectory(prefix="gender-cli-age-head-") as tmp:
        for i, size in enumerate(args.sizes):
            print(f"{size}: building and exporting", file=sys.stderr, flush=True)
            rounds = args.rounds[min(i, len(args.rounds) - 1)]
            sizes[size] = measure(size, Path(tmp) / size, args.batch, rounds, args.threads)
    report = {
        "what": "img/s of the two-head (gender + age) graph against the gender-only graph and "
                "against two passes per batch (deepface-style), stand-in weights, CPU provider",
        "command": "python bench/scripts/measure_age_head.py --sizes " + " ".join(args.sizes)
                   + f" --batch {args.batch} --rounds " + " ".join(str(r) for r in args.rounds)
                   + (f" --threads {args.threads}" if args.threads else ""),
        "timestamp": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": os.getloadavg()},
        "versions": package_versions(["onnxruntime-gpu", "onnxruntime", "numpy"]),
        "batch": args.batch,
        "goal": f"two-head img/s >= {GOAL} x gender-only img/s",
        "sizes": sizes,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(report)
    record(args.out, "age-head", report, text)
    print(text)
    return 0 if all(s["meets_goal"] for s in sizes.values()) else 1


def measure(size: str, work: Path, batch: int, rounds: int, threads: int | None) -> dict:
    from gender_cli.bench.bench import synthetic_batch
    from standin_models import descriptor_dim, standin_age_head, standin_head
    from gender_cli.contract import PROBABILITIES
    from gender_cli.convert.vgg_face import vgg_face_network
    from gender_cli.export.export import export
    from gender_cli.infer.session import open_session

    network = vgg_face_network(size, seed=0)
    dim = descriptor_dim(network)
    paths = {}
    for name, heads in (("gender", (standin_head,)), ("both", (standin_head, standin_age_head))):
        folder = work / f"run-{name}"
        folder.mkdir(parents=True)
        for make in heads:
            make(folder, dim)
        paths[name] = export(network, work / f"classifier-{name}.onnx", head=folder).path
    del network
    models = {name: open_session(path, device="cpu", threads=threads) for name, path in paths.items()}
    images = synthetic_batch(batch, models["gender"].info.input_size)
    gender_out = models["gender"].run(images)[PROBABILITIES]
    both_out = models["both"].run(images)
    runs = {
        "gender": lambda: models["gender"].run(images),
        "both": lambda: models["both"].run(images),
        "twice": lambda: (models["both"].run(images), models["both"].run(images)),
    }
    for run in runs.values():
        for _ in range(WARMUP):
            run()
    seconds = {mode: [] for mode in MODES}
    per_round = []
    for r in range(rounds):
        this_round = {}
        for mode in MODES[r % 3:] + MODES[: r % 3]:
            started = time.perf_counter()
            runs[mode]()
            this_round[mode] = batch / (time.perf_counter() - started)
            seconds[mode].append(batch / this_round[mode])
        per_round.append(this_round)
        if (r + 1) % max(1, rounds // 6) == 0:
            print(f"{size}: round {r + 1}/{rounds}: " + ", ".join(f"{m} {v:.1f} img/s" for m, v in this_round.items()),
                  file=sys.stderr, flush=True)
    speed = {mode: batch / float(np.median(times)) for mode, times in seconds.items()}
    fastest = {mode: batch / float(np.min(times)) for mode, times in seconds.items()}
    both_ratio = _ratios(speed, fastest, [r["both"] / r["gender"] for r in per_round], "both", "gender")
    one_pass = _ratios(speed, fastest, [r["both"] / r["twice"] for r in per_round], "both", "twice")
    return {
        "images_per_second": speed,
        "latency_ms_p50": {mode: float(np.median(times)) * 1000 for mode, times in seconds.items()},
        "rounds": rounds,
        "intra_op_threads": models["gender"].threads,
        "fastest_images_per_second": fastest,
        "two_head_vs_gender_only": both_ratio,
        "one_pass_vs_two_passes": one_pass,
        "meets_goal": bool(both_ratio["median_per_round"] >= GOAL),
        "gender_output_unchanged_max_abs_diff": float(np.abs(gender_out - both_out[PROBABILITIES]).max()),
        "age_output": {"shape": list(both_out["age"].shape), "min": float(both_out["age"].min()),
                       "max": float(both_out["age"].max())},
        "model_bytes": {name: path.stat().st_size for name, path in paths.items()},
    }


def _ratios(speed: dict, fastest: dict, per_round: list[float], top: str, bottom: str) -> dict:
    quartiles = np.percentile(per_round, [25, 75])
    return {"median_per_round": float(np.median(per_round)), "per_round_quartiles": [float(q) for q in quartiles],
            "of_medians": speed[top] / speed[bottom], "of_fastest": fastest[top] / fastest[bottom]}


def markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [
        "# The age head's cost: one pass for gender and age",
        "",
        f"Measured {report['timestamp']} with `{report['command']}` on {machine['cpu']} "
        f"({machine['cores']} cores; load average {machine['load_average_before'][0]:.2f} before, "
        f"{machine['load_average_after'][0]:.2f} after: the machine is shared). Stand-in weights "
        f"(speed only), fp32, CPU provider, batch {report['batch']}, one fixed synthetic batch; "
        "each round one call of each mode, back to back, in rotating order.",
        "",
        "| network | rounds | gender-only img/s | gender + age img/s | gender + age × gender-only: "
        "per-round median (quartiles) | of medians | of fastest | two passes img/s | one pass × two passes "
        "| goal ≥ 0.98× | gender output changed by the age head |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, s in report["sizes"].items():
        speed, ratio, one = s["images_per_second"], s["two_head_vs_gender_only"], s["one_pass_vs_two_passes"]
        q = ratio["per_round_quartiles"]
        lines.append(
            f"| {size} | {s['rounds']} | {speed['gender']:.2f} | {speed['both']:.2f} "
            f"| ×{ratio['median_per_round']:.3f} ({q[0]:.3f}–{q[1]:.3f}) | ×{ratio['of_medians']:.3f} "
            f"| ×{ratio['of_fastest']:.3f} | {speed['twice']:.2f} | ×{one['median_per_round']:.2f} "
            f"| {'met' if s['meets_goal'] else 'MISSED'} | largest Δp {s['gender_output_unchanged_max_abs_diff']:.1e} |"
        )
    lines += [
        "",
        "\"Two passes\" runs the two-head graph twice per batch: one backbone pass per attribute, "
        "the way deepface's `analyze(actions=[\"age\", \"gender\"])` runs a full VGG-Face network for "
        "age and another for gender. The age head adds a descriptor -> 64 -> 101 dense stack, a "
        "softmax and a 101-term dot product to a backbone of 15 GFLOPs per image (full size).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
