"""Open every page of a running dashboard in a real browser (Debian's headless Chromium, driven by
Playwright), check it rendered, and optionally save a screenshot of each.

    python -m dashboards.browse http://127.0.0.1:8501 --out docs/screenshots

The browser test (``tests/dashboards/test_browser.py``) calls :func:`visit` against an app it
starts; the README's screenshots come from the command above over the demo's data. Playwright
drives the system's Chromium (``KINORA_CHROMIUM`` or ``/usr/bin/chromium``); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

# (url path, the page's title): the navigation's url paths are the page files' names
PAGES = [("", "Overview"), ("feed", "Feed engagement"), ("retention", "Retention"), ("content", "Content and creators"),
         ("campaigns", "Campaigns"), ("trust", "Trust and safety"), ("ranking", "Ranking")]

# Without these Chromium keeps trying to reach Google's services, which this network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class PageVisit:
    path: str
    title: str
    heading: str | None
    errors: list[str]
    screenshot: str | None = None

    @property
    def ok(self) -> bool:
        return self.heading == self.title and not self.errors


def chromium() -> str | None:
    """The system Chromium, or None when it is not installed."""
    path = os.environ.get("KINORA_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return path if path and Path(path).exists() else None


def visit(base_url: str, *, out_dir: Path | None = None, timeout_s: float = 60.0,
          width: int = 1400, height: int = 1000) -> list[PageVisit]:
    """Load each page, wait for its title (h1), collect error boxes and exceptions, screenshot it."""
    from playwright.sync_api import sync_playwright

    exe = chromium()
    if exe is None:
        raise RuntimeError("no Chromium found: install Debian's chromium (apt-get install chromium) or set KINORA_CHROMIUM")
    visits = []
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(profile, executable_path=exe, args=CHROMIUM_ARGS,
                                                       viewport={"width": width, "height": height})
        try:
            page = browser.new_page()
            for path, title in PAGES:
                page.goto(f"{base_url.rstrip('/')}/{path}", timeout=timeout_s * 1000)
                heading = None
                try:
                    page.get_by_role("heading", name=title, level=1).wait_for(timeout=timeout_s * 1000)
                    heading = title
                    # the page has run to its end when Streamlit stops showing its running indicator
                    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')",
                                           timeout=timeout_s * 1000)
                    page.wait_for_timeout(500)  # charts draw after their data arrives
                except Exception:  # noqa: BLE001 - reported as a missing heading below
                    found = page.locator("h1").all_inner_texts()
                    heading = found[0] if found else None
                errors = page.locator("[data-testid='stException']").all_inner_texts()
                errors += page.locator("[data-testid='stAlertContentError']").all_inner_texts()
                shot = None
                if out_dir is not None:
                    out_dir.mkdir(parents=True, exist_ok=True)
                    shot = str(out_dir / f"{path or 'overview'}.png")
                    page.screenshot(path=shot, full_page=True)
                visits.append(PageVisit(path=path, title=title, heading=heading, errors=errors, screenshot=shot))
        finally:
            browser.close()
    return visits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8501")
    parser.add_argument("--out", type=Path, default=None, help="Folder for one PNG per page.")
    parser.add_argument("--height", type=int, default=1000, help="Viewport height (a page scrolls inside it).")
    args = parser.parse_args(argv)
    visits = visit(args.url, out_dir=args.out, height=args.height)
    print(json.dumps([asdict(v) | {"ok": v.ok} for v in visits], indent=1))
    return 0 if all(v.ok for v in visits) else 1


if __name__ == "__main__":
    sys.exit(main())
