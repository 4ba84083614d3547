#!/usr/bin/env python3
"""One-shot GPU benchmark: onnxruntime fp32/fp16(/int8) vs PyTorch on the same weights.

    python3 bench/scripts/gpu/gpu_bench.py [--network vgg-face|dlib] [--weights FILE] [--size full]
        [--device cuda] [--batch 64] [--precisions fp32,fp16] [--faces DIR | --jpegs 2000] [--out $OUT]

Made for a GPU host that has no package registry and no gender-cli install (see
bench/scripts/gpu/README.md): the package is imported from this working tree (setup.cfg's
``package_dir``) when it is not installed, and everything runs from data made here:

1. the stand-in network (``vgg_face_network(size)`` or, with ``--network dlib``,
   ``dlib_resnet_network(size)``, numpy only; or the ``--weights`` file, read with the
   pure-Python readers: dlib's real 22 MB network travels) and a seeded head on its
   default descriptor, saved as a workspace (``convert`` + ``train`` would leave the
   same) in a scratch folder outside ``--out``;
2. classifiers exported with ``export`` (TF-free), one per precision, checked
   against fp32 on a few calibration images (a small set keeps export short);
3. per precision, ``bench`` as ``gender-cli bench`` runs it: model-only on
   the seeded batch, end-to-end over a JPEG folder (``--faces`` or ``--jpegs``
   generated ones), and PyTorch on the same weights (fp16 + channels_last on CUDA);
4. on CUDA, two onnxruntime settings beside the default for fp16: ``prefer_nhwc=1``
   and the input already on the GPU (IO binding), to show where the time goes.

Writes ``bench-gpu.json`` (every figure and setting) and ``bench-gpu.md`` (tables,
goals) into ``--out`` and prints the table last. Exit status 3, with a banner, when
CUDA was asked for and did not load. Stand-in weights (random) give speed only; the
report says which weights ran.
"""

from __future__ import annotations

import argparse
import configparser
import datetime
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
LIBRARY_MARK = "GENDER_CLI_GPU_BENCH_LIBS"  # set once the process runs with the CUDA library path
GOALS = {  # issue 6, on one H200 with 16 cores
    "ort_fp16_images_per_second": 13_000,
    "ort_fp16_over_pytorch_fp16": 1.0,
    "end_to_end_over_model_only": 0.5,
}
CALIBRATION_IMAGES = 16
DISTINCT_JPEGS = 100  # generated JPEGs are this many images written under many names
JPEG_SIZE = 250  # like LFW crops; classify resizes to 224


