"""Headless Chromium as the browser tests, the review benchmark and scripts/screenshots.py
drive it: Debian's chromium and chromedriver, never anything Selenium would download.

Needs selenium (a dev dependency, not installed with Curator itself).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

# Quiet and offline: no first-run pages, no updates, no proxy for 127.0.0.1.
ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-proxy-server",
)


class BrowserMissing(RuntimeError):
    """Chromium or chromedriver is not installed (and no variable names one)."""


def browser_binaries() -> tuple[str, str]:
    """Chromium and chromedriver from the system (CHROMIUM / CHROMEDRIVER override)."""
    found = []
    for variable, names in (
        ("CHROMIUM", ("chromium", "chromium-browser")),
        ("CHROMEDRIVER", ("chromedriver",)),
    ):
        candidates = [os.environ.get(variable), *map(shutil.which, names), f"/usr/bin/{names[0]}"]
        path = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
        if path is None:
            raise BrowserMissing(
                f"{names[0]} not found (set {variable} or install it: on Debian/Ubuntu "
                "`apt-get install chromium chromium-driver`)"
            )
        found.append(path)
    return found[0], found[1]


def headless_chromium(profile: Path, window: str, *extra: str) -> WebDriver:
    """A headless Chromium with its profile in `profile`, a window of `window` ("W,H")
    pixels, and any `extra` command-line arguments."""
    chromium, chromedriver = browser_binaries()
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download anything
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (*ARGUMENTS, *extra, f"--user-data-dir={profile}", f"--window-size={window}"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
