"""The dashboard in a real browser: Debian's headless Chromium, driven by Playwright, opens every
page of a running app over the fixture's data (tests/dashboards/conftest.py), finds its title and
no error box, saves a screenshot, and carries a sidebar filter from one page to the next.

``make test`` installs Chromium (``apt-get install chromium``) when it is missing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dashboards import browse

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_url(fixture_home):
    assert browse.chromium(), "no Chromium: `make test` installs Debian's (apt-get install chromium), or set KINORA_CHROMIUM"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINORA_")} | {"KINORA_HOME": str(fixture_home["home"])}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboards" / "app.py"),
                             "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
                             "--browser.gatherUsageStats", "false"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(proc.stdout.read().decode()[-3000:]) from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_every_page_renders_in_chromium_with_its_title_and_no_error(app_url, tmp_path):
    visits = browse.visit(app_url, out_dir=tmp_path / "shots")
    assert [v.title for v in visits] == [t for _, t in browse.PAGES]
    for v in visits:
        assert v.ok, v
        shot = Path(v.screenshot)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_a_sidebar_filter_carries_to_the_next_page(app_url):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browse.chromium(), args=browse.CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{app_url}/campaigns")
            expect(page.get_by_role("heading", name="Campaigns", level=1)).to_be_visible(timeout=60_000)
            requested = page.locator("[data-testid='stMetric']", has_text="Requested")
            expect(requested).to_contain_text("6", timeout=30_000)
            page.locator("[data-testid='stMultiSelect']").first.click()
            page.get_by_role("option", name="c2", exact=True).click()
            page.keyboard.press("Escape")
            expect(requested).to_contain_text("1", timeout=30_000)
            page.get_by_role("link", name="Overview").click()
            expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible(timeout=30_000)
            generations = page.locator("[data-testid='stMetric']", has_text="Generations requested")
            expect(generations).to_contain_text("1", timeout=30_000)  # the campaign filter came along
            expect(page.locator("[data-testid='stMultiSelect']").first).to_contain_text("c2")
        finally:
            browser.close()
