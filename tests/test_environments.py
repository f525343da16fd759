"""Both environments as the set-up builds them, and the one import name the package installs."""

from __future__ import annotations

import importlib.util
import subprocess
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_the_wheel_installs_only_the_curator_import_name(tmp_path: Path) -> None:
    uv = REPO / ".tools" / "bin" / "uv"
    subprocess.run(
        [str(uv), "build", "--wheel", "--out-dir", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("curator_audio-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if ".dist-info/" not in name} == {"curator"}
    for shipped in (
        "curator/app/Home.py",
        "curator/db/migrations/001_catalogue.sql",
        "curator/plugins/__init__.py",
        "curator/training/__init__.py",
    ):
        assert shipped in names


def test_folders_import_under_curator_only() -> None:
    for name in ("plugins", "app", "db", "training"):
        assert importlib.util.find_spec(name) is None, f"a top-level `{name}` is importable"
    for name in ("curator.plugins", "curator.app", "curator.db", "curator.training"):
        assert importlib.util.find_spec(name) is not None


def test_migrations_ship_with_the_package() -> None:
    from curator.storage import builtin_migrations

    assert builtin_migrations()[0].number == 1


@pytest.mark.train_env
def test_training_environment_imports_stable_audio_tools() -> None:
    python = REPO / ".venv-train" / "bin" / "python"
    assert python.exists(), "run `make setup` (scripts/setup.sh) to build .venv-train"
    check = (
        "import sys, numpy, stable_audio_tools.training, stable_audio_tools;"
        "from importlib.metadata import version;"
        "print(sys.version_info[:2], version('stable-audio-tools'), numpy.__version__)"
    )
    result = subprocess.run([str(python), "-c", check], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("(3, 10) 0.0.20 1."), result.stdout


def test_setup_is_idempotent() -> None:
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "setup.sh")], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "environments ready" in result.stderr
    assert "installing uv" not in result.stderr
