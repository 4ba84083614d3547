"""Settings of ``train --from-scratch`` tried on the shared UTKFace faces, one training run each.

    python bench/scripts/scratch_settings.py NAME [--input-size 64] [--widths 32,64,128,256]
        [--convs 1] [--dense 128] [--epochs 25] [--split 0.6,0.2,0.2] [--task auto] [--seed 0]
        [--work bench/tmp/scratch] [--out bench/results]
    python bench/scripts/scratch_settings.py --render-only

Trains the from-scratch network on both shared UTKFace folders (``DATA/sample`` and
``DATA/more`` link to ``../shared/data/utkface-sample`` and ``utkface-more``: 8,778
faces of all ages) with the settings given, through ``train()`` as ``gender-cli train
DATA --from-scratch`` does (export left out: the held-out figures come from the run's
``predictions.csv``), and scores the test split only: every held-out face, and the
adults among them (ages 20-80, the range of ``utkface-sample``), with 95 % Wilson
intervals; plus the training time. Each setting is one entry of
``bench/results/scratch-settings.json`` (replaced when run again under the same NAME);
``scratch-settings.md`` is the table of all of them.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

from record import RESULTS, SHARED_FACES, record

REPO = Path(__file__).resolve().parents[2]
ADULTS = (20, 80)  # the age range of utkface-sample
STEM = "scratch-settings"


def link_faces(data: Path) -> Path:
    """``data/sample`` and ``data/more``: the two shared UTKFace folders as one data set."""
    shared = SHARED_FACES.parent
    if not (shared / "utkface-sample").is_dir() or not (shared / "utkface-more").is_dir():
        raise SystemExit(f"the shared UTKFace faces are not at {shared}")
    data.mkdir(parents=True, exist_ok=True)
    for name, folder in (("sample", "utkface-sample"), ("more", "utkface-more")):
        if not (data / name).exists():
            (data / name).symlink_to(shared / folder)
    return data


def held_out_figures(predictions: Path) -> dict:
    """Accuracy with a Wilson interval on the test split of a run's ``predictions.csv``."""
    with predictions.open(newline="", encoding="utf-8") as fh:
        rows = [row for row in csv.DictReader(fh) if row["split"] == "test"]
    return accuracy_by_group([row["path"] for row in rows], [row["true"] for row in rows],
                             [row["predicted"] for row in rows])


def accuracy_by_group(paths: list[str], truth: list[str], predicted: list[str]) -> dict:
    """Accuracy with a Wilson interval over all the UTKFace ``paths`` and over the adults."""
    from gender_cli.train.datasets import parse_utkface_name
    from gender_cli.train.intervals import wilson

    figures = {}
    for name, keep in (("all", lambda age: True), ("adults", lambda age: ADULTS[0] <= age <= ADULTS[1])):
        chosen = [i for i, path in enumerate(paths) if keep(parse_utkface_name(Path(path).name)[0])]
        right = sum(truth[i] == predicted[i] for i in chosen)
        low, high = wilson(right, len(chosen))
        figures[name] = {"n": len(chosen), "correct": right, "accuracy": right / len(chosen),
                         "ci95": [low, high]}
    return figures


