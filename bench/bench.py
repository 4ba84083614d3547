"""Throughput and latency of an exported classifier: model-only and end-to-end.

- Model-only: one fixed synthetic uint8 batch (seeded), ``warmup`` untimed runs, then
  ``iters`` timed runs (by default as many as fit in about ``DEFAULT_SECONDS``).
- End-to-end (``images``): one ``classify`` pass over the folder on the loaded model
  (the local engine: decode threads, inference, rows, the CSV writer, into a scratch
  file), so the figure is what ``classify`` gets; the decode side alone is timed
  first, so the bottleneck is visible. With ``faces`` (detection
  settings) the pipeline of ``classify --detect`` instead (``bench_faces``).
- End-to-end on Ray (``engine="ray"``): one ``classify --engine ray`` pass over the same folder
  (rows to a scratch file; with ``faces``, detecting), beside the local figure; Ray's
  start-up is reported apart.
- Side by side: the other precision variants stored next to the model
  (``classifier-<precision>.onnx``), each model-only with the same settings, as
  ratios to fp32; TensorFlow and PyTorch on the same weights live in ``tf_compare``
  and ``torch_compare`` (optional, each imported only when asked for).
- One pass for every head: for a graph with more than one head (gender and age),
  the same batch through the graph twice, as libraries that run one full network per
  attribute do (deepface's ``analyze(actions=["age", "gender"])``): two backbone passes
  per image against our one (``two_passes``).

Results are plain dicts (the JSON written by ``gender-cli bench --json``); nothing
here prints. Figures: img/s, and per-batch latency mean/min/p50/p90/p99/max in ms.
"""

from __future__ import annotations

import datetime
import itertools
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gender_cli import __version__, contract
from gender_cli.bench.machine import cpu_model
from gender_cli.errors import ModelFileError
from gender_cli.devices import DEFAULT_DEVICE
from gender_cli.infer.batches import iter_batches
from gender_cli.infer.engine import DEFAULT_ENGINE
from gender_cli.infer.engine_ray import RayOptions
from gender_cli.infer.request import DEFAULT_BATCH
from gender_cli.infer.detect import settings_for_model
from gender_cli.system import available_cpus
from gender_cli.infer.files import list_image_files
from gender_cli.infer.session import LoadedModel, describe_model, open_session

DEFAULT_SECONDS = 3.0  # timed run length when --iters is not given
MIN_ITERS, MAX_ITERS = 5, 10_000
SYNTHETIC_SEED = 0

Progress = Callable[[str, int, int], None]  # (stage, done, total); total 0 when not known ahead


def latency_stats(seconds: list[float], batch: int) -> dict[str, Any]:
    """img/s and latency percentiles (ms) from per-batch wall times."""
    times = np.asarray(seconds, dtype=np.float64)
    total = float(times.sum())
    ms = times * 1000.0
    return {
        "images_per_second": batch * len(times) / total if total > 0 else 0.0,
        "latency_ms": {
            "mean": float(ms.mean()),
            "min": float(ms.min()),
            "p50": float(np.percentile(ms, 50)),
            "p90": float(np.percentile(ms, 90)),
            "p99": float(np.percentile(ms, 99)),
            "max": float(ms.max()),
        },
        "iters": len(times),
        "seconds": total,
    }


def pass_stats(per_batch: list[float], batch: int, files: int, seconds: float) -> dict[str, Any]:
    """Per-batch latency of one pass over a folder, with img/s counted in files (not
    padded slots, nor faces)."""
    stats = latency_stats(per_batch, batch)
    stats["images_per_second"] = files / seconds
    stats["seconds"] = seconds
    return stats


def synthetic_batch(batch: int, input_size: tuple[int, ...]) -> np.ndarray:
    height, width = input_size[0], input_size[1]
    rng = np.random.default_rng(SYNTHETIC_SEED)
    return rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8)


def log_stages(log: Callable[[str], None]) -> Progress:
    """A progress callback for scripts: one log line as each stage starts."""
    return lambda stage, done, total: log(stage) if done == 0 else None


def _ticker(progress: Progress | None, stage: str, warmup: int, iters: int | None) -> Callable[[], None] | None:
    """A callback for ``time_callable`` that reports each call of ``stage`` as done."""
    if progress is None:
        return None
    total = max(0, warmup) + iters if iters is not None else 0
    count = itertools.count(1)
    progress(stage, 0, total)
    return lambda: progress(stage, next(count), total)


