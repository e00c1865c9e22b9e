"""The report in a real browser: headless Chromium opens it from disk with the network blocked.

Checks: no console errors, no request leaves the machine, every plotly figure rendered (an SVG
with its traces), the records table filters as one types and sorts on a click, and the compare
page renders too. A screenshot is saved; its path is printed.

Needs Debian's `chromium` and `chromium-driver` and the `selenium` package; without them the test
skips and says how to install them (the make target that runs it installs them).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from invobench.report.compare import compare_runs
from invobench.report.compare_page import render_comparison_html
from invobench.report.page import write_report
from invobench.results import read_results
from synthetic_results import HOSTILE, write_run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOT_DIR = Path(os.environ.get("INVOBENCH_SCREENSHOT_DIR", Path(tempfile.gettempdir()) / "invobench-screenshots"))
INSTALL_HINT = "apt-get install -y chromium chromium-driver && pip install selenium (or: make test-browser)"


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return f"selenium is not installed; {INSTALL_HINT}"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} not found; {INSTALL_HINT}"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must not try to download a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="invobench-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000",
                 # the network is blocked twice over: no name resolves and every proxy connection is refused
                 "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*", "ftp://*"]})
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _open(driver, path: Path) -> None:
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get_log("performance")
    driver.get(path.resolve().as_uri())
    deadline = time.time() + 90
    while driver.execute_script("return document.body && document.body.getAttribute('data-rendered')") != "1":
        if time.time() > deadline:
            raise AssertionError(f"{path}: the page's script did not finish within 90 s")
        time.sleep(0.2)


def _assert_clean(driver, path: Path) -> None:
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, f"console errors on {path}: {errors}"
    requests = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if not url.startswith(("file:", "data:", "blob:", "about:")):
                requests.append(url)
    assert not requests, f"{path} tried to reach the network: {requests}"


def _assert_figures_rendered(driver) -> int:
    expected = int(driver.execute_script("return document.body.getAttribute('data-figures')"))
    rendered = driver.execute_script("""
        return Array.from(document.querySelectorAll('div.plot')).map(d => ({
            id: d.id, plotly: d.classList.contains('js-plotly-plot'),
            svg: d.querySelectorAll('svg.main-svg').length,
            traces: d.querySelectorAll('g.trace, g.scatterlayer .trace').length }));""")
    assert len(rendered) == expected > 0
    for fig in rendered:
        assert fig["plotly"] and fig["svg"] > 0 and fig["traces"] > 0, f"figure not rendered: {fig}"
    return expected


def _retype(box, text: str) -> None:
    """Replace the box's text by keystrokes (element.clear() fires no input event)."""
    from selenium.webdriver.common.keys import Keys

    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    if text:
        box.send_keys(text)


def _visible_rows(driver, table_id: str) -> list[str]:
    return driver.execute_script(
        f"return Array.from(document.querySelectorAll('#{table_id} tbody tr')).map(tr => tr.textContent);")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("browser")
    a = write_run(d / "a.jsonl", run_id="run-a", seed=1)
    b = write_run(d / "b.jsonl", run_id="run-b", hostname="box-b", cpu="Faster CPU", speed=1.5, seed=2,
                  slow={"involution.eager": 1.2})
    lines = [json.loads(line) for line in b.read_text().splitlines()]
    lines[0]["run_id"] = "run-b " + HOSTILE  # must show as text, never run
    b.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    page = d / "report.html"
    write_report([a, b], page)
    comparison = d / "compare.html"
    comparison.write_text(render_comparison_html(compare_runs(read_results(a), read_results(b),
                                                              normalize_by="conv.depthwise")))
    return page, comparison


def test_report_renders_offline_and_filters(browser, report, capsys):
    from selenium.webdriver.common.by import By

    page, _ = report
    _open(browser, page)
    _assert_clean(browser, page)
    figures = _assert_figures_rendered(browser)
    assert figures == 6
    # the hostile run id is shown as text; had it run, its alert() would have stopped the test
    assert "<script>alert" in browser.find_element(By.CSS_SELECTOR, "table.summary").text
    assert not browser.execute_script("return document.querySelector('main img, table.summary script')")

    host = "tbl-records"
    total = int(browser.find_element(By.ID, host).get_attribute("data-matching"))
    assert total == 168
    box = browser.find_element(By.CSS_SELECTOR, f"#{host} input.filter")
    box.send_keys("eager fwd+bwd")
    matching = int(browser.find_element(By.ID, host).get_attribute("data-matching"))
    assert matching == 20  # 10 cases × 2 runs; no failure record is an eager fwd+bwd one
    rows = _visible_rows(browser, host)
    assert len(rows) == 20 and all("involution.eager" in r and "fwd+bwd" in r for r in rows)
    _retype(box, "nothing-matches-this")
    assert browser.find_element(By.ID, host).get_attribute("data-matching") == "0"
    _retype(box, "")
    assert int(browser.find_element(By.ID, host).get_attribute("data-matching")) == total

    # status filter and sorting by a numeric column
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.CSS_SELECTOR, f"#{host} select.status-filter")).select_by_value("skipped")
    assert browser.find_element(By.ID, host).get_attribute("data-matching") == "2"
    Select(browser.find_element(By.CSS_SELECTOR, f"#{host} select.status-filter")).select_by_value("")
    header = [th for th in browser.find_elements(By.CSS_SELECTOR, f"#{host} thead th") if th.text.startswith("median ms")][0]
    header.click()
    medians = browser.execute_script(
        f"var i = Array.from(document.querySelectorAll('#{host} thead th')).findIndex(th => th.textContent.startsWith('median ms'));"
        f"return Array.from(document.querySelectorAll('#{host} tbody tr')).map(tr => parseFloat(tr.children[i].textContent));")
    assert medians == sorted(medians) and len(medians) == 100

    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOT_DIR / "report.png"
    height = min(int(browser.execute_script("return document.body.scrollHeight")), 16000)
    browser.set_window_size(1400, height)  # the whole page in one picture
    time.sleep(1.0)  # plotly re-lays out the figures for the new width (responsive)
    assert browser.save_screenshot(str(shot))
    with capsys.disabled():
        print(f"\nreport screenshot: {shot}")
    _assert_clean(browser, page)


def test_comparison_page_renders_offline(browser, report, capsys):
    from selenium.webdriver.common.by import By

    _, page = report
    _open(browser, page)
    _assert_clean(browser, page)
    assert _assert_figures_rendered(browser) == 1
    host = browser.find_element(By.ID, "tbl-cases")
    host.find_element(By.CSS_SELECTOR, "input.filter").send_keys("regression")
    assert host.get_attribute("data-matching") == "20"
    shot = SCREENSHOT_DIR / "compare.png"
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(shot))
    with capsys.disabled():
        print(f"\ncompare screenshot: {shot}")
