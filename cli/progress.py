"""Progress on stderr for long work: one bar per stage, replaced when the stage changes.

Library code reports ``(stage, done, total)`` (``total`` 0 when it is not known
ahead); this module draws it with tqdm. A finished stage's bar stays on screen at
its final count, so a log never ends on "0%" for a stage that completed.
"""

from __future__ import annotations

import sys


class StageProgress:
    def __init__(self, quiet: bool, labels: dict[str, tuple[str, str, bool]] | None = None):
        """``labels``: stage -> (description, unit, scale units); other stages show their
        name and count batches."""
        self.quiet = quiet
        self.labels = labels or {}
        self.bar = None
        self.stage = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        if self.bar is None or stage != self.stage or done < self.bar.n:
            self.close()
            description, unit, scale = self.labels.get(stage, (stage, "batch", False))
            self.bar = tqdm(total=total or None, desc=description, unit=unit, unit_scale=scale,
                            file=sys.stderr, dynamic_ncols=True)
            self.stage = stage
        self.bar.update(done - self.bar.n)
        if total and done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.refresh()  # show the final count even if the last update came too soon to draw
            self.bar.close()
            self.bar = None
