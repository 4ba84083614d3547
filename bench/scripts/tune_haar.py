"""The settings sweep behind the OpenCV detector's parameters (docs/decisions.md).

    python bench/scripts/tune_haar.py [--every 5] [--photos 100]

For each combination of border (fraction of the long side added in black), histogram
equalisation, minNeighbors and cascade file, runs OpenCV's Haar face cascade on:

- every ``--every``-th crop of the shared UTKFace sample (already faces): the share in
  which exactly one face is found (the detector's property the tests check on all);
- ``--photos`` generated 640x480 photos with one shared face pasted at a random place
  (``core/photos.py``, seed 0), upright and turned by +-15 degrees: the share of pasted
  faces found (a box centre inside the pasted square) and the boxes found elsewhere.

Eye finding is left out (it does not change which faces are found). Prints a Markdown
table; single-threaded, so milliseconds compare within one run (the machine is shared).
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from pathlib import Path

from record import SHARED_FACES

CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=Path, default=SHARED_FACES)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--photos", type=int, default=100)
    args = parser.parse_args(argv)

    import cv2
    import numpy as np
    from PIL import Image

    from gender_cli.photos import photo_with_faces

    cv2.setNumThreads(1)
    names = sorted(os.listdir(args.faces))
    crops = [np.asarray(Image.open(args.faces / n).convert("L")) for n in names[:: args.every]]
    rng = np.random.default_rng(0)
    faces = [Image.open(args.faces / n).convert("RGB") for n in names[1 :: max(1, len(names) // args.photos)]]
    photos = {
        angle: [photo_with_faces([face], rng, angles=[angle]) for face in faces[: args.photos]]
        for angle in (0, 15, -15)
    }
    photos = {angle: [(np.asarray(p.convert("L")), placed[0]) for p, placed in items] for angle, items in photos.items()}

    print(f"{len(crops)} crops, {args.photos} photos per angle; load average {os.getloadavg()[0]:.2f}\n")
    print("| cascade | border | equalise | minNeighbors | crops: exactly one | photos 0 / +15 / -15: found "
          "| false boxes per 100 photos | ms per photo |")
    print("|---|---|---|---|---|---|---|---|")
    for cascade_name, border, equalise, neighbours in itertools.product(
        CASCADES, (0.0, 0.1, 0.15, 0.25), (False, True), (3, 5)
    ):
        if cascade_name != CASCADES[0] and (border, neighbours) != (0.15, 5):
            continue  # the other cascade only at the chosen settings
        cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / cascade_name))

        def find(grey):
            if equalise:
                grey = cv2.equalizeHist(grey)
            pad = round(border * max(grey.shape))
            padded = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
            boxes, _ = cascade.detectMultiScale2(padded, scaleFactor=1.1, minNeighbors=neighbours, minSize=(40, 40))
            return [(x - pad + w / 2, y - pad + h / 2) for x, y, w, h in np.asarray(boxes).reshape(-1, 4)]

        one = sum(len(find(crop)) == 1 for crop in crops) / len(crops)
        found, false, started = [], 0, time.perf_counter()
        for angle, items in photos.items():
            hits = 0
            for grey, placed in items:
                centres = find(grey)
                inside = sum(placed.contains(c) for c in centres)
                hits += inside > 0
                false += len(centres) - min(inside, 1)
            found.append(hits / len(items))
        ms = 1000 * (time.perf_counter() - started) / sum(len(items) for items in photos.values())
        print(f"| {cascade_name.removeprefix('haarcascade_frontalface_').removesuffix('.xml')} | {border:.2f} | "
              f"{'yes' if equalise else 'no'} | {neighbours} | {100 * one:.1f} % | "
              + " / ".join(f"{100 * f:.0f} %" for f in found)
              + f" | {100 * false / sum(len(items) for items in photos.values()):.1f} | {ms:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
