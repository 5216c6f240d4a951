"""The what-if HTML report in a real headless Chromium (Debian's ``chromium`` + ``chromedriver``, see .ci/run).

The page must load from disk with no console error and every figure must render. A full-page
screenshot is kept in ``test-artifacts/`` (ignored by git) for a person to look at.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from adapters.report import write_report
from engine.documents.load import load_documents
from engine.documents.scenario import Scenario
from engine.planner import place
from engine.scenario import expand, solve_scenario
from engine.summary import summarize
from tests.test_whatif import FLEET, SCENARIOS

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000"]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver_path, "install Debian's chromium and chromium-driver (.ci/run does)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _open(driver: webdriver.Chrome, path: Path) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    """Load ``path``; return its console errors and ``[src, complete, naturalWidth]`` of every image."""
    driver.get_log("browser")  # drop what an earlier page logged
    driver.get(path.as_uri())
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "Promise.all(Array.from(document.images, i => i.decode().catch(() => null))).then(() => done());")
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    images = driver.execute_script(
        "return Array.from(document.images, i => [i.getAttribute('src'), i.complete, i.naturalWidth]);")
    return errors, images


def _screenshot(driver: webdriver.Chrome, path: Path) -> None:
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


def _report(folder: Path) -> Path:
    bundle = load_documents(FLEET)
    base = place(bundle, time_limit=5)
    baseline = summarize(bundle, base)
    groups = [(doc["metadata"]["name"], expand(Scenario.model_validate(doc))) for doc in SCENARIOS[:2]]
    add = Scenario.model_validate({**SCENARIOS[0], "metadata": {"name": "add-us"}, "spec": {"edits": [
        {"addClusters": [{"like": "us-1", "metadata": {"name": "us-3"}}]}]}})
    groups.append(("add-us", expand(add)))
    results: list[dict[str, Any]] = [
        {"name": n, "value": v, "summary": solve_scenario(bundle, s, current=base.assignment(), time_limit=5)}
        for _, pts in groups for n, s, v in pts]
    results.append({"name": "typo", "value": None, "error": "InputError: matches no cluster of the bundle"})
    sweeps = {"demand": [r for r in results if r["name"].startswith("demand[")]}
    write_report(folder, baseline, results, sweeps=sweeps)
    return folder / "report.html"


def test_report_renders_in_chromium(tmp_path: Path, browser: webdriver.Chrome) -> None:
    page = _report(tmp_path / "report")
    errors, images = _open(browser, page)
    assert errors == []
    assert sorted(src for src, _, _ in images) == ["sweep-demand.png", "utilisation-add-us.png",
                                                   "utilisation-lose-eu.png"]
    assert all(complete and width > 0 for _, complete, width in images), images
    text = browser.find_element("tag name", "body").text
    assert "How to read this report" in text and "Capacity lost: 2 cluster(s) removed" in text
    shot = ARTIFACTS / "whatif-report.png"
    _screenshot(browser, shot)
    _screenshot(browser, tmp_path / "whatif-report.png")
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000

    # the checks see what they look for: a figure gone from the folder, an error in the console
    (page.parent / "utilisation-lose-eu.png").unlink()
    _, images = _open(browser, page)
    assert [src for src, _, width in images if width == 0] == ["utilisation-lose-eu.png"]
    broken = tmp_path / "broken.html"
    broken.write_text("<!doctype html><title>x</title><script>undefinedFunction()</script>", encoding="utf-8")
    errors, _ = _open(browser, broken)
    assert errors and "undefinedFunction" in errors[0]["message"]
