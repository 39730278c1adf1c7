"""The report in a real browser: headless Chromium renders it without console errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_TIMEOUT_S = 60
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
)
# Chromium logs page console messages (console.*, uncaught errors, failed loads) as
# "...:CONSOLE:<line>] "<text>", source: <url> (<line>)" or, in older builds, "CONSOLE(<line>)".
CONSOLE_LINE = re.compile(r"CONSOLE[:(]")


def _chromium(page: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium); browser test skipped")
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT_S,
        check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )


def _console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CONSOLE_LINE.search(line)]


def test_console_messages_are_detected(tmp_path: Path) -> None:
    """The console check is live: a page that logs an error and loads a missing file is caught."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><body><p>x</p>"
        '<script>console.error("afdsizer-marker")</script></body></html>',
        encoding="utf-8",
    )
    run = _chromium(page, tmp_path, f"--screenshot={tmp_path / 'broken.png'}")
    lines = _console_lines(run.stderr)
    assert any("afdsizer-marker" in line for line in lines), run.stderr[-2000:]


def test_report_renders_without_console_errors(standin_html: str, tmp_path: Path) -> None:
    """Chromium shows the report with no console message and a screenshot that is not blank."""
    page = tmp_path / "report.html"
    page.write_text(standin_html, encoding="utf-8")
    shot = tmp_path / "report.png"
    run = _chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1100,2400")
    assert run.returncode == 0, run.stderr[-2000:]
    assert _console_lines(run.stderr) == []
    with Image.open(shot) as image:
        assert image.format == "PNG"
        assert image.size == (1100, 2400)
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    # Not blank: many non-white pixels and several distinct colours (text, lines, regime cells).
    non_white = (pixels < 240).any(axis=2).mean()
    colours = np.unique(pixels.reshape(-1, 3)[::97], axis=0).shape[0]
    assert non_white > 0.02, non_white
    assert colours > 20, colours


def test_browser_dom_holds_every_figure(standin_html: str, tmp_path: Path) -> None:
    """The DOM Chromium builds has each figure as an SVG element with drawn content."""
    page = tmp_path / "report.html"
    page.write_text(standin_html, encoding="utf-8")
    run = _chromium(page, tmp_path, "--dump-dom")
    assert run.returncode == 0, run.stderr[-2000:]
    dom = run.stdout
    for figure_id in ("workload", "throughput", "step-time", "idle", "regime-map", "theta-windows"):
        section = re.search(
            rf'<section id="fig-{figure_id}"[^>]*>(.*?)</section>', dom, flags=re.DOTALL
        )
        assert section is not None, figure_id
        assert re.search(r"<svg\b[^>]*>.*<path\b", section.group(1), flags=re.DOTALL), figure_id
    assert _console_lines(run.stderr) == []
