"""Small charts as inline SVG text, for the HTML reports (no plotting library needed).

``bar_chart`` (bars with optional interval whiskers), ``line_chart`` (lines or points
over a numeric x axis, an optional diagonal and a vertical marker) and ``histogram``.
Each returns one ``<svg>`` element with its own title, axes and legend.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 540, 310
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 34, 62
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
TICKS = 5
BAR_CHART_WIDTH, BAR_CHART_HEIGHT, BAR_SLOT = 370, 290, 34


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    faint: bool = False  # drawn pale (audit: a group too small for an interval)


@dataclass(frozen=True)
class Series:
    name: str
    xs: Sequence[float]
    ys: Sequence[float | None]  # None: a gap in the line
    points: bool = False  # markers only, sized by ``sizes`` when given
    sizes: Sequence[float] | None = None


class _Frame:
    """Maps data to pixels inside the plotting area and draws axes."""

    def __init__(self, x_range, y_range, width=WIDTH, height=HEIGHT, legend_rows: int = 0, bottom: int = BOTTOM,
                 right: int = RIGHT):
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        self.width, self.height = width, height + 16 * legend_rows + (bottom - BOTTOM)
        self.bottom = bottom + 16 * legend_rows
        self.plot_w = width - LEFT - right
        self.plot_h = height - TOP - self.bottom

    def x(self, value: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return LEFT + (value - self.x0) / span * self.plot_w

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        clipped = min(max(value, self.y0), self.y1)
        return TOP + self.plot_h - (clipped - self.y0) / span * self.plot_h

    def axes(self, title: str, x_label: str, y_label: str, x_ticks: bool = True) -> list[str]:
        parts = [f'<text x="{self.width / 2:.1f}" y="20" text-anchor="middle" font-size="14" '
                 f'font-weight="600">{_esc(title)}</text>',
                 f'<rect x="{LEFT}" y="{TOP}" width="{self.plot_w}" height="{self.plot_h}" fill="none" '
                 'stroke="#8c959f"/>']
        for i in range(TICKS + 1):
            value = self.y0 + (self.y1 - self.y0) * i / TICKS
            y = self.y(value)
            parts.append(f'<line x1="{LEFT}" x2="{LEFT + self.plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eaeef2"/>')
            parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
                         f'{_tick(value)}</text>')
            if x_ticks:
                xv = self.x0 + (self.x1 - self.x0) * i / TICKS
                x = self.x(xv)
                parts.append(f'<text x="{x:.1f}" y="{TOP + self.plot_h + 15}" text-anchor="middle" '
                             f'font-size="11">{_tick(xv)}</text>')
        parts.append(f'<text x="{LEFT + self.plot_w / 2:.1f}" y="{TOP + self.plot_h + 34}" text-anchor="middle" '
                     f'font-size="12">{_esc(x_label)}</text>')
        parts.append(f'<text transform="translate(14 {TOP + self.plot_h / 2:.1f}) rotate(-90)" '
                     f'text-anchor="middle" font-size="12">{_esc(y_label)}</text>')
        return parts

    def svg(self, parts: list[str], title: str) -> str:
        return (f'<svg width="{self.width}" height="{self.height}" '
                f'viewBox="0 0 {self.width} {self.height}" role="img" aria-label="{_esc(title)}">'
                + "".join(parts) + "</svg>")


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def _nice(top: float) -> float:
    """The smallest of 1, 2, 4, 5 or 10 times a power of ten (times TICKS) at or above ``top``:
    a count axis whose ticks are whole numbers."""
    import math

    top = max(float(top), TICKS)
    step = 10 ** math.floor(math.log10(top / TICKS))
    return next(m * step * TICKS for m in (1, 2, 4, 5, 10) if m * step * TICKS >= top)


def _tick(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:.0f}"


def _legend(frame: _Frame, names: Sequence[str]) -> list[str]:
    parts, x, row = [], LEFT, 0
    for i, name in enumerate(names):
        width = 22 + 7 * len(name)
        if x + width > frame.width - RIGHT and x > LEFT:
            x, row = LEFT, row + 1
        y = frame.height - frame.bottom + 48 + 16 * row
        parts.append(f'<rect x="{x}" y="{y - 9}" width="12" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>')
        parts.append(f'<text x="{x + 16}" y="{y}" font-size="11">{_esc(name)}</text>')
        x += width
    return parts


def _legend_rows(names: Sequence[str], width: int = WIDTH) -> int:
    rows, x = 1, LEFT
    for name in names:
        w = 22 + 7 * len(name)
        if x + w > width - RIGHT and x > LEFT:
            rows, x = rows + 1, LEFT
        x += w
    return rows


def bar_chart(bars: Sequence[Bar], title: str, y_label: str, y_range=(0.0, 1.0)) -> str:
    """One bar per item, with a whisker from ``low`` to ``high`` where both are given."""
    longest = max((len(bar.label) for bar in bars), default=0)
    width = max(BAR_CHART_WIDTH, LEFT + RIGHT + BAR_SLOT * len(bars)) + 40  # room for the last label
    frame = _Frame((0, max(1, len(bars))), y_range, width=width, height=BAR_CHART_HEIGHT,
                   bottom=max(BOTTOM, 24 + int(5.2 * min(longest, 24))), right=RIGHT + 40)
    parts = frame.axes(title, "", y_label, x_ticks=False)
    slot = frame.plot_w / max(1, len(bars))
    for i, bar in enumerate(bars):
        centre = LEFT + slot * (i + 0.5)
        if bar.value is not None:
            top = frame.y(bar.value)
            opacity = 0.3 if bar.faint else 0.8
            parts.append(f'<rect x="{centre - slot * 0.3:.1f}" y="{top:.1f}" width="{slot * 0.6:.1f}" '
                         f'height="{frame.y(frame.y0) - top:.1f}" fill="{PALETTE[0]}" fill-opacity="{opacity}">'
                         f'<title>{_esc(bar.label)}: {bar.value:.4f}</title></rect>')
        if bar.low is not None and bar.high is not None:
            low, high = frame.y(bar.low), frame.y(bar.high)
            parts.append(f'<line x1="{centre:.1f}" x2="{centre:.1f}" y1="{low:.1f}" y2="{high:.1f}" '
                         'stroke="#1d232a" stroke-width="1.5"/>')
            for y in (low, high):
                parts.append(f'<line x1="{centre - 5:.1f}" x2="{centre + 5:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                             'stroke="#1d232a" stroke-width="1.5"/>')
        label = bar.label if len(bar.label) <= 24 else bar.label[:23] + "…"
        parts.append(f'<text transform="translate({centre - 3:.1f} {TOP + frame.plot_h + 10}) rotate(45)" '
                     f'font-size="11">{_esc(label)}</text>')
    return frame.svg(parts, title)


def line_chart(series: Sequence[Series], title: str, x_label: str, y_label: str, x_range=(0.0, 1.0),
               y_range=(0.0, 1.0), diagonal: bool = False, marker: float | None = None) -> str:
    """Each series as a line (or as points); ``diagonal`` draws y = x, ``marker`` a
    dashed vertical line at that x."""
    frame = _Frame(x_range, y_range, legend_rows=_legend_rows([s.name for s in series]))
    parts = frame.axes(title, x_label, y_label)
    if diagonal:
        parts.append(f'<line x1="{frame.x(x_range[0]):.1f}" y1="{frame.y(x_range[0]):.1f}" '
                     f'x2="{frame.x(x_range[1]):.1f}" y2="{frame.y(x_range[1]):.1f}" stroke="#8c959f" '
                     'stroke-dasharray="4 4"/>')
    if marker is not None:
        parts.append(f'<line x1="{frame.x(marker):.1f}" x2="{frame.x(marker):.1f}" y1="{TOP}" '
                     f'y2="{TOP + frame.plot_h}" stroke="#57606a" stroke-dasharray="6 3"/>')
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        if s.points:
            largest = max([v for v in (s.sizes or []) if v] or [1])
            for j, (x, y) in enumerate(zip(s.xs, s.ys)):
                if y is None:
                    continue
                radius = 2.5 + 4.5 * ((s.sizes[j] / largest) ** 0.5 if s.sizes else 0.5)
                parts.append(f'<circle cx="{frame.x(x):.1f}" cy="{frame.y(y):.1f}" r="{radius:.1f}" '
                             f'fill="{colour}" fill-opacity="0.8"><title>{_esc(s.name)}: {x:.3f}, {y:.3f}'
                             '</title></circle>')
            continue
        runs, current = [], []
        for x, y in zip(s.xs, s.ys):
            if y is None:
                if current:
                    runs.append(current)
                current = []
            else:
                current.append(f"{frame.x(x):.1f},{frame.y(y):.1f}")
        if current:
            runs.append(current)
        for points in runs:
            parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" stroke-width="1.8">'
                         f'<title>{_esc(s.name)}</title></polyline>')
    parts += _legend(frame, [s.name for s in series])
    return frame.svg(parts, title)


def histogram(edges: Sequence[float], counts: Sequence[int], title: str, x_label: str,
              marker: float | None = None) -> str:
    """Bars over the bins ``edges[i]..edges[i + 1]``; ``marker``: a dashed line at that x."""
    frame = _Frame((edges[0], edges[-1]), (0, _nice(max(counts, default=0))))
    parts = frame.axes(title, x_label, "images")
    for low, high, count in zip(edges[:-1], edges[1:], counts):
        y = frame.y(count)
        parts.append(f'<rect x="{frame.x(low) + 0.5:.1f}" y="{y:.1f}" width="{frame.x(high) - frame.x(low) - 1:.1f}" '
                     f'height="{frame.y(0) - y:.1f}" fill="{PALETTE[0]}" fill-opacity="0.75">'
                     f'<title>{low:.2f}-{high:.2f}: {count}</title></rect>')
    if marker is not None:
        parts.append(f'<line x1="{frame.x(marker):.1f}" x2="{frame.x(marker):.1f}" y1="{TOP}" '
                     f'y2="{TOP + frame.plot_h}" stroke="#d62728" stroke-dasharray="6 3"/>')
    return frame.svg(parts, title)
