"""PyTorch on the same weights, for ``gender-cli bench --compare-torch``.

Imported only when asked for; torch is imported inside the functions. The PyTorch
model (``torch_port.Classifier``) is built from the same network and head as
``--compare-tf`` uses (``same_weights``) and fed the same seeded uint8 batch as
onnxruntime's model-only run, with the same warm-up and iteration rules
(``bench.time_callable``) and figures (``bench.latency_stats``).

Settings:

* CPU: float32, NCHW, ``torch.set_num_threads`` = onnxruntime's intra-op threads.
* CUDA: float16 (float32 when the ONNX model is fp32), ``channels_last``,
  ``cudnn.benchmark = True`` (the batch shape is fixed, as for onnxruntime's
  exhaustive algorithm search), ``torch.inference_mode``.

Each timed call does what ``session.run`` does: uint8 batch from host memory in,
float32 outputs back in host memory; on CUDA the figures with the input already on
the device are reported beside them (``device_resident``). The outputs are compared
with onnxruntime's on the same batch (``agreement_with_onnxruntime``): a port that
computed something else would show there.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from gender_cli.errors import GenderCliError
from gender_cli.infer.session import LoadedModel


def default_precision(device: str, onnx_precision: str) -> str:
    """fp32 on CPU; on CUDA fp16 unless the ONNX model itself is fp32."""
    return "fp32" if device == "cpu" or onnx_precision == "fp32" else "fp16"


def bench_pytorch(
    model: LoadedModel,
    batch: int,
    warmup: int,
    iters: int | None,
    target_seconds: float,
    progress=None,
    weights=None,
    precision: str | None = None,
) -> dict[str, Any]:
    """Time the PyTorch port next to ``model``; ``skipped`` with the reason when it cannot run.

    ``weights`` (a ``same_weights.SameWeights``) defaults to the workspace's network
    and latest head.
    """
    if importlib.util.find_spec("torch") is None:
        return {"skipped": "torch is not installed"}
    if weights is None:
        from gender_cli.bench.same_weights import find_same_weights

        try:
            weights = find_same_weights(model)
        except GenderCliError as exc:
            return {"skipped": str(exc)}

    import torch

    device = model.device
    if device == "cuda" and not torch.cuda.is_available():
        return {"skipped": f"onnxruntime runs on CUDA but torch {torch.__version__} sees no CUDA device"}
    precision = precision or default_precision(device, model.info.precision)
    settings = _settings(torch, device, precision, model.threads)
    threads_before = torch.get_num_threads()
    benchmark_before = torch.backends.cudnn.benchmark
    try:
        if device == "cuda":
            torch.backends.cudnn.benchmark = True
        else:
            torch.set_num_threads(model.threads)
        figures = _measure(torch, model, weights, device, precision, batch, warmup, iters, target_seconds, progress)
    except RuntimeError as exc:  # torch's own failures (out of memory, a missing kernel): ORT's figures stand
        lines = str(exc).strip().splitlines()
        return {**settings, "skipped": f"PyTorch failed: {lines[0] if lines else type(exc).__name__}"}
    finally:
        torch.set_num_threads(threads_before)
        torch.backends.cudnn.benchmark = benchmark_before
    return {**settings, "notes": weights.notes, **figures}


def _measure(torch, model: LoadedModel, weights, device, precision, batch, warmup, iters, target_seconds,
             progress=None) -> dict[str, Any]:
    from gender_cli.bench.bench import _ticker, latency_stats, synthetic_batch, time_callable
    from gender_cli.bench.torch_port import Classifier

    on_cuda = device == "cuda"
    net = Classifier(
        weights.network, model.info.descriptor, weights.head, device=device, precision=precision, channels_last=on_cuda
    ).eval()
    images = synthetic_batch(batch, model.info.input_size)

    def host_to_host() -> dict[str, np.ndarray]:
        outputs = net(torch.from_numpy(images).to(device))
        return {name: value.cpu().numpy() for name, value in outputs.items()}

    with torch.inference_mode():
        seconds, _ = time_callable(host_to_host, warmup, iters, target_seconds,
                                   tick=_ticker(progress, f"pytorch {precision}", warmup, iters))
        figures = latency_stats(seconds, batch)
        figures["agreement_with_onnxruntime"] = _agreement(host_to_host(), model.run(images))
        if on_cuda:
            figures["device_resident"] = _time_on_device(torch, net, images, device, warmup, iters, target_seconds, batch)
    return figures


def _settings(torch, device: str, precision: str, threads: int) -> dict[str, Any]:
    on_cuda = device == "cuda"
    settings: dict[str, Any] = {
        "torch": torch.__version__,
        "device": device,
        "precision": precision,
        "memory_format": "channels_last" if on_cuda else "contiguous (NCHW)",
        "input": "the model-only synthetic uint8 batch; host memory in, host memory out (as session.run)",
    }
    if on_cuda:
        settings["gpu"] = torch.cuda.get_device_name()
        settings["cuda"] = torch.version.cuda
        settings["cudnn"] = torch.backends.cudnn.version()
        settings["cudnn_benchmark"] = True
        settings["tf32"] = {  # left at torch's defaults; recorded because fp32 figures depend on them
            "cudnn": getattr(torch.backends.cudnn, "allow_tf32", None),
            "matmul": getattr(torch.backends.cuda.matmul, "allow_tf32", None),
        }
    else:
        settings["threads"] = threads
    return settings


def _time_on_device(torch, net, images, device, warmup, iters, target_seconds, batch) -> dict[str, Any]:
    from gender_cli.bench.bench import latency_stats, time_callable

    resident = torch.from_numpy(images).to(device)

    def run():
        net(resident)
        torch.cuda.synchronize()

    seconds, _ = time_callable(run, warmup, iters, target_seconds)
    return {"input": "the same batch already on the GPU; outputs left there", **latency_stats(seconds, batch)}


def _agreement(torch_outputs: dict[str, np.ndarray], ort_outputs: dict[str, np.ndarray]) -> dict[str, float]:
    """How closely PyTorch reproduces onnxruntime on the timed batch (same weights, same input)."""
    figures = {}
    for name, ours in torch_outputs.items():
        theirs = ort_outputs.get(name)
        if theirs is None or theirs.shape != ours.shape:
            continue
        difference = ours.astype(np.float64) - theirs
        figures[f"{name}_max_abs_difference"] = float(np.abs(difference).max())
        scale = float(np.linalg.norm(theirs))
        figures[f"{name}_relative_error"] = float(np.linalg.norm(difference) / scale) if scale > 0 else 0.0
    return figures
