#!/usr/bin/env bash
# Build both environments from their lock files; safe to run again (a second run takes seconds).
#   .venv        Python 3.12: the app, CLI, plugins and storage   (pyproject.toml + uv.lock)
#   .venv-train  Python 3.10: stable-audio-tools, for training/    (envs/train/)
set -euo pipefail
cd "$(dirname "$0")/.."

export UV_PYTHON_DOWNLOADS=never   # use the machine's Pythons; nothing is fetched from a hub
UV_VERSION=0.13.9

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

ensure_uv() {
    # uv comes from PyPI into a private tool folder, so the machine needs only python3.
    if [ ! -x .tools/bin/uv ]; then
        log "installing uv $UV_VERSION into .tools/"
        python3 -m venv .tools
        .tools/bin/python -m pip install --quiet "uv==$UV_VERSION"
    fi
    UV="$PWD/.tools/bin/uv"
}

find_python() {
    # First interpreter of version $1 that really runs: on PATH, then pyenv, then /usr/bin.
    local version=$1 candidate
    local pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
    for candidate in "python$version" "$pyenv_root"/versions/"$version".*/bin/"python$version" \
                     "/usr/bin/python$version" "/usr/local/bin/python$version"; do
        if "$candidate" -c 'import sys' >/dev/null 2>&1; then
            command -v "$candidate" 2>/dev/null || echo "$candidate"
            return 0
        fi
    done
    log "Python $version not found: install it (e.g. pyenv install $version) and run again"
    return 1
}

sync_app_env() {
    log "syncing .venv (Python 3.12) from uv.lock"
    "$UV" sync --locked --extra ray --python "$(find_python 3.12)" --quiet
}

sync_train_env() {
    log "syncing .venv-train (Python 3.10, stable-audio-tools) from envs/train/uv.lock"
    UV_PROJECT_ENVIRONMENT="$PWD/.venv-train" \
        "$UV" sync --locked --project envs/train --python "$(find_python 3.10)" --quiet
    verify_train_env
}

verify_train_env() {
    # Importing stable_audio_tools.training takes ~15 s, so it is checked once per lock file.
    local stamp=.venv-train/.verified lock_hash
    lock_hash=$(sha256sum envs/train/uv.lock | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]; then
        log "checking that .venv-train imports stable_audio_tools.training"
        .venv-train/bin/python -c 'import stable_audio_tools.training, numpy; assert numpy.__version__ < "2"'
        echo "$lock_hash" > "$stamp"
    fi
}

# --- freeze_musicnn_graphs (plugins/musicnn) -------------------------------------------------
freeze_musicnn_graphs() (
    # musicnn ships TF1 checkpoints; Essentia runs frozen graphs. They are frozen once, in a
    # throwaway Python 3.10 environment (no TensorFlow in .venv; musicnn's wheel pins numpy
    # < 1.17, so it goes in without its dependencies), and skipped while the stamp matches.
    local out=.models/musicnn musicnn_pin=musicnn==0.1.0 tf_pin=tensorflow-cpu==2.15.1
    local stamp tmp
    stamp="$musicnn_pin $tf_pin $(sha256sum scripts/freeze_musicnn.py | cut -d' ' -f1)"
    if [ "$(cat "$out/STAMP" 2>/dev/null)" = "$stamp" ] \
        && [ -s "$out/MSD_musicnn.pb" ] && [ -s "$out/MTT_musicnn.pb" ]; then
        return 0
    fi
    log "freezing musicnn's pretrained graphs into $out (once, about a minute)"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    "$UV" venv --quiet --python "$(find_python 3.10)" "$tmp/venv"
    "$UV" pip install --quiet --python "$tmp/venv/bin/python" "$tf_pin"
    "$UV" pip install --quiet --python "$tmp/venv/bin/python" --no-deps "$musicnn_pin"
    TF_CPP_MIN_LOG_LEVEL=2 PYTHONWARNINGS=ignore \
        "$tmp/venv/bin/python" scripts/freeze_musicnn.py "$out" >&2
    echo "$stamp" > "$out/STAMP"
)
# --- end freeze_musicnn_graphs ---------------------------------------------------------------

ensure_uv
sync_app_env
sync_train_env
freeze_musicnn_graphs
log "environments ready"
