"""``gender-cli bench``: parse options, call bench.benchmark, print the figures."""

from __future__ import annotations

import shlex

import click

from gender_cli.cli.options import (
    RAY_OPTIONS, batch_option, check_output_location, detect_options, device_option, engine_option, model_option,
    quiet_option, ray_options, workers_option,
)
from gender_cli.cli.help_format import ERRORS, OK, epilog
from gender_cli.cli.messages import notice, warn_if_standin
from gender_cli.cli.progress import StageProgress
from gender_cli.infer.engine_ray import RayOptions
from gender_cli.infer.request import DEFAULT_BATCH


@click.command(
    "bench",
    epilog=epilog("gender-cli bench --batch 64 --images faces/ -o bench.json", {**OK, **ERRORS}),
)
@model_option
@batch_option(DEFAULT_BATCH)
@device_option
@click.option("--warmup", type=click.IntRange(0, 1000), default=3, show_default=True, help="Untimed runs before timing.")
@click.option(
    "--iters",
    type=click.IntRange(1, 100_000),
    default=None,
    help="Timed runs per model. Default: as many as fit in about 3 seconds (at least 5).",
)
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=str),
    default=None,
    help="Also measure end-to-end over this folder: one classify pass (decode + preprocess + inference + "
    "rows written to a scratch CSV), after a decode-only pass of the same files.",
)
@click.option(
    "-o",
    "--output",
    "json_path",
    type=click.Path(dir_okay=False, path_type=str),
    default=None,
    help="Also write every figure and setting as JSON to this file (atomically).",
)
@click.option(
    "--variants/--no-variants",
    default=True,
    show_default=True,
    help="Also time the other precisions stored beside the model (classifier-fp16/int8.onnx) "
    "and report their speed relative to fp32.",
)
@click.option(
    "--compare-tf",
    is_flag=True,
    help="Also time TensorFlow/Keras on the workspace's converted network and gender head "
    "(an age head is left out, and the report says so; needs TensorFlow and 'gender-cli "
    "convert'; skipped with a reason otherwise).",
)
@click.option(
    "--compare-torch",
    is_flag=True,
    help="Also time PyTorch on the workspace's converted network and gender head, fed the same batch "
    "(fp32 on CPU; fp16 and channels_last on CUDA) and report onnxruntime's speed-up over it "
    "(needs torch and 'gender-cli convert'; skipped with a reason otherwise).",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 1024),
    default=None,
    help="onnxruntime intra-op threads. Default: number of CPU cores.",
)
@workers_option
@detect_options()
@engine_option
@ray_options
@quiet_option
def bench(
    model_path, batch, device, warmup, iters, images, json_path, variants, compare_tf, compare_torch, threads, workers,
    detect, engine, quiet, **ray,
):
    """Measure img/s and per-batch latency (p50/p90/p99) of an exported classifier.

    For a graph with gender and age heads it also times each batch through the graph
    twice, one backbone pass per attribute as deepface's analyze(actions=["age",
    "gender"]) runs them, against the graph's single pass.
    With --images DIR --detect, the end-to-end figures are those of 'classify --detect':
    photos and faces per second and the share of the work spent in the detector.

    With --engine ray and --images, the end-to-end pass also runs on Ray (see classify
    --engine ray; with --detect, detecting) and is reported beside the local one.
    """
    from gender_cli import workspace
    from gender_cli.atomic import write_json_atomically
    from gender_cli.bench.bench import bench

    if detect is not None and images is None:
        raise click.UsageError("--detect measures the end-to-end pipeline: give --images DIR")
    if engine == "ray":
        if images is None:
            raise click.UsageError("--engine ray measures the end-to-end pass; give --images FOLDER")
        from gender_cli.infer.ray_cluster import require_ray

        require_ray()
    elif any(ray[name] is not None for name in RAY_OPTIONS):
        raise click.UsageError("the Ray options apply to --engine ray")
    if json_path:
        check_output_location(json_path, "--output")
    model_path = model_path or str(workspace.default_classifier())
    progress = StageProgress(quiet, {
        **{stage: (stage, "img", False)
           for stage in ("decode only", "without detection", "end-to-end", "end-to-end on Ray")},
        "building the Keras model": ("building the Keras model", "model", False),
    })
    try:
        result = bench(
            model_path,
            batch=batch,
            device=device,
            warmup=warmup,
            iters=iters,
            images=images,
            variants=variants,
            compare_tf=compare_tf,
            compare_torch=compare_torch,
            threads=threads,
            workers=workers,
            command=_command_line(click.get_current_context()),
            progress=progress,
            faces=detect,
            engine=engine,
            ray_options=RayOptions(**ray),
        )
    finally:
        progress.close()
    warn_if_standin(result["standin"])
    notice(result["notice"], quiet)
    if json_path:
        write_json_atomically(json_path, result)
    click.echo(format_report(result))
    if json_path and not quiet:
        click.echo(f"bench: figures written to {json_path}", err=True)


