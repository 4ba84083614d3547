"""Face detection + classification speed, per detector, on the shared faces pasted into photos.

    python bench/scripts/measure_detect.py [--sizes tiny full] [--detectors opencv dlib-hog dlib-cnn]
                                   [--limit dlib-cnn=200] [--batch 32] [--workers N]

Pastes each of the 2,000 shared UTKFace crops into its own 640x480 photo
(``core/photos.py``: a generated face-free background, the crop scaled to 110-170 px
at a random place, seed 0, JPEG quality 90), then for each stand-in classifier size
runs the plain ``classify`` pipeline once and, for each detector, the ``classify
--detect`` pipeline (``bench_faces``), and checks every box against the pasted
square: a face is found when a box's centre lies inside it; any other box is a false
one. ``--limit NAME=N`` runs a slow detector on the first N
photos only (said in the results). Writes ``bench/results/detect.json`` and
``detect.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
from pathlib import Path

from record import RESULTS, SHARED_FACES



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=SHARED_FACES)
    parser.add_argument("--photos", type=int, default=None, help="use only the first N faces (a quick look)")
    parser.add_argument("--sizes", nargs="+", default=["tiny", "full"], choices=["tiny", "full"])
    parser.add_argument("--detectors", nargs="+", default=["opencv", "dlib-hog", "dlib-cnn"])
    parser.add_argument("--limit", action="append", default=["dlib-cnn=100"], help="NAME=N photos for a slow detector")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    limits = {name: int(count) for name, count in (item.split("=") for item in args.limit)}

    from standin_models import standin_classifier
    from gender_cli.photos import write_photos

    runs = []
    with tempfile.TemporaryDirectory(prefix="gender-cli-detect-") as tmp:
        work = Path(tmp)
        faces = sorted(p for p in args.faces.iterdir() if p.is_file())[: args.photos]
        placements = write_photos(faces, work / "photos", per_photo=1, seed=0)
        for size in args.sizes:
            model = standin_classifier(size, work / f"home-{size}")
            plain: dict[int, float] = {}  # photos -> img/s without detection, with this classifier
            for detector in args.detectors:
                count = min(limits.get(detector, len(placements)), len(placements))
                folder = _first(work / "photos", work / f"first-{count}", count)
                run = _measure(model, size, folder, detector, placements, args.batch, args.workers, plain.get(count))
                plain[count] = run["plain_images_per_second"]
                runs.append(run)
                print(_row(run), flush=True)
                _record(args, argv, placements, runs)  # after every run: a late failure keeps the others
    print(_markdown(_record(args, argv, placements, runs)))
    return 0


def _record(args, argv, placements: dict, runs: list[dict]) -> dict:
    from gender_cli.bench.machine import cpu_model, package_versions
    from record import record

    report = {
        "what": "classify --detect pipeline over the shared faces pasted into 640x480 photos, per detector "
                "(stand-in classifiers: speed only)",
        "command": "python bench/scripts/measure_detect.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "timestamp": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average": os.getloadavg()},
        "versions": package_versions(["onnxruntime-gpu", "onnxruntime", "opencv-python-headless", "dlib-bin",
                                      "numpy", "pillow"]),
        "photos": len(placements),
        "batch": args.batch,
        "runs": runs,
    }
    record(args.out, "detect", report, _markdown(report))
    return report


def _first(photos: Path, folder: Path, count: int) -> Path:
    names = sorted(p.name for p in photos.iterdir())
    if count >= len(names):
        return photos
    if not folder.is_dir():  # made once, for the first classifier
        folder.mkdir()
        for name in names[:count]:
            (folder / name).symlink_to(photos / name)
    return folder


def _measure(model: Path, size: str, folder: Path, detector: str, placements: dict, batch: int, workers,
             plain: float | None) -> dict:
    from gender_cli.bench.bench_faces import bench_faces
    from gender_cli.infer.detect import FaceSettings
    from gender_cli.infer.files import list_image_files
    from gender_cli.infer.session import open_session

    found = missed = false = 0

    def check(file) -> None:
        nonlocal found, missed, false
        square = placements[file.path.name][0]
        hits = [face for face in file.faces if square.contains(_centre(face.box))]
        found += bool(hits)
        missed += not hits
        false += len(file.faces) - min(1, len(hits))

    loaded = open_session(model, device="cpu", allow_spinning=False)
    files = list_image_files([folder])
    figures = bench_faces(loaded, files, str(folder), batch, FaceSettings(detector), workers, on_file=check,
                          plain_images_per_second=plain)
    figures.pop("latency_ms", None)
    return {"size": size, "detector": detector, "found": found, "missed": missed, "false_boxes": false,
            "recall": found / figures["files"], "load_average": os.getloadavg(), **figures}


def _centre(box) -> tuple[float, float]:
    x, y, w, h = box
    return x + w / 2, y + h / 2


def _row(run: dict) -> str:
    cpu = run["cpu_ms_per_image"]
    return (
        f"| {run['size']} | {run['detector']} | {run['files']} | {run['images_per_second']:.1f} | "
        f"{run['plain_images_per_second']:.1f} | {100 * run['detection_share']:.0f} % | "
        f"{cpu['decode']:.1f} / {cpu['detect']:.1f} / {cpu['crop']:.1f} | {run['inference_ms_per_image']:.1f} | "
        f"{100 * run['recall']:.1f} % | {run['false_boxes']} |"
    )


def _markdown(report: dict) -> str:
    machine = report["machine"]
    lines = [
        "# Face detection + classification (`classify --detect` pipeline)",
        "",
        f"Measured {report['timestamp']} with `{report['command']}` on {machine['cpu']} ({machine['cores']} cores, "
        f"load average {machine['load_average'][0]:.2f} at the end), CPU provider, batch {report['batch']}. "
        f"Photos: the {report['photos']} shared UTKFace crops, each pasted at a random place into its own "
        "640x480 photo (face square 110-170 px). Classifiers: stand-in weights (speed only; labels mean nothing).",
        "",
        "| classifier | detector | photos | img/s with detection | img/s without | share of the time in detection "
        "| CPU ms per photo: decode / detect / crop | inference ms per photo | faces found | false boxes |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *[_row(run) for run in report["runs"]],
        "",
        "img/s counts photos, end to end (decode, detection in the decode threads, inference overlapped). "
        "Without: the same photos through plain `classify` (whole photo resized). Share of the time in "
        "detection: 1 - (img/s with) / (img/s without). CPU ms: each stage's CPU time in the thread that runs "
        "it (waits for a core or the GIL not counted), per photo; inference ms: wall time of the model calls, "
        "per photo. A face is found when a box's centre lies inside the square it was pasted as.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
