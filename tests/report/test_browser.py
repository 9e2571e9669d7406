"""The HTML report in headless Chromium: every chart drawn with a non-zero size, no
console errors, no request but the file itself, no page-wide sideways scrolling on a
phone; screenshots at desktop and phone widths saved to artifacts/ (a CI artifact).

Needs Debian's `chromium` (`.ci/run` installs it) and the playwright package driven with
`executable_path` (Playwright cannot download its own browsers here); skipped otherwise.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from extras import require_extra

from infertune.report import write_reports

from .fixtures import make_report
from .test_write import CHARTS

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
VIEWPORTS = {"desktop": (1280, 900), "phone": (390, 844)}


def _chromium() -> str | None:
    for name in (os.environ.get("INFERTUNE_CHROMIUM"), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


CHROMIUM = _chromium()
sync_api = require_extra("playwright.sync_api", "test")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: "
                                "apt-get install chromium; .ci/run installs it)")


@pytest.fixture(scope="module")
def report_url(tmp_path_factory) -> str:
    run = tmp_path_factory.mktemp("run")
    write_reports(run, make_report(), formats=("html",))
    return (run / "report.html").as_uri()


def _load(browser, url: str, viewport: tuple[int, int]):
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    events = {"errors": [], "requests": []}
    page.on("console", lambda m: events["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: events["errors"].append(str(e)))
    page.on("request", lambda r: events["requests"].append(r.url))
    page.goto(url, wait_until="load")
    return page, events


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        # --no-sandbox: CI containers run as root, where Chromium's sandbox cannot start.
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.mark.parametrize("device", sorted(VIEWPORTS))
def test_report_renders_in_chromium(browser, report_url, device):
    ARTIFACTS.mkdir(exist_ok=True)
    page, events = _load(browser, report_url, VIEWPORTS[device])
    sizes = {name: page.locator(f'figure[data-chart="{name}"] svg').bounding_box()
             for name in CHARTS}
    overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
    page.screenshot(path=str(ARTIFACTS / f"report-{device}.png"), full_page=True)
    page.close()
    for name, box in sizes.items():
        assert box is not None and box["width"] > 50 and box["height"] > 50, (name, box)
        assert box["width"] <= VIEWPORTS[device][0], (name, box)   # charts fit the screen
    assert events["errors"] == []
    # data: URIs are the heatmaps' inline images: parts of the file, not fetches
    assert [u for u in events["requests"] if not u.startswith("data:")] == [report_url]
    assert overflow <= 0, "the page scrolls sideways; only tables may"
    assert (ARTIFACTS / f"report-{device}.png").stat().st_size > 10_000