def time_callable(
    run: Callable[[], Any], warmup: int, iters: int | None, target_seconds: float = DEFAULT_SECONDS,
    tick: Callable[[], None] | None = None,
) -> tuple[list[float], int]:
    """Warm up, then time each call: ``iters`` calls, or (``iters=None``) calls until
    ``target_seconds`` have passed, at least MIN_ITERS and at most MAX_ITERS. ``tick``
    is called after every call, warm-up included (progress)."""
    tick = tick or (lambda: None)
    for _ in range(max(0, warmup)):
        run()
        tick()
    seconds: list[float] = []
    elapsed = 0.0
    while True:
        if iters is not None and len(seconds) >= iters:
            break
        if iters is None and len(seconds) >= MIN_ITERS and (elapsed >= target_seconds or len(seconds) >= MAX_ITERS):
            break
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
        elapsed += seconds[-1]
        tick()
    return seconds, len(seconds)


def bench_model_only(
    model: LoadedModel, batch: int, warmup: int = 3, iters: int | None = None, target_seconds: float = DEFAULT_SECONDS,
    progress: Progress | None = None, stage: str = "model-only",
) -> dict[str, Any]:
    batch = model.fixed_batch or batch
    images = synthetic_batch(batch, model.info.input_size)
    seconds, _ = time_callable(lambda: model.run(images), warmup, iters, target_seconds,
                               tick=_ticker(progress, stage, warmup, iters))
    return {"mode": "model-only", "input": f"synthetic uint8 batch (seed {SYNTHETIC_SEED})", **latency_stats(seconds, batch)}


def bench_two_passes(
    model: LoadedModel, batch: int, warmup: int, iters: int | None, target_seconds: float,
    progress: Progress | None, model_only: dict[str, Any],
) -> dict[str, Any]:
    """Each batch through the graph twice (one backbone pass per attribute, as deepface's
    ``analyze(actions=["age", "gender"])`` runs its age and gender networks), beside the
    graph's one pass for every head."""
    batch = model.fixed_batch or batch
    images = synthetic_batch(batch, model.info.input_size)

    def twice() -> None:
        model.run(images)
        model.run(images)

    seconds, _ = time_callable(twice, warmup, iters, target_seconds,
                               tick=_ticker(progress, "two passes", warmup, iters))
    stats = latency_stats(seconds, batch)
    return {
        "mode": "two full-graph runs per batch",
        "what": "one backbone pass per attribute, as deepface's analyze(actions=['age', 'gender']) runs "
                "a full network for each; here this graph run twice per batch",
        **stats,
        "one_pass_speedup": model_only["images_per_second"] / stats["images_per_second"],
    }


def bench_end_to_end(
    model: LoadedModel, folder: str | os.PathLike, batch: int, workers: int | None = None, resize: str | None = None,
    progress: Progress | None = None, faces=None,
) -> dict[str, Any]:
    """One pass over ``folder``: decode-only first, then decode + inference; with
    ``faces`` (infer.detect.FaceSettings), the face pipeline's figures."""
    files = list_image_files([folder])
    if not files:
        from gender_cli.errors import GenderCliError

        raise GenderCliError(f"no files under {folder}")
    if faces is not None:
        from gender_cli.bench.bench_faces import bench_faces

        return bench_faces(model, files, str(folder), batch, faces, workers, progress)
    size = model.info.image_size
    resize = resize or model.info.resize

    report = progress or (lambda stage, done, total: None)
    started = time.perf_counter()
    failed = done = 0
    report("decode only", 0, len(files))
    for decoded in iter_batches(files, batch, size=size, resize=resize, workers=workers):
        failed += len(decoded.errors)
        done += len(decoded)
        report("decode only", done, len(files))
    decode_seconds = time.perf_counter() - started

    per_batch, seconds = _classify_pass(model, folder, batch, workers, resize, len(files), report)
    stats = pass_stats(per_batch, batch, len(files), seconds)
    return {
        "mode": "end-to-end",
        "input": str(folder),
        "files": len(files),
        "failed_files": failed,
        "decode_workers": workers or available_cpus(),
        "decode_only_images_per_second": len(files) / decode_seconds,
        **stats,
    }


