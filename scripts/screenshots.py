"""Screenshots of the app's pages in headless Chromium, as a curator sees them on first load.

Run: .venv/bin/python scripts/screenshots.py http://127.0.0.1:8501 OUTDIR [PAGE ...]
     (PAGE is the page's URL path, e.g. Charts or Review; none = the home page)

Serve the project first (`curator app`, or `make demo`). Each page is loaded, given time
until Streamlit reports its script idle and the page stops growing, and saved whole as
OUTDIR/<page>.png (lower case). This is how the pictures in docs/screenshots are made;
it uses Debian's chromium and chromedriver, like the browser tests.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from selenium.webdriver.remote.webdriver import WebDriver

from curator.testing.browser import BrowserMissing, headless_chromium

WIDTH = 1400
SETTLE_S = 60.0  # a cold page (models, first queries) may take this long on 2 cores

IDLE = """
const app = document.querySelector('[data-testid="stApp"]');
return Boolean(app) && app.getAttribute('data-test-script-state') === 'notRunning'
    && !document.querySelector('[data-testid="stStatusWidget"]');
"""


def settle(driver: WebDriver) -> None:
    """Wait until the script is idle and the page's height holds for a second."""
    deadline, height, steady_since = time.monotonic() + SETTLE_S, -1, time.monotonic()
    while time.monotonic() < deadline:
        now = driver.execute_script("return document.body.scrollHeight")
        if now != height or not driver.execute_script(IDLE):
            height, steady_since = now, time.monotonic()
        elif time.monotonic() - steady_since > 1.0:
            return
        time.sleep(0.25)
    print(
        f"screenshots: {driver.current_url} still changing after {SETTLE_S:.0f} s", file=sys.stderr
    )


def whole_page_height(driver: WebDriver) -> int:
    # Streamlit scrolls inside its own container, not the body.
    return int(
        driver.execute_script(
            "const m = document.querySelector('[data-testid=\"stMain\"]')"
            " || document.querySelector('section.main');"
            "return Math.max(document.body.scrollHeight, m ? m.scrollHeight : 0);"
        )
    )


def shoot(driver: WebDriver, base: str, page: str, out_dir: Path) -> Path:
    driver.get(f"{base.rstrip('/')}/{page}")
    settle(driver)
    driver.set_window_size(WIDTH, min(whole_page_height(driver) + 120, 12000))
    settle(driver)
    path = out_dir / f"{(page or 'home').lower()}.png"
    driver.save_screenshot(str(path))
    errors = driver.find_elements("css selector", '[data-testid="stException"]')
    if errors:  # still saved: the picture shows what went wrong
        print(f"screenshots: {path} shows an error: {errors[0].text[:300]}", file=sys.stderr)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the app's address, e.g. http://127.0.0.1:8501")
    parser.add_argument("out_dir", type=Path, help="folder for the PNG files")
    parser.add_argument("pages", nargs="*", default=[""], help="URL paths, e.g. Charts Review")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        try:
            driver = headless_chromium(Path(profile), f"{WIDTH},1000", "--hide-scrollbars")
        except BrowserMissing as missing:
            sys.exit(f"screenshots: {missing}")
        try:
            for page in args.pages:
                print(shoot(driver, args.base, page, args.out_dir))
        finally:
            driver.quit()


if __name__ == "__main__":
    main()
