"""The demo's HTML report in a real browser: headless Chromium renders every section and chart.

The screenshot is kept as a CI artifact in ``$FRICTIONLENS_ARTIFACTS`` (default: ``artifacts/``
in the test's tmp dir).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from frictionlens.exporters import report
from tests.test_report import IMG, decoded_png

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# read at import: the autouse fixture clears FRICTIONLENS_* variables before each test
ARTIFACTS = os.environ.get("FRICTIONLENS_ARTIFACTS")
WINDOW = "1200,3400"
#: Chromium as root, without a GPU, and with nothing of its own reaching the network
QUIET_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)

# appended to a copy of the report: the browser itself says whether it decoded each image
PROBE = """<script>
document.body.setAttribute("data-images", Array.from(document.images).map(
  i => i.complete && i.naturalWidth > 0 ? i.naturalWidth + "x" + i.naturalHeight : "broken").join(" "));
</script>"""


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run with a fresh profile and nothing reaching the network."""
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                *QUIET_FLAGS,
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=5000",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )


def screenshot(html: Path, png: Path) -> Path:
    """What a reader sees: the page at 1200 px wide, saved as PNG."""
    png.parent.mkdir(parents=True, exist_ok=True)
    proc = chromium(f"--screenshot={png}", f"--window-size={WINDOW}", html.resolve().as_uri())
    assert png.exists(), proc.stderr
    return png


def _pixels(png: Path):
    from matplotlib import image

    return image.imread(png)


@pytest.fixture
def artifacts(tmp_path) -> Path:
    return Path(ARTIFACTS) if ARTIFACTS else tmp_path / "artifacts"


def test_chromium_renders_every_section_and_chart(demo_cli_run, tmp_path, artifacts):
    page = demo_cli_run[0] / "report.html"
    probe = tmp_path / "probe.html"
    probe.write_text(
        page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8"
    )
    dom = chromium("--dump-dom", probe.resolve().as_uri()).stdout

    assert re.findall(r"<h2>(.*?)</h2>", dom) == list(report.SECTIONS)
    loaded = re.search(r'data-images="([^"]*)"', dom)
    assert loaded, "the probe script did not run"
    sizes = loaded.group(1).split()
    assert len(sizes) == 4 and "broken" not in sizes
    assert all(int(w) >= 600 and int(h) >= 200 for w, h in (s.split("x") for s in sizes))
    images = IMG.findall(dom)
    assert len(images) == 4
    for b64 in images:  # the images as the browser holds them: drawn, not blank
        assert decoded_png(b64)[..., :3].std() > 0.01

    shot = screenshot(page, artifacts / "report.png")
    pixels = _pixels(shot)[..., :3]
    assert pixels.shape[:2] == (3400, 1200)
    assert pixels.std() > 0.05  # text, tables and charts, not a blank page
    assert (pixels.min(axis=2) < 0.9).mean() > 0.05  # a good share of the page is drawn on