def _setting_args(argv: list[str]) -> list[str]:
    """The arguments that make the setting (where the files went is not part of it)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--work", "--out"):
            skip = True
        elif not arg.startswith(("--work=", "--out=")):
            kept.append(arg)
    return kept


def run_setting(args) -> dict:
    from gender_cli.train.scratch_model import ScratchConfig
    from gender_cli.train.train import TrainOptions, train

    work = args.work.resolve()
    data = link_faces(work / "data")
    run_dir = work / "runs" / args.name
    if run_dir.exists():
        shutil.rmtree(run_dir)
    os.environ["GENDER_CLI_HOME"] = str(work / "home")
    config = ScratchConfig(input_size=args.input_size, widths=args.widths, convs_per_block=args.convs,
                           dense=args.dense, epochs=args.epochs)
    fractions = tuple(float(f) for f in args.split.split(","))
    started = time.perf_counter()
    result = train(TrainOptions(data=data, run_dir=run_dir, task=args.task, fractions=fractions, seed=args.seed,
                                scratch=config, export=False, progress=False),
                   log=lambda message: print(message, file=sys.stderr, flush=True))
    seconds = time.perf_counter() - started
    scratch = json.loads((run_dir / "scratch.json").read_text())
    return {
        "name": args.name,
        "date": datetime.date.today().isoformat(),
        "command": "python bench/scripts/scratch_settings.py " + " ".join(_setting_args(sys.argv[1:])),
        "settings": {"input_size": args.input_size, "widths": args.widths, "convs_per_block": args.convs,
                     "dense": args.dense, "epochs_per_stage": args.epochs, "split": list(fractions),
                     "task": result.task, "seed": args.seed},
        "parameters": scratch["parameters"],
        "stages": [{k: stage[k] for k in ("name", "epochs_run", "best_epoch", "best_val_loss", "seconds")}
                   for stage in scratch["stages"]],
        "kept": scratch["kept"],
        "training_seconds": scratch["training_seconds"],
        "run_seconds": round(seconds, 1),
        "held_out": held_out_figures(run_dir / "predictions.csv"),
        "age_test_mae": (result.age or {}).get("metrics", {}).get("mae") if result.age else None,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared",
    }


def render(entries: list[dict]) -> str:
    lines = [
        "# train --from-scratch: settings tried on the shared UTKFace faces", "",
        "Written by `python bench/scripts/scratch_settings.py` (one training run per row, on the 2-core "
        "machine, CPU, shared with other work: the times are rough). Data: the 8,778 shared UTKFace faces "
        "(`utkface-sample`: 2,000 adults; `utkface-more`: 6,778 of all ages), stratified split, seed as given. "
        "Figures on the held-out test split only, 95 % Wilson intervals; adults: ages 20-80.", "",
        "| name | input | widths | convs/block | dense | params | split | epochs (stage 1 + 2, kept) "
        "| train time | accuracy, all held-out | accuracy, held-out adults | age MAE |",
        "|---" * 12 + "|",
    ]
    for e in entries:
        s = e["settings"]
        stages = " + ".join(str(stage["epochs_run"]) for stage in e["stages"])
        all_, adults = e["held_out"]["all"], e["held_out"]["adults"]
        mae = f"{e['age_test_mae']:.2f}" if e.get("age_test_mae") is not None else "—"
        lines.append(
            f"| {e['name']} | {s['input_size']} | {','.join(map(str, s['widths']))} | {s['convs_per_block']} | "
            f"{s['dense']} | {e['parameters']:,} | {'/'.join(f'{f:g}' for f in s['split'])} | {stages} "
            f"({e['kept']}) | {e['training_seconds'] / 60:.0f} min | "
            f"{all_['accuracy']:.4f} [{all_['ci95'][0]:.4f}, {all_['ci95'][1]:.4f}] (n {all_['n']}) | "
            f"{adults['accuracy']:.4f} [{adults['ci95'][0]:.4f}, {adults['ci95'][1]:.4f}] (n {adults['n']}) | "
            f"{mae} |")
    lines += ["", "Commands:", ""] + [f"- {e['name']} ({e['date']}): `{e['command']}`" for e in entries]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?")
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--widths", type=lambda t: [int(v) for v in t.split(",")], default=[32, 64, 128, 256])
    parser.add_argument("--convs", type=int, default=1)
    parser.add_argument("--dense", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--split", default="0.6,0.2,0.2")
    parser.add_argument("--task", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=REPO / "bench" / "tmp" / "scratch")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args(argv)
    path = args.out / f"{STEM}.json"
    entries = json.loads(path.read_text())["settings"] if path.is_file() else []
    if not args.render_only:
        if not args.name:
            parser.error("give the setting a NAME")
        entry = run_setting(args)
        entries = [e for e in entries if e["name"] != entry["name"]] + [entry]
        print(json.dumps(entry["held_out"]), flush=True)
    record(args.out, STEM, {"settings": entries}, render(entries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