def log(message: str) -> None:
    print(f"[gpu-bench {datetime.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# -- environment ----------------------------------------------------------------------


def import_from_tree() -> str:
    """Make ``gender_cli`` importable from this working tree; say how it was found."""
    try:
        import gender_cli

        if Path(gender_cli.__file__).resolve().is_relative_to(ROOT):
            return f"installed from this tree ({gender_cli.__file__})"
        for name in [m for m in sys.modules if m == "gender_cli" or m.startswith("gender_cli.")]:
            del sys.modules[name]
    except ImportError:
        pass
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    mapping = {}
    for line in config["options"]["package_dir"].strip().splitlines():
        name, folder = (part.strip() for part in line.split("="))
        mapping[name] = ROOT / folder
    for name in sorted(mapping, key=lambda n: n.count(".")):  # parents first
        folder = mapping[name]
        spec = importlib.util.spec_from_file_location(
            name, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)
    return f"mapped from {ROOT}/setup.cfg package_dir (not installed)"


def nvidia_library_dirs() -> list[str]:
    """lib folders of the nvidia-* wheels (cuDNN, cuBLAS, ...) that PyTorch brought."""
    spec = importlib.util.find_spec("nvidia")
    if spec is None or not spec.submodule_search_locations:
        return []
    found = []
    for base in spec.submodule_search_locations:
        for lib in sorted(Path(base).glob("*/lib")) + sorted(Path(base).glob("*/*/lib")):
            if any(lib.glob("*.so*")):
                found.append(str(lib))
    return found


def reexec_with_cuda_libraries(device: str) -> None:
    """Start again with the nvidia-* lib folders on LD_LIBRARY_PATH (read only at start),
    so onnxruntime-gpu finds cuDNN/cuBLAS by name wherever pip put them."""
    if device == "cpu" or os.environ.get(LIBRARY_MARK):
        return
    folders = nvidia_library_dirs()
    env = dict(os.environ, **{LIBRARY_MARK: os.pathsep.join(folders) or "none"})
    if folders:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(folders + [p for p in [os.environ.get("LD_LIBRARY_PATH")] if p])
    os.execve(sys.executable, list(sys.orig_argv), env)  # the same interpreter options and arguments


def nvidia_smi() -> dict:
    if shutil.which("nvidia-smi") is None:
        return {"error": "nvidia-smi not found"}
    fields = "name,driver_version,memory.total,memory.used,clocks.sm,clocks.max.sm,clocks.mem,power.limit,temperature.gpu,pstate,compute_cap"
    try:
        done = subprocess.run(
            ["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return {"error": str(exc)}
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip()}
    rows = [dict(zip(fields.split(","), (v.strip() for v in line.split(",")))) for line in done.stdout.strip().splitlines()]
    return {"gpus": rows}


def torch_facts() -> dict:
    if importlib.util.find_spec("torch") is None:
        return {"installed": False}
    import torch  # also loads the CUDA libraries PyTorch was built with, before onnxruntime

    facts = {"installed": True, "version": torch.__version__, "cuda_available": torch.cuda.is_available()}
    if facts["cuda_available"]:
        properties = torch.cuda.get_device_properties(0)
        facts.update(
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            gpu=properties.name,
            multiprocessors=properties.multi_processor_count,
            memory_gib=round(properties.total_memory / 2**30, 1),
        )
    return facts


def onnxruntime_facts(device: str) -> dict:
    import onnxruntime as ort

    facts = {"version": ort.__version__, "file": ort.__file__, "available_providers": ort.get_available_providers()}
    if device != "cpu" and hasattr(ort, "preload_dlls"):
        try:
            ort.preload_dlls()
            facts["preload_dlls"] = "ok"
        except Exception as exc:  # reported, not fatal: the session check below decides
            facts["preload_dlls"] = f"failed: {exc}"
    return facts


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def cuda_banner(reason: str) -> None:
    line = "!" * 78
    print(f"\n{line}\n!! CUDA DID NOT LOAD: {reason}\n!! No GPU figures were measured.\n{line}\n", flush=True)


# -- inputs ---------------------------------------------------------------------------


NETWORKS = ("vgg-face", "dlib")


def build_network(name: str, size: str, seed: int, weights: Path | None):
    """VGG-Face's or dlib's network: a stand-in made here with numpy (speed does not
    depend on the values), or the weights file given (dlib's real .dat travels: 22 MB)."""
    if weights is not None:
        from gender_cli.convert.formats import read_network

        return read_network(weights)[0]
    if name == "dlib":
        from gender_cli.convert.dlib_resnet import dlib_resnet_network

        return dlib_resnet_network(size, seed=seed)
    from gender_cli.convert.vgg_face import vgg_face_network

    return vgg_face_network(size, seed=seed)


def build_workspace(network, seed: int, hidden: int) -> tuple[object, Path]:
    """``network`` and a seeded head on its default descriptor, saved where convert/train leave them."""
    import numpy as np

    from gender_cli import contract, workspace
    from gender_cli.convert.layer_plan import descriptor_plan
    from gender_cli.head_spec import HeadSpec

    network.save(workspace.network_dir())
    descriptor = contract.default_descriptor(layer.name for layer in network.layers)
    dim = descriptor_plan(network, descriptor).dim
    rng = np.random.default_rng(seed)
    kernels = [
        (rng.standard_normal((dim, hidden)) / np.sqrt(dim)).astype(np.float32),
        (rng.standard_normal((hidden, 2)) / np.sqrt(hidden)).astype(np.float32),
    ]
    biases = [np.zeros(hidden, np.float32), np.zeros(2, np.float32)]
    spec = HeadSpec(
        descriptor=descriptor, input_dim=dim, hidden=[hidden], dropout=0.0,
        labels=list(contract.LABELS), threshold=0.5, standin=bool(network.standin),
    )
    run_dir = workspace.new_run_dir()
    spec.save(run_dir, kernels, biases)
    return network, run_dir


def write_jpegs(folder: Path, count: int, seed: int) -> Path:
    """``count`` JPEG files: DISTINCT_JPEGS generated images, each encoded once and
    written under several names (decoding costs the same; writing stays fast)."""
    import io

    import numpy as np
    from PIL import Image

    from gender_cli.contract import LABELS
    from gender_cli.synthetic import synthetic_image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    encoded = []
    for index in range(min(count, DISTINCT_JPEGS)):
        buffer = io.BytesIO()
        Image.fromarray(synthetic_image(rng, LABELS[index % 2], JPEG_SIZE)).save(buffer, format="JPEG", quality=90)
        encoded.append(buffer.getvalue())
    for index in range(count):
        (folder / f"face_{index:05d}.jpg").write_bytes(encoded[index % len(encoded)])
    return folder


def calibration_subset(images: Path, folder: Path, count: int) -> Path:
    from gender_cli.infer.files import list_image_files

    files = list_image_files([images])
    folder.mkdir(parents=True, exist_ok=True)
    step = max(1, len(files) // count)
    for path in files[::step][:count]:
        shutil.copyfile(path, folder / path.name)
    return folder


# -- measuring ------------------------------------------------------------------------


def ort_option_experiments(model_path: Path, batch: int, warmup: int, iters, seconds: float) -> dict:
    """fp16 on CUDA with other onnxruntime settings, each beside the default."""
    import dataclasses

    import onnxruntime as ort

    from gender_cli import contract
    from gender_cli.bench.bench import bench_model_only, latency_stats, synthetic_batch, time_callable
    from gender_cli.infer.session import CPU, CUDA, CUDA_OPTIONS, open_session

    base = open_session(model_path, device="cuda")
    results = {}

    options = dict(CUDA_OPTIONS, prefer_nhwc="1")
    try:
        session = ort.InferenceSession(
            str(model_path), sess_options=base.session.get_session_options(), providers=[(CUDA, options), CPU]
        )
        if CUDA not in session.get_providers():
            raise RuntimeError("the CUDA provider did not load with these options")
        nhwc = dataclasses.replace(base, session=session, providers=session.get_providers())
        results["prefer_nhwc"] = {"cuda_options": options, **bench_model_only(nhwc, batch, warmup, iters, seconds)}
    except Exception as exc:  # an onnxruntime build without NHWC kernels says so here
        results["prefer_nhwc"] = {"skipped": first_line(exc)}

    images = synthetic_batch(batch, base.info.input_size)
    binding = base.session.io_binding()
    binding.bind_ortvalue_input(contract.INPUT_NAME, ort.OrtValue.ortvalue_from_numpy(images, "cuda", 0))
    for name in base.output_names:
        binding.bind_output(name, "cuda", 0)

    def run_bound():
        base.session.run_with_iobinding(binding)
        binding.synchronize_outputs()

    measured, _ = time_callable(run_bound, warmup, iters, seconds)
    results["input_on_gpu"] = {
        "input": "the same batch bound on the GPU (IO binding); outputs left there",
        **latency_stats(measured, batch),
    }
    return results


def goals(runs: dict, device: dict) -> list[dict]:
    fp16 = runs.get("fp16") or {}
    ort_speed = (fp16.get("model_only") or {}).get("images_per_second")
    pytorch = fp16.get("pytorch") or {}
    torch_ratio = pytorch.get("onnxruntime_speedup") if pytorch.get("precision") == "fp16" else None
    e2e_ratio = (fp16.get("end_to_end") or {}).get("ratio_to_model_only")
    applies = device.get("kind") == "cuda" and "H200" in str(device.get("gpu"))
    rows = [
        ("ORT fp16 batch 64 model-only img/s", ort_speed, GOALS["ort_fp16_images_per_second"]),
        ("ORT fp16 / PyTorch fp16 (same machine)", torch_ratio, GOALS["ort_fp16_over_pytorch_fp16"]),
        ("end-to-end / model-only (fp16)", e2e_ratio, GOALS["end_to_end_over_model_only"]),
    ]
    return [
        {
            "goal": name,
            "value": value,
            "target": target,
            "met": None if value is None else bool(value >= target),
            "applies": applies,
        }
        for name, value, target in rows
    ]


# -- report ---------------------------------------------------------------------------


def _f(value, digits=1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def markdown(report: dict) -> str:
    gpu = (report["nvidia_smi"].get("gpus") or [{}])[0]
    ort_facts, torch_info = report["onnxruntime"], report["torch"]
    first = next(iter(report["runs"].values()), {})
    lines = [
        f"# gender-cli GPU benchmark ({report.get('network', 'vgg-face')}, "
        + (f"{report['size']} stand-in)" if report.get("standin", True) else "real weights)"),
        "",
        f"`{report['command']}` at {report['timestamp']}. "
        + ("Weights are STAND-IN (random): speed figures only." if report.get("standin", True) else
           "Real weights; the head is a seeded stand-in (speed figures)."),
        "",
        f"- GPU: {gpu.get('name', 'none')}, driver {gpu.get('driver_version', '—')}, "
        f"{gpu.get('memory.total', '—')}, SM clock {gpu.get('clocks.sm', '—')} (max {gpu.get('clocks.max.sm', '—')})",
        f"- onnxruntime {ort_facts['version']} ({ort_facts['file']}); providers used: "
        f"{', '.join(first.get('providers', [])) or '—'}; available: {', '.join(ort_facts['available_providers'])}",
        f"- PyTorch {torch_info.get('version', 'absent')} (CUDA {torch_info.get('cuda', '—')}, cuDNN {torch_info.get('cudnn', '—')})",
        f"- CPU: {first.get('device', {}).get('cpu', '?')}, {report['cpu_cores']} cores; Python {platform.python_version()}; "
        f"gender_cli {report['gender_cli_import']}",
        f"- batch {report['batch']}, warm-up {report['warmup']} runs, "
        + (f"{report['iters']} timed runs" if report["iters"] else f"timed for about {report['seconds']} s (iterations below)")
        + f"; end-to-end over {report['jpegs']}",
        "",
        "| precision | ORT img/s | p50 ms | p99 ms | iters | end-to-end img/s (× model-only) | decode-only img/s "
        "| PyTorch img/s (precision) | ORT × PyTorch | PyTorch input on GPU img/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for precision, run in report["runs"].items():
        if "error" in run:
            lines.append(f"| {precision} | error: {run['error']} | | | | | | | | |")
            continue
        m, e2e, pt = run["model_only"], run.get("end_to_end") or {}, run.get("pytorch") or {}
        if "images_per_second" in pt:
            torch_cell = f"{_f(pt['images_per_second'])} ({pt['precision']})"
        else:
            torch_cell = "—" if pt.get("requested") is False else pt.get("skipped", "—")
        lines.append(
            f"| {precision} | {_f(m['images_per_second'])} | {_f(m['latency_ms']['p50'], 2)} | {_f(m['latency_ms']['p99'], 2)} "
            f"| {m['iters']} | {_f(e2e.get('images_per_second'))} (×{_f(e2e.get('ratio_to_model_only'), 2)}) "
            f"| {_f(e2e.get('decode_only_images_per_second'))} | {torch_cell} | {_f(pt.get('onnxruntime_speedup'), 2)} "
            f"| {_f((pt.get('device_resident') or {}).get('images_per_second'))} |"
        )
    if report.get("ort_experiments"):
        lines += ["", "onnxruntime fp16 settings beside the default:", "", "| setting | img/s | p50 ms | p99 ms |", "|---|---|---|---|"]
        for name, figures in report["ort_experiments"].items():
            if "skipped" in figures:
                lines.append(f"| {name} | skipped: {figures['skipped']} | | |")
            else:
                lines.append(
                    f"| {name} | {_f(figures['images_per_second'])} | {_f(figures['latency_ms']['p50'], 2)} "
                    f"| {_f(figures['latency_ms']['p99'], 2)} |"
                )
    lines += ["", "Goals (issue 6; they apply to one H200 with 16 cores):", "", "| goal | value | target | met |", "|---|---|---|---|"]
    for goal in report["goals"]:
        met = "—" if goal["met"] is None else ("yes" if goal["met"] else "NO")
        if not goal["applies"]:
            met += " (not an H200 CUDA run)"
        lines.append(f"| {goal['goal']} | {_f(goal['value'], 2)} | {goal['target']:,} | {met} |")
    lines += ["", "Exports:", "", "| precision | seconds | MB | check against fp32 |", "|---|---|---|---|"]
    for precision, export in report["exports"].items():
        check = export.get("checks") or {}
        shown = ("label_agreement", "max_abs_dprob", "descriptor_cosine_min", "images")
        agreement = ", ".join(f"{key} {check[key]:.4g}" for key in shown if isinstance(check.get(key), (int, float))) or "—"
        lines.append(f"| {precision} | {export['seconds']:.1f} | {export['bytes'] / 1e6:.1f} | {agreement} |")
    lines += ["", "Phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in report["phase_seconds"].items()), ""]
    return "\n".join(lines)


def save(report: dict, json_path: Path, md_path: Path) -> str:
    """Write what is measured so far (a later failure or timeout keeps it); returns the Markdown."""
    from gender_cli.atomic import write_json_atomically
    from gender_cli.bench.bench import device_description

    measured = next((entry for entry in report["runs"].values() if "device" in entry), {})
    report["device"] = measured.get("device") or device_description([])
    report["goals"] = goals(report["runs"], report["device"])
    write_json_atomically(json_path, report)
    text = markdown(report)
    md_path.write_text(text)
    return text


# -- main -----------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="vgg-face", choices=NETWORKS, help="which network (a stand-in unless --weights)")
    parser.add_argument("--weights", type=Path, default=None, help="a weights file to run instead of a stand-in "
                        "(dlib_face_recognition_resnet_model_v1.dat: real weights, 22 MB)")
    parser.add_argument("--size", default="full", choices=["full", "tiny"], help="stand-in network size")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu", "auto"], help="onnxruntime device")
    parser.add_argument("--batch", type=int, default=64, help="images per batch")
    parser.add_argument("--precisions", default="fp32,fp16", help="comma-separated: fp32, fp16, int8")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs before each timing")
    parser.add_argument("--iters", type=int, default=None, help="timed runs (default: about --seconds of them)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed length of each model-only run")
    parser.add_argument("--faces", type=Path, default=None, help="JPEG folder for end-to-end (default: --jpegs generated)")
    parser.add_argument("--jpegs", type=int, default=2000, help="generated JPEGs for end-to-end when --faces is not given")
    parser.add_argument("--workers", type=int, default=None, help="decode threads (default: all cores)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "bench-gpu-out"), help="where the JSON and Markdown go")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder for models (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.jpegs < 1 or args.batch < 1:
        raise SystemExit("--jpegs and --batch must be at least 1")
    reexec_with_cuda_libraries(args.device)
    if args.work is not None:
        return run(args, args.work)
    with tempfile.TemporaryDirectory(prefix="gender-cli-gpu-bench-") as scratch:  # ~1 GB of models at full size
        return run(args, Path(scratch))


def run(args, work: Path) -> int:
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    started = time.perf_counter()
    phases = {}
    torch_info = torch_facts() if not args.no_torch else {"skipped": "--no-torch"}  # torch's CUDA libraries first
    how_imported = import_from_tree()
    os.environ["GENDER_CLI_HOME"] = str(work / "home")
    args.out.mkdir(parents=True, exist_ok=True)

    from gender_cli import __version__, workspace
    from gender_cli.atomic import write_json_atomically
    from gender_cli.bench.bench import bench, log_stages
    from gender_cli.errors import GenderCliError
    from gender_cli.system import available_cpus

    report = {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python3", *sys.argv]),
        "gender_cli": __version__,
        "gender_cli_import": how_imported,
        "size": args.size,
        "device_requested": args.device,
        "batch": args.batch,
        "warmup": args.warmup,
        "iters": args.iters,
        "seconds": args.seconds,
        "cpu_cores": available_cpus(),
        "python": platform.python_version(),
        "ld_library_path_added": os.environ.get(LIBRARY_MARK, ""),
        "nvidia_smi": nvidia_smi(),
        "torch": torch_info,
        "onnxruntime": onnxruntime_facts(args.device),
        "exports": {},
        "runs": {},
        "phase_seconds": phases,
    }
    json_path, md_path = args.out / "bench-gpu.json", args.out / "bench-gpu.md"
    log(f"onnxruntime {report['onnxruntime']['version']} providers {report['onnxruntime']['available_providers']}; "
        f"torch {report['torch'].get('version')}; gender_cli {how_imported}")

    mark = time.perf_counter()
    from gender_cli.export.export import export

    what = str(args.weights) if args.weights else f"the {args.size} {args.network} stand-in network"
    log(f"building {what} and a head")
    network = build_network(args.network, args.size, args.seed, args.weights)
    report["network"], report["standin"] = (args.network, bool(network.standin))
    network, head_dir = build_workspace(network, args.seed, hidden=256 if args.size == "full" else 8)
    if args.faces is not None:
        folder = args.faces.resolve()
        report["jpegs"] = f"{folder} ({sum(1 for p in folder.rglob('*') if p.is_file())} files)"
    else:
        folder = write_jpegs(work / "jpegs", args.jpegs, args.seed)
        distinct = min(args.jpegs, DISTINCT_JPEGS)
        report["jpegs"] = f"{args.jpegs} generated {JPEG_SIZE}x{JPEG_SIZE} JPEGs ({distinct} distinct)"
    calibration = calibration_subset(folder, work / "calibration", CALIBRATION_IMAGES)
    phases["inputs"] = time.perf_counter() - mark

    if args.device != "cpu":  # find out at once, on a tiny graph, whether CUDA loads
        from gender_cli.convert.vgg_face import vgg_face_network
        from gender_cli.infer.session import CUDA, open_session

        probe = export(vgg_face_network("tiny"), work / "probe.onnx", descriptor="pool5").path
        try:
            loaded = open_session(probe, device=args.device)
            report["probe_providers"] = loaded.providers
            if args.device == "auto" and CUDA not in loaded.providers:
                log(f"auto: running on CPU ({loaded.notice})")
        except GenderCliError as exc:
            report["cuda_error"] = str(exc)
            write_json_atomically(json_path, report)
            md_path.write_text(f"# gender-cli GPU benchmark\n\nCUDA DID NOT LOAD: {exc}\n")
            cuda_banner(str(exc))
            return 3

    for precision in precisions:
        mark = time.perf_counter()
        log(f"exporting {precision}")
        result = export(
            network, workspace.classifier_path(precision), head=head_dir, precision=precision,
            calibration=calibration if precision != "fp32" else None,
        )
        report["exports"][precision] = {"seconds": result.seconds, "bytes": result.size_bytes, "checks": result.checks}
        phases[f"export {precision}"] = time.perf_counter() - mark
    del network

    for precision in precisions:
        mark = time.perf_counter()
        try:
            figures = bench(
                workspace.classifier_path(precision), batch=args.batch, device=args.device, warmup=args.warmup,
                iters=args.iters, images=folder, variants=False,
                compare_torch=not args.no_torch and precision != "int8", workers=args.workers,
                target_seconds=args.seconds, command=report["command"],
                progress=log_stages(lambda message, p=precision: log(f"{p}: {message}")),
            )
        except Exception as exc:  # keep what the other precisions measured
            log(f"{precision}: failed: {first_line(exc)}")
            figures = {"error": first_line(exc)}
        report["runs"][precision] = figures
        phases[f"bench {precision}"] = time.perf_counter() - mark
        save(report, json_path, md_path)

    device = report.get("device", {})
    if device.get("kind") == "cuda" and "fp16" in precisions:
        mark = time.perf_counter()
        log("fp16: onnxruntime settings beside the default")
        try:
            report["ort_experiments"] = ort_option_experiments(
                workspace.classifier_path("fp16"), args.batch, args.warmup, args.iters, args.seconds
            )
        except Exception as exc:
            report["ort_experiments"] = {"all": {"skipped": first_line(exc)}}
        phases["ort experiments"] = time.perf_counter() - mark
    phases["total"] = time.perf_counter() - started
    text = save(report, json_path, md_path)
    print(text, flush=True)
    if args.device != "cpu" and device.get("kind") != "cuda":
        notices = [entry.get("notice") for entry in report["runs"].values() if entry.get("notice")]
        cuda_banner(notices[0] if notices else "onnxruntime ran on the CPU")
        return 3 if args.device == "cuda" else 0
    log(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