def _classify_pass(model: LoadedModel, folder, batch: int, workers: int | None, resize: str, total: int,
                   report: Progress) -> tuple[list[float], float]:
    """One ``classify`` pass over ``folder`` with the local engine on ``model``, rows to
    a scratch CSV: (seconds per block, seconds)."""
    from gender_cli.infer.classify import classify
    from gender_cli.infer.engine_local import LocalEngine
    from gender_cli.infer.request import ClassifyRequest

    per_batch: list[float] = []
    done = 0
    report("end-to-end", 0, total)
    with tempfile.TemporaryDirectory(prefix="gender-cli-bench-") as scratch:
        request = ClassifyRequest([str(folder)], output=str(Path(scratch) / "rows.csv"), model=str(model.path),
                                  batch=batch, workers=workers, resize=resize)
        started = time.perf_counter()
        mark = started

        def block_done(count: int) -> None:
            nonlocal mark, done
            now = time.perf_counter()
            per_batch.append(now - mark)
            mark = now
            done += count
            report("end-to-end", done, total)

        classify(request, LocalEngine(model, batch, workers, resize), on_batch=block_done)
        seconds = time.perf_counter() - started
    return per_batch, seconds


def bench_end_to_end_ray(
    model_path: str | os.PathLike, folder: str | os.PathLike, batch: int, device: str = DEFAULT_DEVICE,
    progress: Progress | None = None, faces=None, ray_options: RayOptions | None = None,
) -> dict[str, Any]:
    """One ``classify --engine ray`` pass over ``folder`` (with ``faces``, detection
    settings, that of ``classify --engine ray --detect``): img/s without Ray's start-up,
    which is reported apart."""
    from gender_cli.infer.classify import classify
    from gender_cli.infer.request import ClassifyRequest

    report = progress or (lambda stage, done, total: None)
    counts = {"done": 0, "total": 0}

    def started(total: int) -> None:
        counts["total"] = total
        report("end-to-end on Ray", 0, total)

    def batch_done(count: int) -> None:
        counts["done"] += count
        report("end-to-end on Ray", counts["done"], counts["total"])

    with tempfile.TemporaryDirectory(prefix="gender-cli-bench-") as scratch:
        request = ClassifyRequest([folder], model=model_path, output=str(Path(scratch) / "rows.csv"), batch=batch,
                                  device=device, detect=faces, engine="ray", ray=ray_options or RayOptions())
        summary = classify(request, on_start=started, on_batch=batch_done)
    return {
        **({"faces": summary.faces, "detection": faces.describe()} if faces is not None else {}),
        "mode": "end-to-end on Ray",
        "input": str(folder),
        "files": summary.files,
        "failed_files": summary.failed,
        "images_per_second": summary.images_per_second,
        "seconds": summary.seconds,
        "startup_seconds": summary.cluster.startup_seconds,
        "address": summary.cluster.address,
        "cluster": summary.cluster.cluster,
        "plan": summary.cluster.plan,
        "providers": summary.providers,
    }


def sibling_variants(model_path: Path) -> dict[str, Path]:
    """classifier-<precision>.onnx files stored beside ``model_path`` (itself included)."""
    found = {}
    for precision in contract.PRECISIONS:
        candidate = model_path.parent / f"classifier-{precision}.onnx"
        if candidate.is_file():
            found[precision] = candidate
    return found


def device_description(providers: list[str]) -> dict[str, Any]:
    cores = available_cpus()
    description: dict[str, Any] = {
        "kind": "cuda" if "CUDAExecutionProvider" in providers else "cpu",
        "cpu": cpu_model(),
        "cpu_cores": cores,
        "gpu": _gpu_name(),
        "platform": platform.platform(),
    }
    return description


def _gpu_name() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    first = result.stdout.strip().splitlines()
    return first[0] if result.returncode == 0 and first else None


