"""Age head settings compared on the known-answer age task (stand-in network).

    python bench/scripts/age_head_configs.py [--size tiny|full] [--per-class 200] [--dim 0.6 --lift 100]

Writes the generated task (``synthetic.write_known_answer_age_dataset``: UTKFace
names, age as brightness, gender as colour balance) into a scratch folder, extracts
the stand-in network's relu7 descriptors once, splits them as ``train`` does
(stratified by gender, 60/20/20, seed 0), then fits the gender head (defaults) and
one age head per row of :data:`CONFIGS` on the same descriptors and reports the test
accuracy and the test MAE in years. ``--dim``/``--lift`` change how the task encodes
age (``synthetic.AGE_DIM``, ``AGE_LIFT``). Writes
``bench/results/age-head-configs-<size>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from record import RESULTS

# (hidden, dropout, loss, learning rate); the first row is the default
CONFIGS = (
    ([64], 0.2, "dex", 5e-3),
    ([], 0.0, "dex", 5e-3),
    ([16, 16], 0.4, "dex", 5e-3),
    ([128], 0.2, "dex", 5e-3),
    ([256], 0.4, "dex", 5e-3),
    ([64], 0.2, "soft", 5e-3),
    ([64], 0.2, "dex", 1e-3),
)
EPOCHS, PATIENCE = 300, 20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny", choices=["tiny", "full"])
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--dim", type=float, default=None, help="synthetic.AGE_DIM (default: as shipped)")
    parser.add_argument("--lift", type=float, default=None, help="synthetic.AGE_LIFT (default: as shipped)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import gender_cli.synthetic as synthetic
    from gender_cli.bench.machine import cpu_model
    from record import record

    synthetic.AGE_DIM = args.dim if args.dim is not None else synthetic.AGE_DIM
    synthetic.AGE_LIFT = args.lift if args.lift is not None else synthetic.AGE_LIFT
    with tempfile.TemporaryDirectory(prefix="gender-cli-age-configs-") as tmp:
        os.environ["GENDER_CLI_HOME"] = str(Path(tmp) / "home")
        rows, extract_seconds, gender_accuracy = run(Path(tmp), args.size, args.per_class)
    report = {
        "what": "test MAE (years) of age head settings on the known-answer age task, stand-in network",
        "command": f"python bench/scripts/age_head_configs.py --size {args.size} --per-class {args.per_class} "
                   f"--dim {synthetic.AGE_DIM:g} --lift {synthetic.AGE_LIFT:g}",
        "timestamp": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average": os.getloadavg()},
        "images": 2 * args.per_class, "extract_seconds": extract_seconds,
        "gender_test_accuracy": gender_accuracy, "epochs": EPOCHS, "patience": PATIENCE, "rows": rows,
    }
    text = markdown(report)
    record(args.out, f"age-head-configs-{args.size}", report, text)
    print(text)
    return 0


def run(work: Path, size: str, per_class: int):
    from gender_cli.convert.vgg_face import vgg_face_network
    from gender_cli.synthetic import write_known_answer_age_dataset
    from gender_cli.train.age_head import AgeHeadConfig, age_estimates, train_age_head
    from gender_cli.train.age_metrics import age_metrics
    from gender_cli.train.descriptors import extract_descriptors
    from gender_cli.train.head_model import HeadConfig, head_probabilities, train_head
    from gender_cli.train.splits import SPLITS, stratified_split

    ages = write_known_answer_age_dataset(work / "data", per_class=per_class, seed=0, size=64, suffix=".png")
    paths = sorted((work / "data").iterdir())
    true_age = np.array([ages[p.name] for p in paths], float)
    gender = np.array([int(p.name.split("_")[1]) for p in paths])
    started = time.perf_counter()
    x = extract_descriptors(paths, vgg_face_network(size, seed=0), "relu7", 16, None, "cpu", False).descriptors
    extract_seconds = time.perf_counter() - started
    split = stratified_split(gender, (0.6, 0.2, 0.2), SPLITS, 0)
    train, val, test = (split == name for name in ("train", "val", "test"))

    head = train_head(x[train], gender[train], x[val], gender[val], HeadConfig())
    kernels, biases = head.dense_weights()
    accuracy = float(((head_probabilities(kernels, biases, x[test])[:, 1] >= 0.5) == gender[test]).mean())
    rows = []
    for hidden, dropout, loss, rate in CONFIGS:
        config = AgeHeadConfig(hidden=hidden, dropout=dropout, loss=loss, learning_rate=rate, epochs=EPOCHS,
                               patience=PATIENCE)
        started = time.perf_counter()
        trained = train_age_head(x[train], true_age[train], x[val], true_age[val], config)
        kernels, biases = trained.dense_weights()
        mae = {name: age_metrics(true_age[split == name], age_estimates(kernels, biases, x[split == name]))["mae"]
               for name in ("train", "val", "test")}
        rows.append({"hidden": hidden, "dropout": dropout, "loss": loss, "learning_rate": rate,
                     "epochs_run": trained.epochs_run, "best_epoch": trained.best_epoch,
                     "seconds": round(time.perf_counter() - started, 1), **{f"{k}_mae": v for k, v in mae.items()}})
        print(rows[-1], file=sys.stderr, flush=True)
    return rows, round(extract_seconds, 1), accuracy


def markdown(report: dict) -> str:
    lines = [
        "# Age head settings on the known-answer age task",
        "",
        f"Measured {report['timestamp']} with `{report['command']}` on {report['machine']['cpu']} "
        f"({report['machine']['cores']} cores, load average {report['machine']['load_average'][0]:.2f}). "
        f"{report['images']} generated images, stand-in network (the task is brightness, not age), "
        f"split 60/20/20 stratified by gender; gender head (defaults) test accuracy "
        f"{report['gender_test_accuracy']:.3f}. At most {report['epochs']} epochs, early stopping after "
        f"{report['patience']} without a better validation MAE. A constant guess of 50 scores about 25.",
        "",
        "| hidden | dropout | loss | lr | epochs (kept) | train MAE | val MAE | test MAE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        lines.append(
            f"| {row['hidden'] or 'none'} | {row['dropout']} | {row['loss']} | {row['learning_rate']:g} "
            f"| {row['epochs_run']} ({row['best_epoch']}) | {row['train_mae']:.2f} | {row['val_mae']:.2f} "
            f"| {row['test_mae']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
