"""The catalogue: migrations applied once, and waiting (not failing) on another's lock."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from curator.errors import CatalogBusy
from curator.project import Project, init_project
from curator.storage import Catalog, Migration, builtin_migrations

HOLD_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def hold_catalog(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that keeps the catalogue open, as a long tagging write would."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout and process.stdout.readline().strip() == "holding"
    return process


def test_migrations_are_numbered_and_applied_once(project: Project) -> None:
    names = [m.name for m in builtin_migrations()]
    assert names == sorted(names) and names[0].startswith("001_")
    recorded = project.catalog.applied_migrations()
    assert [name for _, _, name in recorded] == names
    assert project.catalog.migrate() == []
    init_project(project.root)  # init again: settings kept, nothing re-applied
    assert project.catalog.applied_migrations() == recorded


def test_a_plugin_can_own_migrations(project: Project) -> None:
    extra = [
        Migration("my-plugin", 1, "001_notes.sql", "CREATE TABLE my_notes (x INTEGER);"),
        Migration("my-plugin", 2, "002_more.sql", "ALTER TABLE my_notes ADD COLUMN y INTEGER;"),
    ]
    assert project.catalog.migrate(extra) == ["001_notes.sql", "002_more.sql"]
    assert project.catalog.migrate(extra) == []
    scopes = {scope for scope, _, _ in project.catalog.applied_migrations()}
    assert scopes == {"curator", "my-plugin"}


def test_a_failing_migration_leaves_nothing_half_done(project: Project) -> None:
    broken = [Migration("broken", 1, "001_bad.sql", "CREATE TABLE half (x INTEGER); SELEC oops;")]
    with pytest.raises(Exception, match="syntax error"):
        project.catalog.migrate(broken)
    assert all(scope != "broken" for scope, _, _ in project.catalog.applied_migrations())
    fixed = [Migration("broken", 1, "001_bad.sql", "CREATE TABLE half (x INTEGER);")]
    assert project.catalog.migrate(fixed) == ["001_bad.sql"]


def test_a_locked_catalogue_is_waited_for(project: Project) -> None:
    holder = hold_catalog(project.catalog.path, 1.5)
    started = time.monotonic()
    counts = project.catalog.counts()  # waits for the other process instead of failing
    waited = time.monotonic() - started
    holder.wait(timeout=30)
    assert counts["tracks"] == {}
    assert waited > 0.5, "the call really had to wait for the lock"


def test_a_catalogue_locked_too_long_says_so(project: Project) -> None:
    holder = hold_catalog(project.catalog.path, 5)
    try:
        impatient = Catalog(project.catalog.path, lock_timeout=0.5)
        with pytest.raises(CatalogBusy, match="nothing was lost, try again"):
            impatient.counts()
    finally:
        holder.kill()
        holder.wait()
