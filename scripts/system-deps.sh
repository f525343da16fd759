#!/usr/bin/env bash
# Debian packages the tests use: Chromium and ChromeDriver for the browser tests of the app.
# Skipped when they are already installed; needs root (or sudo) otherwise.
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    echo "[system-deps] installing ${missing[*]}" >&2
    SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
