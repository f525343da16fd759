#!/usr/bin/env bash
# Debian packages Curator and its tests use, installed when missing (needs root or sudo):
#   chromium, chromium-driver   the browser tests of the app
#   fluidsynth + soundfonts     the trap tagger's training corpus and the demo's beats are
#                               rendered with real sampled instruments (plugins/trap/corpus)
#   espeak-ng                   speech for the corpus's vocal chops and movie samples
#   libchromaprint-tools        fpcalc: audio fingerprints for `curator duplicates`
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v fpcalc >/dev/null || missing+=(libchromaprint-tools)
# libfluidsynth3 comes with fluidsynth; pyfluidsynth (PyPI) loads it.
command -v fluidsynth >/dev/null || missing+=(fluidsynth)
for pair in fluid-soundfont-gm:/usr/share/sounds/sf2/FluidR3_GM.sf2 \
            fluid-soundfont-gs:/usr/share/sounds/sf2/FluidR3_GS.sf2 \
            musescore-general-soundfont:/usr/share/sounds/sf3/MuseScore_General_Full.sf3 \
            csound-soundfont:/usr/share/sounds/sf2/sf_GMbank.sf2 \
            avldrums.lv2-soundfont:/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2; do
    [ -e "${pair#*:}" ] || missing+=("${pair%%:*}")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "[system-deps] installing ${missing[*]}" >&2
    SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