def _command_line(ctx: click.Context) -> str:
    """The options given on the command line, as a rerunnable ``gender-cli bench`` line."""
    words = ["gender-cli", "bench"]
    for param in ctx.command.params:
        if ctx.get_parameter_source(param.name) != click.core.ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[param.name]
        if param.is_flag and isinstance(param, click.Option):
            if param.secondary_opts and not value:
                words.append(param.secondary_opts[0])
            elif value:
                words.append(param.opts[-1] if param.opts[-1].startswith("--") else param.opts[0])
        else:
            words += [param.opts[0], shlex.quote(str(value))]
    return " ".join(words)


def _figures(name: str, stats: dict) -> str:
    latency = stats["latency_ms"]
    return (
        f"{name:<24} {stats['images_per_second']:>10.1f} img/s   latency/batch ms "
        f"p50 {latency['p50']:.2f}  p90 {latency['p90']:.2f}  p99 {latency['p99']:.2f}"
    )


def format_report(result: dict) -> str:
    device = result["device"]
    hardware = device["gpu"] if device["kind"] == "cuda" and device["gpu"] else f"{device['cpu']} ({device['cpu_cores']} cores)"
    lines = [
        f"model      {result['model']}  ({result['precision']}{', stand-in weights' if result['standin'] else ''})",
        f"providers  {', '.join(result['providers'])} on {hardware}; onnxruntime {result['onnxruntime']}, "
        f"{result['threads']['intra_op']} threads",
        f"batch {result['batch']}, warmup {result['warmup']}, iters {result['iters']}",
        _figures("model-only", result["model_only"]) + (f"  (heads: {', '.join(result['heads'])}, one pass)"
                                                       if len(result.get("heads", [])) > 1 else ""),
    ]
    two = result.get("two_passes")
    if two:
        lines.append(_figures("two passes per batch", two)
                     + f"  one pass x{two['one_pass_speedup']:.2f} (deepface-style: a network per attribute)")
    e2e = result.get("end_to_end")
    if e2e and "detection" in e2e:
        lines += _face_lines(e2e)
    elif e2e:
        lines.append(_figures(f"end-to-end ({e2e['files']} files)", e2e))
        lines.append(
            f"{'':<24} e2e/model-only {e2e['ratio_to_model_only']:.2f}; decode alone "
            f"{e2e['decode_only_images_per_second']:.1f} img/s with {e2e['decode_workers']} workers"
            + (f"; {e2e['failed_files']} of these files unreadable (still counted in img/s)"
               if e2e.get("failed_files") else "")
        )
    on_ray = result.get("end_to_end_ray")
    if on_ray:
        lines.append(
            f"{'end-to-end on ray':<24} {on_ray['images_per_second']:>10.1f} img/s   x{on_ray['ratio_to_local']:.2f} "
            + (f"of local, {on_ray['faces']} faces; " if "faces" in on_ray else "of local; ")
            + f"ray start-up {on_ray['startup_seconds']:.1f} s (not in img/s); {on_ray['plan']}"
        )
    for precision, entry in (result.get("variants") or {}).items():
        if "skipped" in entry:
            lines.append(f"{precision:<24} skipped: {entry['skipped']}")
        elif precision != result["precision"]:
            ratio = f"  x{entry['speed_vs_fp32']:.2f} vs fp32" if "speed_vs_fp32" in entry else ""
            lines.append(_figures(f"variant {precision}", entry) + ratio)
    tf = result.get("tensorflow")
    if tf:
        if "skipped" in tf:
            lines.append(f"{'tensorflow':<24} skipped: {tf['skipped']}")
        else:
            lines.append(_figures(f"tensorflow {tf['tensorflow']}", tf) + f"  onnxruntime x{tf['onnxruntime_speedup']:.2f}")
    torch_figures = result.get("pytorch")
    if torch_figures and "skipped" not in torch_figures:
        name = f"pytorch {torch_figures['torch']} {torch_figures['precision']}"
        lines.append(_figures(name, torch_figures) + f"  onnxruntime x{torch_figures['onnxruntime_speedup']:.2f}")
    elif torch_figures and torch_figures.get("requested", True):
        lines.append(f"{'pytorch':<24} skipped: {torch_figures['skipped']}")
    return "\n".join(lines)


def _face_lines(e2e: dict) -> list[str]:
    counts = e2e["files_by_face_count"]
    return [
        _figures(f"end-to-end ({e2e['files']} files)", e2e),
        f"{'':<24} {e2e['faces_per_second']:.1f} faces/s; {e2e['faces']} faces, photos with 0/1/2/3+ faces: "
        + "/".join(str(counts[key]) for key in counts),
        f"{'':<24} detector {e2e['detection']['detector']}: {100 * e2e['detection_share']:.0f} % of the time "
        f"({e2e['plain_images_per_second']:.1f} img/s without detection); CPU ms per photo "
        + ", ".join(f"{stage} {ms:.1f}" for stage, ms in e2e["cpu_ms_per_image"].items())
        + f" in {e2e['decode_workers']} threads; inference {e2e['inference_ms_per_image']:.1f}",
    ]
