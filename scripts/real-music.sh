#!/usr/bin/env bash
# Real recordings for bench/real_music_bench.py (music nobody here rendered): the Wesnoth
# soundtrack from Debian's wesnoth-1.16-music, 41 OGG tracks (128 min, 148 MB, GPL-2+ /
# CC BY-SA), installed when missing (needs root or sudo). Prints the folder.
set -euo pipefail
folder=/usr/share/games/wesnoth/1.16/data/core/music
if [ ! -d "$folder" ]; then
    echo "[real-music] installing wesnoth-1.16-music (about 150 MB)" >&2
    SUDO=$([ "$(id -u)" -eq 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        wesnoth-1.16-music >/dev/null
fi
echo "$folder"