def bench(
    model_path: str | os.PathLike,
    batch: int = DEFAULT_BATCH,
    device: str = DEFAULT_DEVICE,
    warmup: int = 3,
    iters: int | None = None,
    images: str | os.PathLike | None = None,
    variants: bool = True,
    compare_tf: bool = False,
    compare_torch: bool = False,
    threads: int | None = None,
    workers: int | None = None,
    target_seconds: float = DEFAULT_SECONDS,
    command: str | None = None,
    progress: Progress | None = None,
    faces: dict | None = None,
    engine: str = DEFAULT_ENGINE,
    ray_options: RayOptions | None = None,
) -> dict[str, Any]:
    """Every figure ``gender-cli bench`` reports, as one JSON-ready dict.

    ``faces``: detection settings given for the end-to-end pass (None: no detection).
    ``ray_options``: where and how big the Ray pass is (``engine="ray"``).
    """
    model_path = Path(model_path)
    model = open_session(model_path, device=device, threads=threads, allow_spinning=images is None)
    batch = model.fixed_batch or batch  # a graph exported with a static N
    result: dict[str, Any] = {
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command or " ".join(sys.argv),
        "gender_cli": __version__,
        **describe_model(model),
        "model_bytes": _model_bytes(model_path),
        "notice": model.notice,
        "device": device_description(model.providers),
        "device_requested": device,
        "threads": {"intra_op": model.threads, "inter_op": 1, "decode_workers": workers or available_cpus()},
        "batch": batch,
        "warmup": warmup,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    model_only = bench_model_only(model, batch, warmup, iters, target_seconds, progress, f"model-only {model.info.precision}")
    result["model_only"] = model_only
    result["iters"] = model_only["iters"]

    if len(model.info.heads) > 1:
        result["two_passes"] = bench_two_passes(model, batch, warmup, iters, target_seconds, progress, model_only)

    if images is not None:
        settings = settings_for_model(faces, model.info.raw)
        e2e = bench_end_to_end(model, images, batch, workers=workers, progress=progress, faces=settings)
        e2e["ratio_to_model_only"] = e2e["images_per_second"] / model_only["images_per_second"]
        result["end_to_end"] = e2e
        if engine == "ray":
            on_ray = bench_end_to_end_ray(model_path, images, batch, device, progress, settings, ray_options)
            on_ray["ratio_to_local"] = on_ray["images_per_second"] / e2e["images_per_second"]
            result["end_to_end_ray"] = on_ray

    if variants:
        result["variants"] = _bench_variants(model_path, model, model_only, batch, device, warmup, iters, threads, target_seconds, progress)

    if compare_tf:
        from gender_cli.bench.tf_compare import bench_tensorflow

        result["tensorflow"] = _with_speedup(bench_tensorflow(model, batch, warmup, iters, target_seconds, progress), model_only)

    if compare_torch:
        from gender_cli.bench.torch_compare import bench_pytorch

        result["pytorch"] = _with_speedup(bench_pytorch(model, batch, warmup, iters, target_seconds, progress), model_only)
    else:
        result["pytorch"] = _pytorch_status()
    return result


def _bench_variants(model_path, model, model_only, batch, device, warmup, iters, threads, target_seconds, progress):
    found = sibling_variants(model_path)
    figures: dict[str, Any] = {}
    for precision, path in found.items():
        if path.resolve() == model_path.resolve():
            figures[precision] = {"model": str(path), "images_per_second": model_only["images_per_second"], "latency_ms": model_only["latency_ms"]}
            continue
        try:
            variant = open_session(path, device=device, threads=threads)
        except ModelFileError as exc:  # a broken sibling must not sink the figures already measured
            figures[precision] = {"model": str(path), "skipped": str(exc)}
            continue
        if variant.info.kind != model.info.kind:
            reason = f"a {variant.info.kind} graph, not a {model.info.kind}"
            figures[precision] = {"model": str(path), "skipped": reason}
            continue
        if variant.info.input_size != model.info.input_size:
            figures[precision] = {"model": str(path), "skipped": "different input size"}
            continue
        stats = bench_model_only(variant, batch, warmup, iters, target_seconds, progress, f"model-only {precision}")
        figures[precision] = {
            "model": str(path),
            "providers": variant.providers,
            "images_per_second": stats["images_per_second"],
            "latency_ms": stats["latency_ms"],
            "iters": stats["iters"],
            "precision_check": variant.info.raw.get(contract.Meta.PRECISION_CHECK),
        }
    reference = figures.get("fp32", {}).get("images_per_second")
    for entry in figures.values():
        if reference and entry.get("images_per_second"):
            entry["speed_vs_fp32"] = entry["images_per_second"] / reference
    return figures


def _with_speedup(figures: dict[str, Any], model_only: dict[str, Any]) -> dict[str, Any]:
    """Add onnxruntime's speed relative to another framework's timed figures, when it ran."""
    speed = figures.get("images_per_second")
    if speed:
        figures["onnxruntime_speedup"] = model_only["images_per_second"] / speed
    return figures


def _pytorch_status() -> dict[str, Any]:
    """What ``pytorch`` says when no comparison was asked for."""
    import importlib.util

    installed = importlib.util.find_spec("torch") is not None
    reason = "not asked for (--compare-torch)" if installed else "torch is not installed"
    return {"skipped": reason, "requested": False}


def _model_bytes(path: Path) -> int:
    total = path.stat().st_size
    data = path.with_name(contract.external_data_name(path.name))  # external weights, when exported so
    if data.is_file():
        total += data.stat().st_size
    return total
