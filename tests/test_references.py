"""Paths the code, tests and docs point a reader to exist: a stale pointer sends the next
engineer looking for a file that was renamed or never written."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# tests/..., bench/..., docs/..., scripts/... named in prose, e.g. "tests/test_training.py".
POINTER = re.compile(r"\b((?:tests|bench|docs|scripts|examples)/[\w./-]+\.(?:py|md|sh))\b")
READ = ["README.md", "docs", "tests", "bench", "curator", "app", "plugins", "training"]


def _texts() -> list[Path]:
    found = []
    for name in READ:
        path = ROOT / name
        found += (
            [path] if path.is_file() else sorted(path.rglob("*.py")) + sorted(path.rglob("*.md"))
        )
    return found


def test_every_named_repository_file_exists() -> None:
    missing = []
    for text in _texts():
        if text == Path(__file__).resolve():
            continue  # its own example is a stale name on purpose
        for match in POINTER.finditer(text.read_text(encoding="utf-8")):
            if not (ROOT / match[1]).exists():
                missing.append(f"{text.relative_to(ROOT)} names {match[1]}")
    assert missing == []


def test_the_pointer_pattern_catches_a_stale_name(tmp_path: Path) -> None:
    text = "tests/test_jobs_train.py runs the real training code; see docs/review.md."
    assert [m[1] for m in POINTER.finditer(text)] == ["tests/test_jobs_train.py", "docs/review.md"]


def test_every_variable_the_demo_reads_is_in_the_readme_with_its_default() -> None:
    script = (ROOT / "scripts" / "demo.sh").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    read = dict(re.findall(r"\$\{(\w+):-([^}]+)\}", script))
    assert set(read) >= {"DEMO_DIR", "DEMO_BEATS", "PORT"}
    for name, default in read.items():
        assert re.search(rf"`{name}`[^.;]*default\s+{re.escape(default)}\b", readme), name
