"""Run the standard benchmark matrix on this machine and tabulate it.

    python bench/scripts/run_matrix.py [--sizes tiny,full] [--images ../shared/data/utkface-sample]

For each stand-in network size it builds a scratch workspace (the layer table, a
seeded stand-in head, fp32/fp16/int8 classifiers exported with
``gender_cli.export.export.export``), then runs ``bench`` for each batch
size: model-only, end-to-end over the image folder (a subset for the full-size
network), the precision variants side by side, and TensorFlow/Keras on the same
weights at one batch size. Each run is written to ``bench/results/bench-<size>-b<batch>.json``
and all of them are tabulated in ``bench/results/README.md``.

Everything here is made from STAND-IN (random) weights: the figures are about speed,
never about accuracy. Keep the machine otherwise idle while it runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
from pathlib import Path

from record import RESULTS, SHARED_FACES


# size -> settings. The full-size network (145 M parameters, ~15 GFLOP per image) is
# kept to small batches, few iterations and a subset of images on a small CPU.
PLANS = {
    "tiny": {"batches": [1, 8, 64], "tf_batch": 8, "e2e_files": None, "calibration": 256, "iters": None, "warmup": 3, "seconds": 3.0},
    "full": {"batches": [1, 8], "tf_batch": 8, "e2e_files": 96, "calibration": 32, "iters": 5, "warmup": 1, "seconds": 0.0},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="tiny,full", help="comma-separated stand-in sizes (tiny, full)")
    parser.add_argument("--images", type=Path, default=SHARED_FACES, help="end-to-end / calibration images")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON and README go")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--no-tf", action="store_true", help="skip the TensorFlow comparison")
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    images = args.images if args.images.is_dir() else None
    with tempfile.TemporaryDirectory(prefix="gender-cli-matrix-") as tmp:
        work = args.work or Path(tmp)
        for size in [s.strip() for s in args.sizes.split(",") if s.strip()]:
            if size not in PLANS:
                parser.error(f"unknown size {size!r}; choose from {', '.join(PLANS)}")
            run_size(size, PLANS[size], work / size, images, args.out, args.device, not args.no_tf)
    table = write_readme(args.out)
    print(table)
    return 0


def log(message: str) -> None:
    print(f"[{datetime.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def run_size(size: str, plan: dict, work: Path, images: Path | None, out: Path, device: str, compare_tf: bool) -> None:
    from gender_cli import workspace
    from gender_cli.atomic import write_json_atomically
    from gender_cli.bench.bench import bench, log_stages
    from standin_models import standin_workspace, subset
    from gender_cli.export.export import export

    log(f"{size}: building the stand-in network and head")
    network = standin_workspace(size, work / "home")

    calibration = subset(images, work / "calibration", plan["calibration"]) if images else None
    e2e_images = subset(images, work / "e2e", plan["e2e_files"]) if images else None
    head_dir = workspace.latest_head_dir()
    for precision in ("fp32", "fp16", "int8"):
        if precision == "int8" and calibration is None:
            log(f"{size}: no images for int8 calibration; skipping int8")
            continue
        log(f"{size}: exporting {precision}")
        result = export(
            network, workspace.classifier_path(precision), head=head_dir, precision=precision, calibration=calibration
        )
        log(f"{size}: {precision} written ({result.size_bytes / 1e6:.1f} MB, {result.seconds:.0f} s)")
    del network

    for batch in plan["batches"]:
        log(f"{size}: bench batch {batch}")
        figures = bench(
            workspace.classifier_path("fp32"),
            batch=batch,
            device=device,
            warmup=plan["warmup"],
            iters=plan["iters"],
            images=e2e_images,
            variants=True,
            compare_tf=compare_tf and batch == plan["tf_batch"],
            target_seconds=plan["seconds"],
            command=f"python bench/scripts/run_matrix.py --sizes {size}",
            progress=log_stages(lambda message: log(f"{size}: {message}")),
        )
        figures["network_size"] = size
        write_json_atomically(out / f"bench-{size}-b{batch}.json", figures)


def _fmt(value, digits=1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def write_readme(out: Path) -> str:
    runs = []
    for path in sorted(out.glob("bench-*.json")):
        runs.append(json.loads(path.read_text()))
    order = {"tiny": 0, "full": 1}
    runs.sort(key=lambda r: (order.get(r.get("network_size"), 9), r["batch"]))
    header = (
        "| network | batch | fp32 img/s | p50 / p90 / p99 ms | fp16 img/s (×fp32) | int8 img/s (×fp32) "
        "| end-to-end img/s (×model-only) | decode-only img/s | TF/Keras img/s (ORT ×) |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    rows = []
    for r in runs:
        m = r["model_only"]
        lat = m["latency_ms"]
        variants = r.get("variants") or {}

        def variant(p):
            v = variants.get(p) or {}
            if "images_per_second" not in v:
                return "—"
            return f"{v['images_per_second']:.1f} (×{v.get('speed_vs_fp32', 0):.2f})"

        e2e = r.get("end_to_end")
        tf = r.get("tensorflow") or {}
        rows.append(
            f"| {r.get('network_size', '?')} | {r['batch']} | {m['images_per_second']:.1f} | "
            f"{lat['p50']:.1f} / {lat['p90']:.1f} / {lat['p99']:.1f} | {variant('fp16')} | {variant('int8')} | "
            + (f"{e2e['images_per_second']:.1f} (×{e2e['ratio_to_model_only']:.2f}, {e2e['files']} files) | "
               f"{e2e['decode_only_images_per_second']:.0f} | " if e2e else "— | — | ")
            + (f"{tf['images_per_second']:.1f} (×{tf['onnxruntime_speedup']:.2f}) |" if "images_per_second" in tf else "— |")
        )
    first = runs[0] if runs else {}
    device = first.get("device", {})
    text = "\n".join(
        [
            "# Benchmark results",
            "",
            "Written by `python bench/scripts/run_matrix.py`; one `bench-<network>-b<batch>.json` per row "
            "(every setting and figure, as `gender-cli bench --json` writes it).",
            "",
            "All models are made from **STAND-IN (random) weights**: these are speed figures only. "
            "`tiny` keeps all 39 VGG-Face layers with 4–16 channels; `full` is the real 145 M-parameter shape.",
            "",
            f"Machine: {device.get('cpu', '?')}, {device.get('cpu_cores', '?')} cores"
            + (f", GPU {device['gpu']}" if device.get("gpu") else "")
            + f"; providers {', '.join(first.get('providers', []))}; onnxruntime {first.get('onnxruntime', '?')}; "
            f"measured {first.get('timestamp', '?')}. The machine was shared with other jobs, so "
            "treat small differences as noise.",
            "",
            "Model-only: a fixed synthetic uint8 batch. End-to-end: the classify pipeline "
            "(decode + resize in threads, inference) over real face crops (the full-size "
            "network uses a subset). Latency is per batch. fp16 on the CPU provider runs through float32 casts.",
            "",
            header,
            *rows,
            "",
        ]
    )
    (out / "README.md").write_text(text)
    return text


if __name__ == "__main__":
    sys.exit(main())
