"""deepface's gender model the peer's way and ours, on the same weights: img/s and agreement.

deepface runs its gender model one face at a time through Keras
(``GenderClient.predict``: ``model(img, training=False).numpy()`` per face). gender-cli
converts the same ``gender_model_weights.h5`` into one batched ONNX graph. This script:

1. takes the weights file (or writes a full-size stand-in of it);
2. converts it and exports the fp32 classifier with gender-cli's library (no training);
3. times our graph model-only with ``gender_cli.bench`` at ``--batch`` and at batch 1;
4. times deepface's loop on the same images: the model rebuilt from deepface's source
   (``bench/peer_keras.py``), ``load_weights`` of the same file, one image per call,
   deepface's preprocessing (BGR / 255);
5. compares the probabilities of both on those images (our p_male/p_female against
   deepface's Man/Woman);

and writes ``bench/results/<name>.json`` and ``.md`` with the machine, versions and load.

    python bench/scripts/compare_deepface.py                         # full-size stand-in
    python bench/scripts/compare_deepface.py --h5 gender_model_weights.h5 --batch 64 --images 32

Imports TensorFlow (for deepface's way); ``gender-cli bench`` and ``classify`` never do.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import warnings

import numpy as np

from gender_cli.bench.machine import cpu_model, memory_gib, package_versions
from record import RESULTS

PACKAGES = ("gender-cli", "onnxruntime", "onnxruntime-gpu", "tensorflow", "keras", "numpy", "h5py")


def our_graph(h5: Path, work: Path) -> Path:
    from gender_cli.convert.convert import convert
    from gender_cli.convert.source import load_network
    from gender_cli.export.export import export

    convert(h5, work / "converted")
    network = load_network(work / "converted")
    return export(network, work / "classifier-fp32.onnx", head=work / "converted" / "head").path


def time_ours(model_path: Path, batch: int, images: np.ndarray) -> dict:
    from gender_cli.bench.bench import bench_model_only
    from gender_cli.infer.session import open_session

    model = open_session(model_path, device="cpu")
    figures = {f"batch_{b}": bench_model_only(model, b) for b in sorted({1, batch})}
    probabilities = np.concatenate([model.run(images[i : i + batch])["probabilities"]
                                    for i in range(0, len(images), batch)])
    return {"providers": model.providers, "threads": model.threads, **figures}, probabilities


def time_deepface(h5: Path, images: np.ndarray, warmup: int) -> tuple[dict, np.ndarray]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # deepface calls its functional model with a bare array, as here; Keras 3 warns about that
    warnings.filterwarnings("ignore", message="The structure of `inputs`")
    from gender_cli.bench import peer_keras
    from gender_cli.convert.vgg_face import CHANNELS

    size = "full" if _kernel_width(h5) == CHANNELS["full"]["fc"] else "tiny"
    model = peer_keras.deepface_gender(CHANNELS[size])
    model.load_weights(str(h5))
    faces = [peer_keras.deepface_preprocess(image[None]) for image in images]
    for face in faces[:warmup]:
        model(face, training=False).numpy()
    seconds, outputs = [], []
    for face in faces:  # deepface's GenderClient.predict, one face per call
        started = time.perf_counter()
        outputs.append(model(face, training=False).numpy()[0, :])
        seconds.append(time.perf_counter() - started)
    import tensorflow as tf

    return {
        "tensorflow": tf.__version__,
        "images": len(faces),
        "warmup": warmup,
        "images_per_second": len(faces) / sum(seconds),
        "latency_ms_p50": float(np.percentile(np.asarray(seconds) * 1000, 50)),
    }, np.stack(outputs)


def _kernel_width(h5: Path) -> int:
    from gender_cli.convert.formats import read_source

    source = read_source(h5)
    return int(source.head.kernels[0].shape[0])


def write_markdown(result: dict, path: Path) -> None:
    ours, theirs, m = result["ours"], result["deepface"], result["machine"]
    batch = result["settings"]["batch"]
    lines = [
        "# deepface's gender model: deepface's per-image Keras loop vs gender-cli's batched ONNX graph",
        "",
        f"Weights: {result['input']} (same file for both). Command: `{result['command']}`.",
        f"Machine: {m['cpu_model']}, {m['usable_cores']} usable cores, {m['ram_gib']} GiB RAM; load average "
        f"at start {m['load_average_at_start']} (shared machine: other jobs may have been running).",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items() if v) + ".",
        "",
        "| way | img/s | p50 latency ms |",
        "|---|---|---|",
        f"| deepface: Keras `model(img)` per image ({theirs['images']} images) | "
        f"{theirs['images_per_second']:.2f} | {theirs['latency_ms_p50']:.1f} (per image) |",
    ]
    for key, figures in sorted(ours.items()):
        if key.startswith("batch_"):
            lines.append(f"| gender-cli: onnxruntime fp32, {key.replace('_', ' ')} | "
                         f"{figures['images_per_second']:.2f} | {figures['latency_ms']['p50']:.1f} (per batch) |")
    lines += [
        "",
        f"Speed-up of the batched graph (batch {batch}) over deepface's loop, measured in this one run: "
        f"**{result['speedup_batched']:.2f}x** (batch 1: {result['speedup_batch_1']:.2f}x).",
        f"Agreement on the {result['agreement']['images']} images: max |p difference| "
        f"{result['agreement']['max_abs_probability_difference']:.2e}, same label for "
        f"{result['agreement']['same_label']} of them.",
        "",
    ]
    if result["standin"]:
        lines.insert(2, "**Stand-in (random) weights**: speed figures only, the labels mean nothing.\n")
    path.write_text("\n".join(lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--h5", type=Path, help="deepface's gender_model_weights.h5 (default: a full-size stand-in)")
    parser.add_argument("--size", default="full", choices=("full", "tiny"), help="stand-in size")
    parser.add_argument("--batch", type=int, default=64, help="our batch size")
    parser.add_argument("--images", type=int, default=32, help="images for deepface's loop and the agreement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed deepface calls first")
    parser.add_argument("--name", default="deepface-gender", help="results file stem")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    machine = {
        "cpu_model": cpu_model(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_gib": memory_gib(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    from gender_cli.bench.bench import synthetic_batch

    with tempfile.TemporaryDirectory(prefix="compare-deepface-") as tmp:
        work = Path(tmp)
        h5 = args.h5
        if h5 is None:
            from gender_cli.convert.standin import make_standin

            print(f"writing a {args.size} stand-in gender_model_weights.h5 ...", file=sys.stderr)
            h5 = make_standin(work / "gender_model_weights.h5", args.size, format="deepface-gender")
        print("converting and exporting ...", file=sys.stderr)
        model_path = our_graph(h5, work)
        images = synthetic_batch(args.images, (224, 224))
        print("timing gender-cli ...", file=sys.stderr)
        ours, our_p = time_ours(model_path, args.batch, images)
        print(f"timing deepface's loop over {args.images} images ...", file=sys.stderr)
        theirs, woman_man = time_deepface(h5, images, args.warmup)
        from gender_cli.infer.session import open_session

        standin = open_session(model_path, device="cpu").info.standin
        input_name = str(args.h5) if args.h5 else f"{args.size} stand-in gender_model_weights.h5"
    male_female = woman_man[:, ::-1]  # deepface's order is Woman, Man
    result = {
        "what": "deepface gender model: deepface's per-image Keras loop vs gender-cli's batched ONNX graph",
        "command": "python bench/scripts/compare_deepface.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "input": input_name,
        "standin": standin,
        "machine": machine,
        "versions": package_versions(PACKAGES),
        "settings": {"batch": args.batch, "images": args.images},
        "ours": ours,
        "deepface": theirs,
        "speedup_batched": ours[f"batch_{args.batch}"]["images_per_second"] / theirs["images_per_second"],
        "speedup_batch_1": ours["batch_1"]["images_per_second"] / theirs["images_per_second"],
        "agreement": {
            "images": len(images),
            "max_abs_probability_difference": float(np.abs(our_p - male_female).max()),
            "same_label": int((our_p.argmax(1) == male_female.argmax(1)).sum()),
        },
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(result, args.results / f"{args.name}.md")
    print(json.dumps({k: result[k] for k in ("speedup_batched", "speedup_batch_1", "agreement")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
