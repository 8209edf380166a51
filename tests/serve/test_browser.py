"""Headless Chromium (Debian's chromium + chromium-driver via Selenium; never a downloaded browser) drives the demo:
load the page, upload the astronaut photo, wait for a 'happ...' result, and save a screenshot to tests/artifacts/."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from .conftest import ARTIFACTS

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
CHROMIUM, DRIVER = Path("/usr/bin/chromium"), shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = [
    pytest.mark.media,
    pytest.mark.skipif(not CHROMIUM.exists() or not Path(DRIVER).exists(),
                       reason="needs Debian's chromium + chromium-driver (make test installs them when root)"),
]


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="emollama-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage", "--window-size=1280,800",
                f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def test_demo_page_analyzes_the_astronaut(browser, analyzer_server, astronaut_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(analyzer_server.url + "/")  # redirects to /demo/
    WebDriverWait(browser, 15).until(lambda d: d.find_element(By.ID, "model").text == "emollama-analyzer")
    browser.find_element(By.ID, "file").send_keys(str(astronaut_path))
    WebDriverWait(browser, 30).until(lambda d: "happ" in d.find_element(By.ID, "results").text.lower())
    results = browser.find_element(By.ID, "results").text
    assert "AU12" in results and browser.find_element(By.ID, "status").get_attribute("class") == "muted"
    # the canvas holds the photo at full size, with the box drawn in the label colour at the face
    size = browser.execute_script("const c = document.getElementById('canvas'); return [c.width, c.height];")
    assert size == [512, 512]
    pixel = browser.execute_script("return Array.from(document.getElementById('canvas').getContext('2d')"
                                   ".getImageData(181, 120, 1, 1).data);")
    assert max(abs(a - b) for a, b in zip(pixel[:3], (255, 200, 0), strict=True)) < 40  # happiness yellow box edge
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "demo_astronaut.png"))
