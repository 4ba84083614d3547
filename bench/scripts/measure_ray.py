"""Measure ``classify --engine ray`` against the local engine on one machine, in one run.

    python bench/scripts/measure_ray.py [--images ../shared/data/utkface-sample] [--files 200] [--batch 8] [--rounds 2]

Builds the full-size stand-in classifier (fp32, ``standin_models.standin_classifier``),
takes ``--files`` evenly spread faces, and then, for each round, classifies them with the local engine and with a fresh local Ray
(2 CPUs here), alternating so that a change in the machine's load hits both:

- img/s of each engine as its summary reports it (the local engine's time excludes
  loading the model, which the CLI does first; the Ray engine's time includes shipping
  the model and the actor loading it, which cannot be done before) and, for both,
  img/s with the model loading included (a steady-state rate is not taken: the driver
  receives Ray's blocks in bursts, so its clock says little about the actor's pace);
- Ray's start-up (``ray.init``) and shutdown seconds, reported apart;
- CPU seconds per image, by role: what the local engine's process used during
  ``classify``, and for Ray the inference actor, the worker processes (decode tasks,
  idle workers), Ray's own services (raylet, GCS, agents) and the driver, over the whole
  run and over the pipeline alone (first ``on_start`` to the last row). CPU time depends
  far less on the other jobs of a shared machine than wall time does, so local CPU ÷
  Ray pipeline CPU is also given: what the img/s ratio would be on an idle machine if
  both engines kept its cores equally busy (an estimate, not a measurement);
- decoding alone: ``load_image`` over the same files in one thread (img/s per core)
  and in as many threads as cores;
- the driver's share: rows per second it turns from result blocks into durable CSV
  and Parquet output (blocks of ``DRIVER_BLOCK_ROWS`` rows, one fsync per block for
  CSV), the ceiling of the whole cluster's rate since every row passes through it.

Writes ``bench/results/ray-engine.json`` and ``ray-engine.md``. The weights are a
STAND-IN: the figures are about speed only.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gender_cli.bench.machine import descends_from
from measure_convert import machine_info
from record import RESULTS, SHARED_FACES, header, machine_line, record
from standin_models import standin_classifier, subset

DRIVER_BLOCK_ROWS = 64  # classify's default --batch: one result block per batch
GOAL = 0.8  # Ray img/s at least this share of the local engine's (issue: Ray must not eat the machine)
PACKAGES = ("gender-cli", "ray", "onnxruntime", "onnxruntime-gpu", "pyarrow", "numpy", "pillow")


def log(message: str) -> None:
    print(f"[{datetime.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# process title -> role, first match wins (Ray names its processes after what they run)
ROLES = (
    (b"MapBatches(Classifier)", "inference actor"),
    (b"ray::", "workers (decode tasks, idle)"),
    (b"raylet", "Ray services"),
    (b"gcs_server", "Ray services"),
    (b"ray", "Ray services"),  # dashboard agent, runtime-env agent, log monitor
)


class CpuSampler:
    """CPU seconds of this process and its descendants by role, sampled twice a second
    (a process that exits keeps the last figure seen for it). ``mark(name)`` takes a
    snapshot now; ``by_role(since, until)`` gives the seconds between two snapshots."""

    def __init__(self):
        import threading

        self.seen: dict[int, tuple[str, float]] = {}
        self.marks: dict[str, tuple[float, dict[int, tuple[str, float]]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        self.mark("enter")
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.mark("exit")

    def mark(self, name: str) -> None:
        self._sample()
        with self._lock:
            self.marks[name] = (_own_cpu(), dict(self.seen))

    def _run(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(0.5):
                self._sample()
                return

    def _sample(self) -> None:
        with self._lock:
            self._sample_locked()

    def _sample_locked(self) -> None:
        me = os.getpid()
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == me:
                continue
            try:
                command = Path(f"/proc/{entry}/cmdline").read_bytes()
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if not descends_from(int(entry), me):
                continue
            role = next((name for key, name in ROLES if key in command), "other")
            before = self.seen.get(int(entry), ("other",))[0]
            if before == "inference actor" or role == "other":
                role = before  # an actor keeps its role between calls and while it exits
            self.seen[int(entry)] = (role, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))

    def by_role(self, since: str = "enter", until: str = "exit") -> dict[str, float]:
        (own_before, before), (own_after, after) = self.marks[since], self.marks[until]
        roles: dict[str, float] = {"driver": own_after - own_before}
        for pid, (role, seconds) in after.items():
            roles[role] = roles.get(role, 0.0) + seconds - before.get(pid, (role, 0.0))[1]
        return roles


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def run_local(model_path: Path, folder: Path, out: Path, batch: int) -> dict:
    from gender_cli.infer.classify import classify, open_engine
    from gender_cli.infer.request import ClassifyRequest

    request = ClassifyRequest([folder], model=model_path, output=str(out), batch=batch)
    started = time.perf_counter()
    engine = open_engine(request)
    loaded = time.perf_counter() - started
    cpu = _own_cpu()
    summary = classify(request, engine=engine)
    cpu = _own_cpu() - cpu
    return {
        "files": summary.files,
        "failed": summary.failed,
        "providers": summary.providers,
        "model_load_s": loaded,
        "seconds": summary.seconds,
        "images_per_second": summary.images_per_second,
        "images_per_second_with_model_load": summary.files / (summary.seconds + loaded),
        "cpu_seconds_per_image": {"this process": cpu / summary.files},
    }


def run_ray(model_path: Path, folder: Path, out: Path, batch: int) -> dict:
    from gender_cli.infer.classify import classify, open_engine
    from gender_cli.infer.request import ClassifyRequest

    request = ClassifyRequest([folder], model=model_path, output=str(out), batch=batch, engine="ray")
    started = time.perf_counter()
    engine = open_engine(request)
    checked = time.perf_counter() - started
    started = time.perf_counter()
    with CpuSampler() as cpu:
        window = {"done": 0, "total": 0}

        def on_start(total: int) -> None:
            window["total"] = total
            cpu.mark("pipeline start")

        def on_batch(count: int) -> None:
            window["done"] += count
            if window["done"] == window["total"]:
                cpu.mark("pipeline end")

        summary = classify(request, engine=engine, on_start=on_start, on_batch=on_batch)
    total = time.perf_counter() - started  # start-up + pipeline + shutdown
    ray = summary.cluster
    return {
        "files": summary.files,
        "failed": summary.failed,
        "providers": summary.providers,
        "cluster": ray.cluster,
        "plan": ray.plan,
        "driver_model_check_s": checked,
        "startup_s": ray.startup_seconds,
        "seconds": summary.seconds,
        "shutdown_s": total - ray.startup_seconds - summary.seconds,
        "images_per_second": summary.images_per_second,
        "images_per_second_with_model_load": summary.images_per_second,  # loading is inside the run
        "cpu_seconds_per_image": {role: seconds / summary.files for role, seconds in cpu.by_role().items()},
        "cpu_seconds_per_image_pipeline": {
            role: seconds / summary.files for role, seconds in cpu.by_role("pipeline start", "pipeline end").items()
        },
    }


def decode_rates(folder: Path, size: tuple[int, int]) -> dict:
    from gender_cli.system import available_cpus
    from gender_cli.infer.files import list_image_files
    from gender_cli.infer.images import load_image

    files = list_image_files([folder])
    load_image(files[0], size=size)  # warm the decoder and the page cache
    for path in files:
        path.read_bytes()
    started = time.perf_counter()
    for path in files:
        load_image(path, size=size)
    one = len(files) / (time.perf_counter() - started)
    cores = available_cpus()
    started = time.perf_counter()
    with ThreadPoolExecutor(cores) as pool:
        list(pool.map(lambda p: load_image(p, size=size), files))
    many = len(files) / (time.perf_counter() - started)
    return {"files": len(files), "one_core_images_per_second": one, "threads": cores, "all_cores_images_per_second": many}


def driver_rates(batch: int, rows: int = 50_000) -> dict:
    rates = {}
    with tempfile.TemporaryDirectory(prefix="measure-ray-driver-") as tmp:
        for fmt, name in (("csv", "rows.csv"), ("parquet", "rows")):
            write_rate(str(Path(tmp) / f"warm-{name}"), fmt, batch, batch)  # one-time imports (pyarrow loads pandas)
            rates[f"{fmt}_rows_per_second"] = write_rate(str(Path(tmp) / name), fmt, batch, rows)
    return {"block_rows": batch, **rates}


def write_rate(output: str, fmt: str, batch: int, rows: int) -> float:
    """Rows per second that a run's writer turns into durable ``fmt`` output at ``output``,
    given as the Ray engine hands them over (blocks of ``batch`` rows as columns)."""
    from gender_cli import contract
    from gender_cli.infer.classify import ClassifySummary
    from gender_cli.infer.row_columns import rows_to_columns
    from gender_cli.infer.rows import Block, Columns, FileDone, Row, category_of
    from gender_cli.infer.writer import open_writer

    sample = [Row(f"s3://bucket/faces/{i:07d}.jpg", "female", [0.25, 0.75], None) for i in range(batch)]
    block = rows_to_columns(sample, len(contract.LABELS))
    writer, _ = open_writer(output, fmt, Columns(contract.LABELS))
    summary = ClassifySummary(output=output, model="", format=fmt, engine="ray", providers=[], notice=None,
                              standin=True, files=rows)
    started = time.perf_counter()
    with writer:
        for _ in range(rows // batch):  # what the run does with each block of the Ray engine
            done = Block(columns=block, done=[FileDone(category_of(str(e)) if e else None) for e in block["error"]])
            writer.write_columns(done.columns)
            summary.add(done)
    return (rows // batch) * batch / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=SHARED_FACES, help="face crops to classify")
    parser.add_argument("--files", type=int, default=200, help="how many of them (evenly spread)")
    parser.add_argument("--batch", type=int, default=8, help="batch size, both engines")
    parser.add_argument("--rounds", type=int, default=2, help="local + Ray pairs, alternating")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    machine = machine_info()

    with tempfile.TemporaryDirectory(prefix="measure-ray-") as tmp:
        work = Path(tmp)
        log("building the full-size stand-in classifier (fp32)")
        model_path = standin_classifier("full", work / "home")
        folder = subset(args.images, work / "faces", args.files)
        log("decoding alone")
        decode = decode_rates(folder, (224, 224))
        log("the driver's rows/s")
        driver = driver_rates(DRIVER_BLOCK_ROWS)
        rounds = []
        for index in range(args.rounds):
            pair = {}
            for engine, run in (("local", run_local), ("ray", run_ray)):
                log(f"round {index + 1}: {engine}")
                pair[engine] = {"load_average_before": [round(x, 2) for x in os.getloadavg()]}
                pair[engine].update(run(model_path, folder, work / f"{engine}-{index}.csv", args.batch))
                log(f"  {pair[engine]['images_per_second']:.2f} img/s")
            pair["ratio"] = pair["ray"]["images_per_second"] / pair["local"]["images_per_second"]
            pair["cpu_ratio"] = sum(pair["local"]["cpu_seconds_per_image"].values()) / sum(
                pair["ray"]["cpu_seconds_per_image_pipeline"].values()
            )
            pair["ratio_with_model_load"] = (
                pair["ray"]["images_per_second_with_model_load"] / pair["local"]["images_per_second_with_model_load"]
            )
            rounds.append(pair)

    result = {
        **header("measure_ray.py", argv, "classify --engine ray vs --engine local, full-size fp32 stand-in classifier, "
                 "same machine, same run", machine, PACKAGES),
        "input": {"folder": str(args.images), "files": args.files, "batch": args.batch},
        "goal_ratio": GOAL,
        "decode": decode,
        "driver": driver,
        "rounds": rounds,
        "median_ratio": statistics.median(r["ratio"] for r in rounds),
        "median_ratio_with_model_load": statistics.median(r["ratio_with_model_load"] for r in rounds),
        "median_cpu_ratio": statistics.median(r["cpu_ratio"] for r in rounds),
        "median_ray_startup_s": statistics.median(r["ray"]["startup_s"] for r in rounds),
    }
    record(args.out, "ray-engine", result, markdown(result))
    print(markdown(result))
    return 0


CPU_COLUMNS = ("this process", "inference actor", "workers (decode tasks, idle)", "Ray services", "driver", "other")


def markdown(r: dict) -> str:
    d = r["decode"]
    lines = [
        "# classify --engine ray vs --engine local (one machine)",
        "",
        f"`{r['command'].strip()}` at {r['timestamp']}. Full-size (145 M parameter) fp32 classifier "
        f"from STAND-IN weights, {r['input']['files']} UTKFace crops, batch {r['input']['batch']}; "
        "the engines alternate, each Ray round starts and stops its own local Ray.",
        "",
        machine_line(r, "the machine is shared: compare the engines within a round"),
        "",
        "| round | engine | img/s (summary) | img/s incl. model load | Ray start-up s | shutdown s | load avg before |",
        "|---|---|---|---|---|---|---|",
    ]
    for index, pair in enumerate(r["rounds"], 1):
        for engine in ("local", "ray"):
            e = pair[engine]
            lines.append(
                f"| {index} | {engine} | {e['images_per_second']:.2f} | {e['images_per_second_with_model_load']:.2f} | "
                f"{e.get('startup_s', 0):.1f} | {e.get('shutdown_s', 0):.1f} | {e['load_average_before'][0]} |"
            )
        lines.append(
            f"| {index} | ray ÷ local | ×{pair['ratio']:.2f} | ×{pair['ratio_with_model_load']:.2f} | | | |"
        )
    lines += [
        "",
        "CPU seconds per image by role (local: `classify` without loading the model; Ray: from "
        "start-up to shutdown, and the pipeline alone):",
        "",
        "| round | run | " + " | ".join(CPU_COLUMNS) + " | total |",
        "|---|---|" + "---|" * (len(CPU_COLUMNS) + 1),
    ]
    for index, pair in enumerate(r["rounds"], 1):
        for name, cpu in (
            ("local", pair["local"]["cpu_seconds_per_image"]),
            ("ray, whole run", pair["ray"]["cpu_seconds_per_image"]),
            ("ray, pipeline", pair["ray"]["cpu_seconds_per_image_pipeline"]),
        ):
            cells = [f"{cpu[c]:.3f}" if c in cpu else "—" for c in CPU_COLUMNS]
            lines.append(f"| {index} | {name} | " + " | ".join(cells) + f" | {sum(cpu.values()):.3f} |")
    ray_plan = r["rounds"][0]["ray"]
    lines += [
        "",
        f"Median ray ÷ local: ×{r['median_ratio']:.2f} as the summaries report it (goal ≥ ×{r['goal_ratio']}), "
        f"×{r['median_ratio_with_model_load']:.2f} with model loading counted on both sides; "
        f"local CPU ÷ Ray pipeline CPU per image ×{r['median_cpu_ratio']:.2f} (the idle-machine estimate). "
        "Ray start-up (not in img/s): "
        f"{r['median_ray_startup_s']:.1f} s median.",
        "",
        f"Ray used: {ray_plan['cluster']}; {ray_plan['plan']}.",
        "",
        f"Decoding alone (`load_image`, JPEG 200×200 → 224×224, {d['files']} files): "
        f"{d['one_core_images_per_second']:.0f} img/s on one core, {d['all_cores_images_per_second']:.0f} img/s "
        f"with {d['threads']} threads.",
        "",
        f"The driver turns result blocks of {r['driver']['block_rows']} rows into durable output at "
        f"{r['driver']['csv_rows_per_second']:,.0f} rows/s (CSV, one fsync per block) and "
        f"{r['driver']['parquet_rows_per_second']:,.0f} rows/s (Parquet parts).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
