"""A served UI and headless Chromium for the web UI tests (Debian's chromium and chromium-driver packages).

Without the browser these tests skip locally and fail under CI, where .ci/run installs it.
"""

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = os.environ.get("EVOLVE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("EVOLVE_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    "--window-size=1400,1800",
)


def artifacts_dir() -> Path:
    """Where the tests leave their screenshots: $EVOLVE_TEST_ARTIFACTS, or test-artifacts/ in the repository."""
    path = Path(os.environ.get("EVOLVE_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts")) / "ui"
    path.mkdir(parents=True, exist_ok=True)
    return path


def chromium():
    """A Selenium driver for headless Chromium with a fresh profile; skip (fail under CI) without one."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        message = f"no headless browser: {', '.join(missing)} missing; apt-get install chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {message} (.ci/run installs them)")
        pytest.skip(message)
    profile = tempfile.mkdtemp(prefix="evolve-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    driver.profile_dir = profile
    return driver


def close(driver) -> None:
    driver.quit()
    shutil.rmtree(driver.profile_dir, ignore_errors=True)


@contextmanager
def running(app) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port in a thread; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the UI server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
