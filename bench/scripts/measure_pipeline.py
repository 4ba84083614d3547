"""Where the end-to-end time of ``classify`` goes, per model, and what the pipeline's settings change.

    python bench/scripts/measure_pipeline.py --scratch-run RUN_DIR [--rounds 3] [--files 2000]

For each classifier, on the shared UTKFace sample, in one run on this machine's cores:

* the CPU cost per image of decoding alone (the decode threads ``classify`` uses, at the
  model's input size) and of the model alone (one decoded batch of 64, run again and
  again), in process CPU seconds, which load from other jobs does not inflate;
* ``gender-cli bench``'s end-to-end pass (decode-only first, then one ``classify`` pass
  with rows written to a scratch CSV) under pipeline variants: the shipped settings;
  the text writer's fsync after every block (as before this measurement); one
  onnxruntime thread instead of one per core.

Models: the from-scratch classifier of ``--scratch-run`` (fp32 and int8, exported
here; int8 calibrated on 256 other shared faces), dlib's face network with a stand-in
head, the tiny VGG-Face stand-in (the issue's 23 %), and a null model (a graph that
only averages its input, so the pipeline alone sets the pace). Variants run in turn
within each round, the order rotating; figures are medians over ``--rounds``. Writes
``bench/results/pipeline.json`` and ``pipeline.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from record import RESULTS, SHARED_FACES, linked_subset, record

MODEL_BATCH = 64


def null_classifier(path: Path, size: int = 64) -> Path:
    """A contract graph that only averages its input into the probabilities: the pipeline alone."""
    import onnx
    from onnx import TensorProto, helper

    from gender_cli import contract
    from gender_cli.contract import Meta

    nodes = [
        helper.make_node("Cast", ["images"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["x"], ["m"], axes=[1, 2], keepdims=0),
        helper.make_node("Slice", ["m", "starts", "ends", "axes"], ["two"]),
        helper.make_node("Softmax", ["two"], [contract.PROBABILITIES], axis=1),
        helper.make_node("Identity", ["m"], [contract.DESCRIPTOR]),
    ]
    graph = helper.make_graph(
        nodes, "null",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["N", size, size, 3])],
        [helper.make_tensor_value_info(contract.PROBABILITIES, TensorProto.FLOAT, ["N", 2]),
         helper.make_tensor_value_info(contract.DESCRIPTOR, TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor("starts", TensorProto.INT64, [1], [0]), helper.make_tensor("ends", TensorProto.INT64, [1], [2]),
         helper.make_tensor("axes", TensorProto.INT64, [1], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", contract.OPSET)])
    model.ir_version = contract.IR_VERSION
    meta = {Meta.LABELS: '["male", "female"]', Meta.THRESHOLD: "0.5", Meta.INPUT_SIZE: f"[{size}, {size}, 3]",
            Meta.CHANNEL_ORDER: "RGB", Meta.MEAN: "[0, 0, 0]", Meta.DESCRIPTOR: "penultimate",
            Meta.DESCRIPTOR_DIM: "3", Meta.PRECISION: "fp32", Meta.SOURCE_SHA256: "", Meta.STANDIN: "true",
            Meta.VERSION: "0", Meta.KIND: "classifier"}
    helper.set_model_props(model, meta)
    onnx.save(model, str(path))
    return path


def cpu_per_image(run, count: int) -> float:
    started = time.process_time()
    run()
    return (time.process_time() - started) / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch-run", type=Path, required=True, help="a train --from-scratch run folder")
    parser.add_argument("--images", type=Path, default=SHARED_FACES)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--slow-files", type=int, default=400, help="files for the dlib network's passes")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from gender_cli.bench.bench import bench_end_to_end
    from gender_cli.bench.machine import cpu_model, package_versions
    from gender_cli.convert.dlib_resnet import FILE_NAME
    from gender_cli.convert.formats import read_network
    from gender_cli.convert.vgg_face import vgg_face_network
    from gender_cli.export.export import export
    from gender_cli.export.scratch_export import load_scratch_network
    from gender_cli.infer import writer_text
    from gender_cli.infer.batches import iter_batches
    from gender_cli.infer.detect import dlib_model
    from gender_cli.infer.session import open_session
    from standin_models import classifier_with_standin_head

    load_before = os.getloadavg()
    files = sorted(args.images.glob("*.jpg"))
    with tempfile.TemporaryDirectory(prefix="pipeline-") as tmp:
        work = Path(tmp)
        scratch = load_scratch_network(args.scratch_run)
        calibration = linked_subset(work / "calibration", files[-256:])
        dlib_network, _ = read_network(dlib_model(FILE_NAME))
        tiny = vgg_face_network("tiny", seed=0)
        models = {
            "null (pipeline alone)": null_classifier(work / "null.onnx", scratch.input_size[0]),
            "from scratch fp32": export(scratch, work / "scratch.onnx", head=args.scratch_run).path,
            "from scratch int8": export(scratch, work / "scratch-int8.onnx", head=args.scratch_run,
                                        precision="int8", calibration=calibration).path,
            "tiny VGG-Face stand-in fp32": classifier_with_standin_head(tiny, work / "tiny.onnx"),
            "dlib network fp32": classifier_with_standin_head(dlib_network, work / "dlib.onnx"),
        }
        folders = {name: linked_subset(work / f"files-{i}", files[: args.slow_files if "dlib" in name else args.files])
                   for i, name in enumerate(models)}
        for f in files[: args.files]:
            f.read_bytes()  # in the page cache before anything is timed
        variants = {
            "shipped": {},
            "fsync every block (before)": {"fsync": 0.0},
            "1 onnxruntime thread": {"threads": 1},
        }
        figures: dict[str, dict] = {}
        for name, path in models.items():
            loaded = open_session(path, device="cpu", allow_spinning=False)
            size = loaded.info.image_size
            batch = next(iter_batches(files[:MODEL_BATCH], MODEL_BATCH, size=size)).images
            loaded.run(batch)
            count = len(list(folders[name].iterdir()))
            figures[name] = {
                "input_size": list(loaded.info.input_size),
                "files": count,
                "decode_cpu_ms_per_image": 1000 * cpu_per_image(
                    lambda: [None for _ in iter_batches(sorted(folders[name].iterdir()), MODEL_BATCH, size=size)], count),
                "model_cpu_ms_per_image": 1000 * cpu_per_image(lambda: [loaded.run(batch) for _ in range(5)],
                                                               5 * MODEL_BATCH),
                "variants": {v: [] for v in variants},
            }
            print(f"{name}: decode {figures[name]['decode_cpu_ms_per_image']:.3f} ms, model "
                  f"{figures[name]['model_cpu_ms_per_image']:.3f} ms CPU per image", file=sys.stderr, flush=True)
        shipped_fsync = writer_text.FSYNC_SECONDS
        for r in range(args.rounds):
            order = list(models)[r % len(models):] + list(models)[: r % len(models)]
            for name in order:
                for variant, settings in variants.items():
                    writer_text.FSYNC_SECONDS = settings.get("fsync", shipped_fsync)
                    loaded = open_session(models[name], device="cpu", threads=settings.get("threads"),
                                          allow_spinning=False)
                    e2e = bench_end_to_end(loaded, folders[name], MODEL_BATCH)
                    figures[name]["variants"][variant].append(
                        {"e2e": e2e["images_per_second"], "decode_only": e2e["decode_only_images_per_second"]})
                    print(f"round {r + 1} {name} / {variant}: e2e {e2e['images_per_second']:.0f} img/s, decode-only "
                          f"{e2e['decode_only_images_per_second']:.0f}", file=sys.stderr, flush=True)
        writer_text.FSYNC_SECONDS = shipped_fsync

    for name, entry in figures.items():
        for variant, runs in entry["variants"].items():
            entry["variants"][variant] = {
                "end_to_end_images_per_second": statistics.median(run["e2e"] for run in runs),
                "decode_only_images_per_second": statistics.median(run["decode_only"] for run in runs),
                "end_to_end_over_decode_only": statistics.median(run["e2e"] / run["decode_only"] for run in runs),
                "runs": runs,
            }
    report = {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python bench/scripts/measure_pipeline.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": os.getloadavg()},
        "packages": package_versions(["onnxruntime", "numpy", "pillow"]),
        "batch": MODEL_BATCH,
        "rounds": args.rounds,
        "models": figures,
    }
    cost_rows = "\n".join(
        f"| {name} | {'x'.join(map(str, e['input_size'][:2]))} | {e['decode_cpu_ms_per_image']:.3f} | "
        f"{e['model_cpu_ms_per_image']:.3f} | {e['model_cpu_ms_per_image'] / e['decode_cpu_ms_per_image']:.1f} |"
        for name, e in figures.items())
    variant_names = list(next(iter(figures.values()))["variants"])
    e2e_rows = "\n".join(
        f"| {name} | {e['files']} | " + " | ".join(
            f"{e['variants'][v]['end_to_end_images_per_second']:.0f} / {e['variants'][v]['decode_only_images_per_second']:.0f}"
            f" = {e['variants'][v]['end_to_end_over_decode_only']:.0%}" for v in variant_names) + " |"
        for name, e in figures.items())
    markdown = f"""# Where classify's end-to-end time goes

Measured {report['timestamp']} on {report['machine']['cpu']} ({report['machine']['cores']} cores, shared with other
work), load average {load_before[0]:.1f} before and {report['machine']['load_average_after'][0]:.1f} after;
onnxruntime CPU provider, batch {MODEL_BATCH}. Command: `{report['command']}`.

CPU cost per image (process CPU seconds, which load from other jobs does not inflate): decoding at the model's
input size with the decode threads `classify` uses, and the model alone on one decoded batch:

| classifier | input | decode ms | model ms | model ÷ decode |
|---|---|---|---|---|
{cost_rows}

End to end (`gender-cli bench --images`: one `classify` pass, rows into a scratch CSV) against the decode-only
rate of the same files measured just before it, img/s, medians over {args.rounds} rounds:

| classifier | files | {' | '.join(variant_names)} |
|---|---|{'---|' * len(variant_names)}
{e2e_rows}
"""
    print(markdown)
    record(args.out, "pipeline", report, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
