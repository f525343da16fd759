"""`curator new-plugin`: the generated package installs, is listed, and its tests pass."""

from __future__ import annotations

import json
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def venv_beside_curator(folder: Path) -> Path:
    """A fresh venv that sees this environment's packages (via a .pth), for installing into."""
    uv = REPO / ".tools" / "bin" / "uv"
    subprocess.run(
        [str(uv), "venv", "--quiet", "--python", sys.executable, str(folder)], check=True
    )
    (purelib,) = folder.glob("lib/python*/site-packages")
    # addsitedir (not a bare path) so the editable install's own .pth hooks run too.
    dirs = ", ".join(repr(d) for d in site.getsitepackages())
    (purelib / "curator-env.pth").write_text(
        f"import site; [site.addsitedir(d) for d in ({dirs},)]\n"
    )
    return folder / "bin" / "python"


def test_generated_plugin_installs_and_passes_its_tests(tmp_path: Path, run_cli) -> None:
    run_cli("new-plugin", tmp_path / "trap-snare", "--name", "trap-snare")
    python = venv_beside_curator(tmp_path / "venv")
    uv = REPO / ".tools" / "bin" / "uv"
    subprocess.run(
        [
            str(uv),
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--python",
            str(python),
            str(tmp_path / "trap-snare"),
        ],
        check=True,
        timeout=300,
    )
    listed = subprocess.run(
        [str(python), "-m", "curator.cli", "plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=tmp_path,
    )
    report = {p["name"]: p for p in json.loads(listed.stdout)}
    assert report["trap-snare"]["provides"]["taggers"] == [{"name": "trap-snare", "version": "1"}]
    tests = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(tmp_path / "trap-snare" / "tests"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout


def test_a_bad_name_or_existing_folder_is_refused(tmp_path: Path, run_cli) -> None:
    assert (
        "lower-case" in run_cli("new-plugin", tmp_path / "x", "--name", "Bad Name", expect=1).output
    )
    (tmp_path / "taken").mkdir()
    assert (
        "already exists"
        in run_cli("new-plugin", tmp_path / "taken", "--name", "ok", expect=1).output
    )


@pytest.mark.parametrize("name", ["snare", "trap-808"])
def test_template_names(name: str) -> None:
    from curator.registry.template import template_values

    values = template_values(name)
    assert values["module"].isidentifier() and values["class_name"].isidentifier()
