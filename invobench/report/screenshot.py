"""A picture of a report page: headless Chromium, offline, driven by selenium (`invobench report --screenshot`).

Needs Debian's `chromium` and `chromium-driver` (or any Chromium and its matching chromedriver on PATH)
and the `selenium` package; `missing()` says which is absent and how to install it. The page is opened
from disk with every network request blocked, as the browser tests do, and the picture is taken once
the page's script has drawn every figure.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional

INSTALL_HINT = "apt-get install -y chromium chromium-driver && pip install selenium (or: make browser)"


def chromium_paths() -> tuple[str, str]:
    return (shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver")


def missing() -> Optional[str]:
    """Why no picture can be taken here (None when it can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return f"selenium is not installed; {INSTALL_HINT}"
    for path in chromium_paths():
        if not os.access(path, os.X_OK):
            return f"{path} not found; {INSTALL_HINT}"
    return None


@contextlib.contextmanager
def headless_chromium(width: int = 1400, height: int = 1000) -> Iterator[object]:
    """A selenium driver of headless Chromium that can reach nothing on the network; quit on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    problem = missing()
    if problem:
        raise RuntimeError(problem)
    chromium, chromedriver = chromium_paths()
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must not try to download a driver
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="invobench-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                 "--hide-scrollbars",
                 # the network is blocked twice over: no name resolves and every proxy connection is refused
                 "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        driver.set_page_load_timeout(120)
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs",
                               {"urls": ["http://*", "https://*", "ws://*", "wss://*", "ftp://*"]})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(driver, path: Path, timeout_s: float = 90) -> None:
    """Load a report page from disk and wait until its script has drawn everything (body[data-rendered])."""
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get_log("performance")
    driver.get(Path(path).resolve().as_uri())
    deadline = time.time() + timeout_s
    while driver.execute_script("return document.body && document.body.getAttribute('data-rendered')") != "1":
        if time.time() > deadline:
            raise RuntimeError(f"{path}: the page's script did not finish within {timeout_s:g} s")
        time.sleep(0.2)


def page_problems(driver) -> list[str]:
    """Console errors and network requests of the page opened last (none is expected)."""
    problems = [f"console: {e['message']}" for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if not url.startswith(("file:", "data:", "blob:", "about:")):
                problems.append(f"network request: {url}")
    return problems


def screenshot(html: Path, out: Path, section: Optional[str] = None, width: int = 1400) -> Path:
    """Save a PNG of report page `html`: the section with id `section` (e.g. 'latency'), or the whole page."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with headless_chromium(width=width) as driver:
        open_page(driver, html)
        height = min(int(driver.execute_script("return document.body.scrollHeight")), 16000)
        driver.set_window_size(width, height)  # the whole page laid out at once
        time.sleep(1.0)  # plotly re-lays out the figures for the new size (responsive)
        if section:
            from selenium.webdriver.common.by import By

            found = driver.find_elements(By.ID, section)
            if not found:
                ids = driver.execute_script("return Array.from(document.querySelectorAll('section[id]')).map(s => s.id);")
                raise ValueError(f"the report has no section {section!r}; sections: {', '.join(ids)}")
            ok = found[0].screenshot(str(out))
        else:
            ok = driver.save_screenshot(str(out))
        problems = page_problems(driver)
    if not ok:
        raise RuntimeError(f"Chromium could not save {out}")
    if problems:
        raise RuntimeError(f"{html}: " + "; ".join(problems))
    return out
