"""What the age head costs: the two-head graph against the gender-only one, and against
two backbone passes per image.

    python bench/measure_age_head.py [--sizes tiny full] [--batch 8] [--rounds 9] [--iters 3]

For each network size, builds the stand-in network and exports two fp32 classifiers
from the same backbone and the same seeded gender head: gender-only, and gender + a
seeded age head (64 hidden units, softmax over the ages 0-100, expected value). Then,
on one fixed synthetic batch, CPU provider, it times in interleaved rounds (the order
rotating each round, so a burst of load on the shared machine hits all three alike):

* ``gender``  the gender-only graph, one run per batch;
* ``both``    the two-head graph, one run per batch (gender and age from one pass);
* ``twice``   the two-head graph run twice per batch: one backbone pass per attribute,
  as deepface's ``analyze(actions=["age", "gender"])`` runs a full VGG-Face network for
  age and another for gender.

img/s come from the median per-batch time over all rounds, and the ratios from those
medians; the ratios of the fastest runs (the least disturbed by other load) and the
range of the per-round ratios are given beside them. The goal: ``both`` >= 0.98x
``gender`` (ratio of the medians).
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

HERE = Path(__file__).resolve().parent
GOAL = 0.98  # two-head img/s over gender-only img/s
WARMUP = 3
MODES = ("gender", "both", "twice")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "full"], choices=["tiny", "full"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--iters", type=int, default=3, help="timed runs per mode and round")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)

    from gender_cli.atomic import write_json_atomically
    from gender_cli.bench.machine import cpu_model, package_versions

    load_before = os.getloadavg()
    sizes = {}
    with tempfile.TemporaryDirectory(prefix="gender-cli-age-head-") as tmp:
        for size in args.sizes:
            print(f"{size}: building and exporting", file=sys.stderr, flush=True)
            sizes[size] = measure(size, Path(tmp) / size, args.batch, args.rounds, args.iters)
    report = {
        "what": "img/s of the two-head (gender + age) graph against the gender-only graph and "
                "against two passes per batch (deepface-style), stand-in weights, CPU provider",
        "command": "python bench/measure_age_head.py --sizes " + " ".join(args.sizes)
                   + f" --batch {args.batch} --rounds {args.rounds} --iters {args.iters}",
        "timestamp": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": os.getloadavg()},
        "versions": package_versions(["onnxruntime-gpu", "onnxruntime", "numpy"]),
        "batch": args.batch,
        "goal": f"two-head img/s >= {GOAL} x gender-only img/s",
        "sizes": sizes,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomically(args.out / "age-head.json", report)
    text = markdown(report)
    (args.out / "age-head.md").write_text(text)
    print(text)
    return 0 if all(s["meets_goal"] for s in sizes.values()) else 1


def measure(size: str, work: Path, batch: int, rounds: int, iters: int) -> dict:
    from gender_cli.bench.bench import synthetic_batch
    from gender_cli.bench.standin_models import descriptor_dim, standin_age_head, standin_head
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
    models = {name: open_session(path, device="cpu") for name, path in paths.items()}
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
        order = MODES[r % 3:] + MODES[: r % 3]
        this_round = {}
        for mode in order:
            times = []
            for _ in range(iters):
                started = time.perf_counter()
                runs[mode]()
                times.append(time.perf_counter() - started)
            seconds[mode] += times
            this_round[mode] = batch / float(np.median(times))
        per_round.append(this_round)
        print(f"{size}: round {r + 1}/{rounds}: " + ", ".join(f"{m} {v:.1f} img/s" for m, v in this_round.items()),
              file=sys.stderr, flush=True)
    speed = {mode: batch / float(np.median(times)) for mode, times in seconds.items()}
    fastest = {mode: batch / float(np.min(times)) for mode, times in seconds.items()}
    both_ratio = _ratios(speed, fastest, [r["both"] / r["gender"] for r in per_round], "both", "gender")
    one_pass = _ratios(speed, fastest, [r["both"] / r["twice"] for r in per_round], "both", "twice")
    return {
        "images_per_second": speed,
        "latency_ms_p50": {mode: float(np.median(times)) * 1000 for mode, times in seconds.items()},
        "timed_runs_per_mode": rounds * iters,
        "fastest_images_per_second": fastest,
        "two_head_vs_gender_only": both_ratio,
        "one_pass_vs_two_passes": one_pass,
        "meets_goal": bool(both_ratio["of_medians"] >= GOAL),
        "gender_output_unchanged_max_abs_diff": float(np.abs(gender_out - both_out[PROBABILITIES]).max()),
        "age_output": {"shape": list(both_out["age"].shape), "min": float(both_out["age"].min()),
                       "max": float(both_out["age"].max())},
        "model_bytes": {name: path.stat().st_size for name, path in paths.items()},
    }


def _ratios(speed: dict, fastest: dict, per_round: list[float], top: str, bottom: str) -> dict:
    return {"of_medians": speed[top] / speed[bottom], "of_fastest": fastest[top] / fastest[bottom],
            "per_round_min": float(min(per_round)), "per_round_max": float(max(per_round))}


def markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [
        "# The age head's cost: one pass for gender and age",
        "",
        f"Measured {report['timestamp']} with `{report['command']}` on {machine['cpu']} "
        f"({machine['cores']} cores; load average {machine['load_average_before'][0]:.2f} before, "
        f"{machine['load_average_after'][0]:.2f} after: the machine is shared). Stand-in weights "
        f"(speed only), fp32, CPU provider, batch {report['batch']}, one fixed synthetic batch; "
        "modes interleaved in rotating order each round.",
        "",
        "| network | gender-only img/s | gender + age img/s (× gender-only) | fastest runs × "
        "| per-round range × | two passes img/s (one pass ×) | goal ≥ 0.98× | gender output changed by the age head |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, s in report["sizes"].items():
        speed, ratio, one = s["images_per_second"], s["two_head_vs_gender_only"], s["one_pass_vs_two_passes"]
        lines.append(
            f"| {size} | {speed['gender']:.1f} | {speed['both']:.1f} (×{ratio['of_medians']:.3f}) "
            f"| ×{ratio['of_fastest']:.3f} | {ratio['per_round_min']:.2f}–{ratio['per_round_max']:.2f} "
            f"| {speed['twice']:.1f} (×{one['of_medians']:.2f}) | {'met' if s['meets_goal'] else 'MISSED'} "
            f"| largest Δp {s['gender_output_unchanged_max_abs_diff']:.1e} |"
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
