"""Held-out accuracy of a from-scratch run's exported graphs (fp32, int8, ...), as ``classify`` labels.

    python bench/scripts/scratch_accuracy.py RUN_DIR NAME=GRAPH.onnx [NAME=GRAPH.onnx ...]

``scratch_settings.py`` scores a training run from its ``predictions.csv`` (the NumPy
heads on Keras' descriptors). This scores what a user runs: each exported graph through
``gender_cli.Classifier`` on the run's test split (``splits.csv``), every held-out face
and the adults among them (ages 20-80, as ``scratch_settings.py``), with 95 % Wilson
intervals, and each graph's label agreement with the first one given. Writes
``bench/results/scratch-accuracy.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import sys
from pathlib import Path

from record import RESULTS, record
from scratch_settings import ADULTS, accuracy_by_group


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("graphs", nargs="+", help="NAME=GRAPH.onnx, the reference first")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from gender_cli import Classifier

    with (args.run_dir / "splits.csv").open(newline="", encoding="utf-8") as fh:
        test = [row for row in csv.DictReader(fh) if row["split"] == "test"]
    paths = [row["path"] for row in test]
    truth = [row["label"] for row in test]
    graphs = dict(item.split("=", 1) for item in args.graphs)
    labels = {name: [p.label for p in Classifier(graph, device="cpu").predict(paths)] for name, graph in graphs.items()}
    reference = next(iter(labels.values()))
    figures = {name: {"graph": graphs[name], **accuracy_by_group(paths, truth, predicted),
                      "agreement_with_first": sum(a == b for a, b in zip(predicted, reference)) / len(paths)}
               for name, predicted in labels.items()}
    command = "python bench/scripts/scratch_accuracy.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = {"date": datetime.date.today().isoformat(), "command": command, "run": str(args.run_dir),
              "test_faces": len(paths), "graphs": figures}
    rows = "\n".join(
        f"| {name} | {e['all']['accuracy']:.4f} [{e['all']['ci95'][0]:.4f}, {e['all']['ci95'][1]:.4f}] "
        f"(n {e['all']['n']}) | {e['adults']['accuracy']:.4f} [{e['adults']['ci95'][0]:.4f}, "
        f"{e['adults']['ci95'][1]:.4f}] (n {e['adults']['n']}) | {e['agreement_with_first']:.4f} |"
        for name, e in figures.items())
    markdown = f"""# The from-scratch classifier's exported graphs on held-out faces

`{command}` ({report['date']}). Real faces, real training: the run's test split of the 8,778 shared UTKFace
faces (never seen in training or for model selection), labelled by each graph as `classify` labels them;
adults: ages {ADULTS[0]}-{ADULTS[1]}; 95 % Wilson intervals.

| graph | accuracy, all held-out | accuracy, held-out adults | same label as the first graph |
|---|---|---|---|
{rows}
"""
    print(markdown)
    record(args.out, "scratch-accuracy", report, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
