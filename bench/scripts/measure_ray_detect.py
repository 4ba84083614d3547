"""Measure ``classify --detect`` on Ray against the local engine, on one machine, in one run.

    python bench/scripts/measure_ray_detect.py [--photos 200] [--per-photo 2] [--batch 8] [--rounds 2] [--size full]

Pastes ``--per-photo`` shared UTKFace faces into each of ``--photos`` generated 640x480
photos (``core/photos.py``, seed 0), builds the stand-in classifier of ``--size``, and
for each round classifies the photos with the local engine and with a fresh local Ray
(the engines alternate, so a change in the shared machine's load hits both). Reports
photos/s as each summary gives it (Ray's start-up apart), faces found, and whether the
two engines wrote the same rows (sorted by path and face). Writes
``bench/results/ray-detect.json`` and ``.md``; STAND-IN weights, speed only.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import statistics
import sys
import tempfile
from pathlib import Path

from gender_cli.bench.machine import package_versions
from measure_convert import machine_info
from record import RESULTS, SHARED_FACES, record

PACKAGES = ("gender-cli", "ray", "onnxruntime", "onnxruntime-gpu", "opencv-python-headless", "numpy")


def run(engine: str, model_path: Path, folder: Path, out: Path, batch: int) -> dict:
    from gender_cli.infer.detect import FaceSettings

    from gender_cli.infer.classify import classify
    from gender_cli.infer.request import ClassifyRequest

    summary = classify(ClassifyRequest([folder], model=model_path, output=str(out), batch=batch,
                                       detect=FaceSettings(), engine=engine))
    return {
        "load_average_before": None,
        "photos": summary.files,
        "faces": summary.faces,
        "no_face": summary.errors.get("no_face", 0),
        "seconds": summary.seconds,
        "photos_per_second": summary.images_per_second,
        "startup_s": summary.cluster.startup_seconds if summary.cluster else 0.0,
    }


def sorted_rows(path: Path) -> list[tuple]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return sorted((r["path"], r["face"], r["box"], r["label"], round(float(r["p_male"] or "nan"), 5)) for r in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=SHARED_FACES)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--per-photo", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", choices=["tiny", "full"], default="full")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from standin_models import standin_classifier
    from gender_cli.photos import write_photos

    rounds = []
    with tempfile.TemporaryDirectory(prefix="measure-ray-detect-") as tmp:
        work = Path(tmp)
        faces = sorted(p for p in args.faces.iterdir() if p.is_file())[: args.photos * args.per_photo]
        write_photos(faces, work / "photos", per_photo=args.per_photo, seed=0)
        model_path = standin_classifier(args.size, work / "home")
        for index in range(args.rounds):
            pair = {}
            for engine in ("local", "ray"):
                load = [round(x, 2) for x in os.getloadavg()]
                print(f"round {index + 1}: {engine} (load {load[0]})", file=sys.stderr, flush=True)
                pair[engine] = run(engine, model_path, work / "photos", work / f"{engine}-{index}.csv", args.batch)
                pair[engine]["load_average_before"] = load
            pair["ratio"] = pair["ray"]["photos_per_second"] / pair["local"]["photos_per_second"]
            pair["same_rows"] = sorted_rows(work / f"local-{index}.csv") == sorted_rows(work / f"ray-{index}.csv")
            rounds.append(pair)

    result = {
        "what": "classify --detect (opencv) on --engine ray vs --engine local, same machine, same run",
        "command": "python bench/scripts/measure_ray_detect.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "versions": package_versions(PACKAGES),
        "input": {"photos": args.photos, "faces_per_photo": args.per_photo, "batch": args.batch, "classifier": args.size},
        "rounds": rounds,
        "median_ratio": statistics.median(r["ratio"] for r in rounds),
    }
    record(args.out, "ray-detect", result, markdown(result))
    print(markdown(result))
    return 0


def markdown(r: dict) -> str:
    machine, given = r["machine"], r["input"]
    lines = [
        "# classify --detect: --engine ray vs --engine local (one machine)",
        "",
        f"`{r['command'].strip()}` at {r['timestamp']}: {given['classifier']} stand-in classifier (speed only), "
        f"{given['photos']} generated 640x480 photos with {given['faces_per_photo']} shared UTKFace faces each, "
        f"opencv detector, batch {given['batch']}. Machine: {machine['cpu_model']}, {machine['logical_cores']} cores; "
        f"load average at the end {r['load_average_at_end']} (shared machine: compare within a round).",
        "",
        "| round | engine | photos/s | faces found | photos without a face | Ray start-up s (not in photos/s) "
        "| load before | same rows as local |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for number, pair in enumerate(r["rounds"], 1):
        for engine in ("local", "ray"):
            run_ = pair[engine]
            lines.append(
                f"| {number} | {engine} | {run_['photos_per_second']:.2f} | {run_['faces']} | {run_['no_face']} | "
                f"{run_['startup_s']:.1f} | {run_['load_average_before'][0]} | "
                f"{'' if engine == 'local' else ('yes' if pair['same_rows'] else 'NO')} |"
            )
        lines.append(f"| {number} | ray ÷ local | ×{pair['ratio']:.2f} | | | | | |")
    lines += ["", f"Median Ray ÷ local: ×{r['median_ratio']:.2f}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
