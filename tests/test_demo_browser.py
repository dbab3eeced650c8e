"""End to end in a real browser: `facebone demo` on 127.0.0.1, Debian's headless Chromium
driven by Playwright, two LFW photos uploaded, the decision read off the page."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from facebone.processes import dies_with_parent
from web_images import POWELL

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def demo_url(demo_workdir, lfw_root, cache_dir):
    port = free_port()
    command = [sys.executable, "-m", "facebone", "demo", "--model", str(demo_workdir / "defended")]
    command += ["--data", str(lfw_root), "--workdir", str(demo_workdir)]
    command += ["--cache", str(cache_dir), "--port", str(port)]
    # The demo goes with this test run even when pytest itself is killed.
    process = subprocess.Popen(
        command,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        preexec_fn=dies_with_parent(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).text == "ok":
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert process.poll() is None, "facebone demo exited"
        yield url
    finally:
        # The demo and its Streamlit child share the session this test started.
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


@pytest.fixture
def artifacts(tmp_path) -> Path:
    folder = Path(os.environ.get("FACEBONE_TEST_ARTIFACTS", tmp_path / "artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.slow
def test_upload_two_photos_and_read_the_decision(demo_url, lfw_root, artifacts):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{demo_url}/verification")
            inputs = page.locator("input[type=file]")
            inputs.first.wait_for(state="attached", timeout=60_000)
            assert inputs.count() == 2
            for n, photo in enumerate(POWELL[:2]):
                _upload(page, n, lfw_root / photo)
            screenshot = artifacts / "demo-verification.png"
            try:
                page.get_by_text("Same person: P(same) =").wait_for(timeout=90_000)
                page.get_by_text("What the model saw").wait_for()
            except PlaywrightTimeout:
                page.screenshot(path=str(screenshot))
                pytest.fail(f"no decision on the page:\n{page.inner_text('body')[-800:]}")
            assert page.locator("[data-testid=stException]").count() == 0
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _upload(page, n: int, photo: Path, tries: int = 3) -> None:
    """Give file input `n` the photo and wait until the page shows it as uploaded (a file chip
    without a spinner). On a loaded machine an upload sent while the page still re-runs after
    the previous one can be dropped by that re-run: it is sent again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    chips = page.locator("[data-testid=stFileChip]")
    spinners = page.locator("[data-testid=stFileChipIconSpinner]")
    for _ in range(tries):
        page.locator("input[type=file]").nth(n).set_input_files(str(photo))
        try:
            page.wait_for_function(
                "([want]) => document.querySelectorAll('[data-testid=stFileChip]').length >= want",
                arg=[n + 1],
                timeout=30_000,
            )
            spinners.first.wait_for(state="detached", timeout=30_000)
            return
        except PlaywrightTimeout:
            continue
    pytest.fail(f"upload {n + 1} never showed on the page ({chips.count()} shown)")
