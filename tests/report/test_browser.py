"""The report in a real browser: headless Chromium opens it from disk with the network blocked.

Checks: no console errors, no request leaves the machine, every plotly figure rendered (an SVG
with its traces), the records table filters as one types and sorts on a click, the verdict
heatmap of each of three results files (two machines and a dtype run) switches its denominator on
a button click, the machine view draws every machine, and the compare page renders too.
Screenshots are saved; their paths are printed.

Needs Debian's `chromium` and `chromium-driver` and the `selenium` package; without them the test
skips and says how to install them (the make target that runs it installs them).
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import pytest

from invobench.report.compare import compare_runs
from invobench.report.compare_page import render_comparison_html
from invobench.report.page import write_report
from invobench.report.screenshot import headless_chromium, missing, open_page, page_problems
from invobench.results import read_results
from synthetic_results import HOSTILE, paper_cases, write_run

SCREENSHOT_DIR = Path(os.environ.get("INVOBENCH_SCREENSHOT_DIR", Path(tempfile.gettempdir()) / "invobench-screenshots"))

pytestmark = pytest.mark.skipif(missing() is not None, reason=str(missing()))


@pytest.fixture(scope="module")
def browser():
    with headless_chromium() as driver:
        yield driver


def _open(driver, path: Path) -> None:
    open_page(driver, path)


def _assert_clean(driver, path: Path) -> None:
    problems = page_problems(driver)
    assert not problems, f"{path}: {problems}"


def _assert_figures_rendered(driver) -> int:
    expected = int(driver.execute_script("return document.body.getAttribute('data-figures')"))
    rendered = driver.execute_script("""
        return Array.from(document.querySelectorAll('div.plot')).map(d => ({
            id: d.id, plotly: d.classList.contains('js-plotly-plot'),
            svg: d.querySelectorAll('svg.main-svg').length,
            traces: d.querySelectorAll('g.trace, g.scatterlayer .trace, g.heatmaplayer g.hm image').length }));""")
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
    assert figures == 9  # a verdict heatmap per run, the machine view, latency, speedup, roofline, memory, 2 sweeps
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


ALL_FAMILIES = ("involution.eager", "involution.unfold", "involution.compile", "conv.depthwise", "conv.grouped",
                "conv.dense", "attention.unfold")


@pytest.fixture(scope="module")
def three_files(tmp_path_factory):
    """Two machines and a bfloat16 run of the first, every family present."""
    d = tmp_path_factory.mktemp("three")
    paths = [
        write_run(d / "a.jsonl", run_id="run-a", variants=ALL_FAMILIES, seed=1, failures=False),
        write_run(d / "b.jsonl", run_id="run-b", hostname="box-b", cpu="Faster CPU", speed=1.5, variants=ALL_FAMILIES,
                  seed=2, slow={"involution.compile": 3.0}, failures=False),
        write_run(d / "c.jsonl", run_id="run-c", variants=ALL_FAMILIES, seed=3, failures=False,
                  cases=[case.replace(dtype="bfloat16") for case in paper_cases()]),
    ]
    page = d / "three.html"
    write_report(paths, page)
    return page


def test_verdict_heatmaps_and_machine_view_of_three_files_render_and_switch(browser, three_files, capsys):
    from selenium.webdriver.common.by import By

    _open(browser, three_files)
    _assert_clean(browser, three_files)
    assert not browser.find_elements(By.CSS_SELECTOR, "#warnings .warn")
    assert _assert_figures_rendered(browser) == 10  # 3 heatmaps, the machine view, 6 charts
    lines = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#verdict p.bottom-line")]
    assert len(lines) == 3 and all(line.startswith("On ") and "local self-attention" in line for line in lines)
    assert "bfloat16" in lines[2]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#verdict ul.recommend li")) == 3

    def heatmap(fig_id: str) -> dict:
        return browser.execute_script(
            f"var g = document.getElementById('{fig_id}'); return {{text: g.data[0].text, z: g.data[0].z, "
            f"title: g.layout.title.text, cells: g.querySelectorAll('g.heatmaplayer text').length}};")

    before = heatmap("fig-verdict-2")
    assert before["cells"] == 20 and "depthwise conv" in before["title"]  # 10 cases × 2 passes, a text in each cell
    buttons = browser.find_elements(By.CSS_SELECTOR, "#fig-verdict-2 g.updatemenu-button")
    assert [b.text for b in buttons] == ["÷ depthwise conv", "÷ grouped conv", "÷ dense conv", "÷ local self-attention"]
    buttons[3].click()
    time.sleep(0.5)
    after = heatmap("fig-verdict-2")
    assert "local self-attention" in after["title"] and after["z"] != before["z"]
    assert all(z is None or z < 0 for row in after["z"] for z in row)  # involution beats local attention everywhere here
    assert heatmap("fig-verdict-1")["title"] == before["title"]  # each run's selector restyles its own heatmap only

    machines = browser.execute_script(
        "var g = document.getElementById('fig-machines'); return g.data.map(t => t.name + ' | ' + t.xaxis);")
    names = {m.split(" | ")[0] for m in machines}
    assert len(names) == 9  # 3 machines (two hosts and a dtype) × 3 families
    assert any("bfloat16" in n for n in names) and any("Faster CPU" in n for n in names)
    _assert_clean(browser, three_files)

    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOT_DIR / "verdict.png"
    assert browser.find_element(By.ID, "verdict").screenshot(str(shot))
    with capsys.disabled():
        print(f"\nverdict screenshot: {shot}")


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
