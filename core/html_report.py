"""One self-contained HTML page: what ``audit`` and ``report`` write as ``report.html``.

Everything is inside the file, so it opens offline and can be mailed: the style, the
charts (inline SVG, ``svg_charts``), thumbnails as ``data:`` URIs, and a few lines of
script that sort a table when a heading is clicked (numbers by value, blanks last).
The page references no other file and no network address.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

THUMBNAIL_PX = 112

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d232a; margin: 0 auto;
       max-width: 1180px; padding: 16px 28px 48px; background: #fff; }
h1 { font-size: 24px; margin: 8px 0 4px; } h2 { font-size: 19px; margin: 28px 0 8px; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.warning { background: #fff4e5; border: 1px solid #f0b35b; padding: 8px 12px; border-radius: 6px; margin: 10px 0; }
.note { color: #57606a; font-size: 13px; }
.table-wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 8px 0 14px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: right; vertical-align: top; }
th { background: #f3f5f7; cursor: pointer; user-select: none; white-space: nowrap; }
th.sorted-asc::after { content: " \\25B2"; } th.sorted-desc::after { content: " \\25BC"; }
td.text, th.text { text-align: left; } td.text { min-width: 90px; max-width: 320px; }
td .ci { color: #57606a; font-size: 12px; white-space: nowrap; }
tr:nth-child(even) td { background: #fafbfc; }
.charts { display: flex; flex-wrap: wrap; gap: 18px; } .charts figure { margin: 0; }
figcaption { font-size: 12px; color: #57606a; max-width: 520px; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
.tile { width: 128px; font-size: 11px; word-break: break-all; }
.tile img, .tile .missing { width: 112px; height: 112px; object-fit: cover; border: 1px solid #d0d7de;
  display: block; background: #f3f5f7; }
.tile .missing { display: flex; align-items: center; justify-content: center; color: #8c959f; text-align: center; }
"""

_SORT_SCRIPT = r"""
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var ascending = !th.classList.contains("sorted-asc");
      table.querySelectorAll("th").forEach(function (h) { h.classList.remove("sorted-asc", "sorted-desc"); });
      th.classList.add(ascending ? "sorted-asc" : "sorted-desc");
      function key(row) {
        var text = row.cells[column].getAttribute("data-sort") || "";
        if (text === "") { return null; }
        return /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/.test(text) ? parseFloat(text) : text.toLowerCase();
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null) { return y === null ? 0 : 1; }
        if (y === null) { return -1; }
        var order = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === "number" ? -1 : 1);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def escape(text) -> str:
    return html.escape(str(text), quote=True)


@dataclass(frozen=True)
class Column:
    key: str
    heading: str
    text: bool = False  # left-aligned, sorted as text


@dataclass(frozen=True)
class Cell:
    """A table cell: what it shows (HTML) and the value it sorts by."""

    shown: str
    sort: str = ""


def number(value, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def estimate_cell(value, low=None, high=None, digits: int = 4, missing: str = "n/a") -> Cell:
    """``0.9123 [0.8990, 0.9240]``; the interval's place says why when there is none."""
    if value is None:
        return Cell(escape(missing))
    interval = (f' <span class="ci">[{number(low, digits)}, {number(high, digits)}]</span>'
                if low is not None and high is not None else ' <span class="ci">(no interval)</span>')
    return Cell(f"{number(value, digits)}{interval}", number(value, 6))


def table(columns: Sequence[Column], rows: Sequence[dict]) -> str:
    """A sortable table; a row's value is a :class:`Cell`, a number or text."""
    head = "".join(f'<th class="{"text" if c.text else ""}">{escape(c.heading)}</th>' for c in columns)
    body = []
    for row in rows:
        cells = []
        for c in columns:
            value = row.get(c.key)
            if isinstance(value, Cell):
                cell = value
            elif isinstance(value, float):
                cell = Cell(number(value), number(value, 6))
            else:
                cell = Cell(escape("" if value is None else value), "" if value is None else str(value))
            css = ' class="text"' if c.text else ""
            cells.append(f'<td{css} data-sort="{escape(cell.sort)}">{cell.shown}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="table-wrap"><table class="sortable"><thead><tr>{head}</tr></thead><tbody>'
            + "".join(body) + "</tbody></table></div>")


def figure(svg: str, caption: str = "") -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>" if caption else f"<figure>{svg}</figure>"


def charts(*figures: str) -> str:
    return '<div class="charts">' + "".join(figures) + "</div>"


def paragraph(text: str, css: str = "") -> str:
    return f'<p class="{css}">{escape(text)}</p>' if css else f"<p>{escape(text)}</p>"


def bullets(items: Sequence[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>"


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def thumbnail(path: str | Path, box: Sequence[int] | None = None, size: int = THUMBNAIL_PX) -> str | None:
    """A JPEG ``data:`` URI of the image (of ``box`` = x, y, w, h in the upright image
    when given), at most ``size`` pixels a side; None when it cannot be read."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as opened:
            if box is None:  # a JPEG decodes at a reduced size: a thumbnail needs no more
                opened.draft("RGB", (size * 4, size * 4))
            image = ImageOps.exif_transpose(opened).convert("RGB")
            if box is not None:
                x, y, w, h = (int(v) for v in box)
                image = image.crop((x, y, x + w, y + h))
            image.thumbnail((size, size))
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=82)
    except Exception:  # any unreadable file is a tile saying so, never a failed report
        return None
    return data_uri(buffer.getvalue(), "image/jpeg")


@dataclass(frozen=True)
class Tile:
    path: str
    caption: str
    box: Sequence[int] | None = None


def tile_grid(tiles: Sequence[Tile]) -> str:
    """Thumbnails with captions; a file that cannot be shown gets a grey tile saying so."""
    parts = []
    for tile in tiles:
        uri = thumbnail(tile.path, tile.box)
        picture = (f'<img alt="{escape(Path(tile.path).name)}" src="{uri}">' if uri
                   else '<div class="missing">cannot be shown</div>')
        parts.append(f'<div class="tile">{picture}<div>{escape(tile.caption)}</div>'
                     f'<div class="note">{escape(Path(tile.path).name)}</div></div>')
    return '<div class="grid">' + "".join(parts) + "</div>"


def page(title: str, sections: Sequence[tuple[str, str]], intro: str = "", warning: str | None = None) -> str:
    """The whole document: a title, a warning box, an introduction, then (heading, HTML) sections."""
    parts = [f"<h1>{escape(title)}</h1>"]
    if warning:
        parts.append(f'<div class="warning"><strong>Warning:</strong> {escape(warning)}</div>')
    if intro:
        parts.append(intro)
    parts += [f"<h2>{escape(heading)}</h2>{body}" for heading, body in sections]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(parts)}<script>{_SORT_SCRIPT}</script></body></html>\n")


def write_page(path: Path, text: str) -> Path:
    from gender_cli.atomic import write_bytes_atomically

    return write_bytes_atomically(path, text.encode("utf-8"))
