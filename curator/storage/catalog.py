"""The catalogue file: open-per-operation connections with lock retry, and migrations."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

from curator.errors import CatalogBusy, CuratorError

_MIGRATION_NAME = re.compile(r"^(\d{3})_[\w-]+\.sql$")
CORE_SCOPE = "curator"  # the core schema's migrations; each plugin's are under its own scope


_migrated: set[Path] = set()


@dataclass(frozen=True)
class Migration:
    """One step of a schema, run once per catalogue and recorded under (scope, number).

    scope: whose schema it is: "curator" for the core's, a plugin's name for a plugin's.
    number: its place in that scope's order, from 1. name: how reports name it.
    sql: the statements, run in one transaction with the record of it.
    """

    scope: str
    number: int
    name: str
    sql: str


class MigrationFailed(CuratorError):
    """A migration's SQL failed; it was rolled back, so nothing of it was applied."""


def builtin_migrations() -> list[Migration]:
    """The core schema's migrations, in order, from `curator/db/migrations`."""
    folder = resources.files("curator.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(CORE_SCOPE, int(match[1]), entry.name, entry.read_text()))
    return sorted(found, key=lambda m: m.number)


def _is_lock_conflict(exc: Exception) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def _run_migration(con: Any, migration: Migration) -> None:
    """Apply one migration and record it, all or nothing."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(migration.sql)
        con.execute(
            "INSERT INTO schema_migrations (scope, number, name) VALUES (?, ?, ?)",
            [migration.scope, migration.number, migration.name],
        )
    except BaseException as exc:
        con.execute("ROLLBACK")
        if isinstance(exc, duckdb.Error):
            # A plugin's SQL is the usual culprit: say whose, in one line.
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise MigrationFailed(
                f"{migration.scope} migration {migration.name} failed and was rolled back: "
                f"{first_line}"
            ) from exc
        raise
    con.execute("COMMIT")


class CatalogBase:
    """A catalogue file: every call opens, works and closes (DESIGN.md decision 2)."""

    def __init__(self, path: Path, lock_timeout: float = 120.0) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the file (waiting while another process holds it), yield, close."""
        con = self._open_with_retry()
        try:
            if self.path not in _migrated:
                self._apply_migrations(con, builtin_migrations())
                _migrated.add(self.path)
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open, BEGIN, yield, COMMIT; anything raised rolls the whole block back."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def _open_with_retry(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.005
        while True:
            try:
                return duckdb.connect(str(self.path))
            except duckdb.Error as exc:
                if not _is_lock_conflict(exc) or time.monotonic() >= deadline:
                    if _is_lock_conflict(exc):
                        raise CatalogBusy(
                            f"{self.path}: another process kept the catalogue busy for "
                            f"{self.lock_timeout:.0f} s ({exc}); nothing was lost, try again"
                        ) from exc
                    raise
            # Short, jittered waits: a writer that reopens after every batch leaves only
            # brief gaps, and a waiter that backs off for long would never get in.
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.05)

    def migrate(self, migrations: Sequence[Migration] | None = None) -> list[str]:
        """Apply the migrations not yet recorded (None: the core's); returns the names
        applied now. Plugins' migrations come through here before their plugin runs."""
        with self.connect() as con:
            return self._apply_migrations(
                con, builtin_migrations() if migrations is None else migrations
            )

    def _apply_migrations(self, con: Any, migrations: Sequence[Migration]) -> list[str]:
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (scope VARCHAR, number INTEGER, "
            "name VARCHAR NOT NULL, applied_at TIMESTAMP DEFAULT current_timestamp, "
            "PRIMARY KEY (scope, number))"
        )
        done = set(con.execute("SELECT scope, number FROM schema_migrations").fetchall())
        applied = []
        for migration in migrations:
            if (migration.scope, migration.number) in done:
                continue
            _run_migration(con, migration)
            applied.append(migration.name)
        return applied

    def applied_migrations(self) -> list[tuple[str, int, str]]:
        with self.connect() as con:
            return con.execute(
                "SELECT scope, number, name FROM schema_migrations ORDER BY scope, number"
            ).fetchall()
