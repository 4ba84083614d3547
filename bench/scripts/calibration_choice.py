"""Which calibration ``train`` folds into the gender head: none, temperature or Platt
scaling, each with and without the Youden operating point, fitted on a run's validation
split and scored on its test split.

    python bench/scripts/calibration_choice.py RUN_DIR [--out bench/results] [--stem calibration-choice]

RUN_DIR is a ``gender-cli train`` run folder of a calibrated head. Its
``predictions.csv`` holds the folded probabilities; the head's own logit difference is
recovered from them with the calibration record in ``metrics.json``
(``z = (logit(p) - c) / a``, ``c = b - logit(t)``; probabilities are written with six
decimals, so logits beyond about +-13 are clipped there, which moves no figure below
by more than the last digit). Every variant labels female at ``p >= 0.5`` of its own
probabilities, except "Youden threshold", the behaviour before calibration: the
uncalibrated probabilities with the Youden threshold, where a label can contradict the
larger probability (counted).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import sys
from pathlib import Path

import numpy as np

from record import RESULTS, record


def _head_logits(run: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from gender_cli.train.calibration import logit

    metrics = json.loads((run / "metrics.json").read_text())
    cal = metrics["threshold"]["calibration"]
    with (run / "predictions.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    p = np.array([float(r["p_female"]) for r in rows])
    y = np.array([r["true"] == "female" for r in rows], int)
    shift = cal["intercept"] - float(logit(cal["operating_point"]))
    return (logit(p) - shift) / cal["slope"], y, [r["split"] for r in rows]


def _scores(y: np.ndarray, p: np.ndarray, labels: np.ndarray) -> dict:
    from gender_cli.train.calibration import expected_calibration_error

    eps = 1e-12
    recalls = [(labels[y == c] == c).mean() for c in (0, 1)]
    return {
        "accuracy": float((labels == y).mean()),
        "balanced_accuracy": float(np.mean(recalls)),
        "ece": expected_calibration_error(y, p),
        "log_loss": float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))),
        "brier": float(np.mean((p - y) ** 2)),
        "contradictions": int(((labels == 1) != (p >= 0.5)).sum()),
    }


def compare(z: np.ndarray, y: np.ndarray, splits: list[str]) -> dict:
    from gender_cli.train.calibration import logit, platt_fit, sigmoid
    from gender_cli.train.metrics import choose_threshold

    val = np.array([s == "val" for s in splits])
    test = np.array([s == "test" for s in splits])
    a_platt, b_platt = platt_fit(z[val], y[val])
    # temperature scaling: the slope alone (no intercept), by the same likelihood
    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 4001))
    nll = [np.mean(np.logaddexp(0, -(2 * y[val] - 1) * t * z[val])) for t in grid]
    a_temp = float(grid[int(np.argmin(nll))])
    variants = {"none": (1.0, 0.0), "temperature": (a_temp, 0.0), "Platt": (a_platt, b_platt)}
    results = {}
    for name, (a, b) in variants.items():
        for folded in (False, True):
            shift = 0.0
            if folded:
                shift = -float(logit(min(max(choose_threshold(y[val], sigmoid(a * z[val] + b)), 1e-6), 1 - 1e-6)))
            p = sigmoid(a * z[test] + b + shift)
            results[name + (" + Youden operating point folded" if folded else "")] = {
                "slope": a, "intercept": b + shift, **_scores(y[test], p, (p >= 0.5).astype(int))}
    raw = sigmoid(z[test])
    youden = choose_threshold(y[val], sigmoid(z[val]))
    results["Youden threshold (before calibration)"] = {
        "slope": 1.0, "intercept": 0.0, "threshold": youden, **_scores(y[test], raw, (raw >= youden).astype(int))}
    return {"validation": int(val.sum()), "test": int(test.sum()), "variants": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--stem", default="calibration-choice")
    args = parser.parse_args(argv)
    z, y, splits = _head_logits(args.run)
    config = json.loads((args.run / "config.json").read_text())
    backbone = config["backbone"]
    report = {"date": datetime.date.today().isoformat(), "run": str(args.run), "data": config["dataset"]["root"],
              "network": backbone["source_path"], "standin": backbone["standin"], **compare(z, y, splits)}
    network = Path(str(backbone["source_path"])).name + (" (STAND-IN weights)" if backbone["standin"] else "")
    lines = [f"# Calibration of the gender head: which one train folds in ({report['date']})", "",
             f"`python bench/scripts/calibration_choice.py RUN` on the run of `gender-cli train "
             f"{Path(report['data']).name}` with {network}: fitted on the {report['validation']} validation "
             f"faces, scored on the {report['test']} test faces.", "",
             "| variant | slope | intercept | test accuracy | balanced | ECE | log loss | Brier | labels against the larger probability |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in report["variants"].items():
        lines.append(f"| {name} | {r['slope']:.3f} | {r['intercept']:.3f} | {r['accuracy']:.4f} | "
                     f"{r['balanced_accuracy']:.4f} | {r['ece']:.4f} | {r['log_loss']:.4f} | {r['brier']:.4f} | "
                     f"{r['contradictions']} |")
    path = record(args.out, args.stem, report, "\n".join(lines) + "\n")
    print(path.read_text())
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
