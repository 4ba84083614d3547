"""The HTML reports of ``audit`` and ``report`` rendered by a real browser: headless
Chromium (Debian's ``chromium`` package) takes a screenshot and dumps the DOM after the
page's script ran. Skips with the reason where no Chromium is installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from helpers_infer import write_tiny_classifier  # noqa: E402
from helpers_train import write_utkface_named  # noqa: E402

from gender_cli.cli.main import cli

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no headless Chromium on this machine (Debian: apt-get install chromium)")


def _browse(chromium: str, page: Path, tmp_path: Path, *action: str, height: int = 2400) -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    done = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size=1280,{height}",
                           *action, page.as_uri()], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _screenshot(chromium: str, page: Path, tmp_path: Path) -> np.ndarray:
    from PIL import Image

    shot = tmp_path / f"{page.stem}-{len(list(tmp_path.iterdir()))}.png"
    _browse(chromium, page, tmp_path, f"--screenshot={shot}")
    return np.asarray(Image.open(shot).convert("RGB")).astype(int)


def _not_blank(pixels: np.ndarray) -> None:
    inked = (pixels < 235).any(axis=2)
    assert inked.mean() > 0.02, "the screenshot is (nearly) blank"
    # the bars and histograms are svg_charts.PALETTE[0], a blue (drawn partly transparent)
    bars = (pixels[..., 2] - pixels[..., 0] > 80) & (pixels[..., 2] > 150)
    assert bars.sum() > 2000, "no chart was drawn"


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    base = tmp_path_factory.mktemp("render")
    model = write_tiny_classifier(base / "tiny.onnx", size=32)
    data = base / "data"
    write_utkface_named(data, {0: 40, 1: 30, 2: 25, 3: 8})
    runner = CliRunner()
    audit = runner.invoke(cli, ["audit", str(data), "--model", str(model), "--groups", "race,age_band", "-o",
                                str(base / "audit"), "--device", "cpu", "-q"])
    assert audit.exit_code == 0, audit.output
    rows = base / "rows.csv"
    runner.invoke(cli, ["classify", str(data), "--model", str(model), "-o", str(rows), "--device", "cpu", "-q"])
    report = runner.invoke(cli, ["report", str(rows), "-o", str(base / "report")])
    assert report.exit_code == 0, report.output
    return {"audit": base / "audit" / "report.html", "report": base / "report" / "report.html"}


def test_audit_report_renders_with_its_tables_and_charts(chromium, pages, tmp_path):
    _not_blank(_screenshot(chromium, pages["audit"], tmp_path))
    dom = _browse(chromium, pages["audit"], tmp_path, "--dump-dom")
    assert dom.count('<table class="sortable">') == 1 + 2 * 2
    assert dom.count("<svg") >= 8 and "<img" in dom
    for heading in ("All images", "By race", "By age_band", "Calibration", "Choosing a threshold"):
        assert f"<h2>{heading}</h2>" in dom


def test_a_click_on_a_heading_sorts_the_table(chromium, pages, tmp_path):
    """The page's own script sorts: click 'n' of the race table twice, read the order back."""
    text = pages["audit"].read_text()
    probe = ('<script>var t = document.querySelectorAll("table.sortable")[1], th = t.tHead.rows[0].cells[1];'
             'function col() { return Array.prototype.map.call(t.tBodies[0].rows, function (r) {'
             ' return Number(r.cells[1].textContent); }); }'
             'th.click(); var up = col(); th.click(); var down = col();'
             'document.title = JSON.stringify([up, down]);</script>')
    page = tmp_path / "probe.html"
    page.write_text(text.replace("</body>", probe + "</body>"))
    dom = _browse(chromium, page, tmp_path, "--dump-dom")
    up, down = json.loads(re.search(r"<title>(.*?)</title>", dom).group(1))
    assert up == sorted(up) and down == sorted(up, reverse=True) and len(set(up)) > 2


def test_collection_report_renders_with_thumbnails(chromium, pages, tmp_path):
    _not_blank(_screenshot(chromium, pages["report"], tmp_path))
    dom = _browse(chromium, pages["report"], tmp_path, "--dump-dom")
    assert '<table class="sortable">' in dom and 'src="data:image/jpeg;base64,' in dom
