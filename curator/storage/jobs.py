"""Training and generation jobs in the catalogue: one row per job, its folder holds the rest."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from curator.storage import Catalog
from curator.storage.sql import dicts

ACTIVE = ("queued", "running")
_COLUMNS = "id, kind, status, folder, config, pid, error, created_at, started_at, finished_at"
_CHANGEABLE = frozenset({"status", "pid", "error", "started_at", "finished_at"})


def add_job(
    catalog: Catalog, job_id: str, kind: str, folder: str, config: Mapping[str, Any], pid: int
) -> None:
    """Record a job that was just launched (it waits in the queue until it starts)."""
    with catalog.transaction() as con:
        con.execute(
            "INSERT INTO jobs (id, kind, status, folder, config, pid) "
            "VALUES (?, ?, 'queued', ?, ?, ?)",
            [job_id, kind, folder, json.dumps(dict(config)), pid],
        )


def update_jobs(catalog: Catalog, updates: Mapping[str, Mapping[str, Any]]) -> None:
    """Several jobs' changes in one transaction (refreshing the list after a restart)."""
    updates = {job_id: changes for job_id, changes in updates.items() if changes}
    statements = {job_id: _assignments(changes) for job_id, changes in updates.items()}
    if not updates:
        return
    with catalog.transaction() as con:
        for job_id, changes in updates.items():
            con.execute(
                f"UPDATE jobs SET {statements[job_id]} WHERE id = ?", [*changes.values(), job_id]
            )


def _assignments(changes: Mapping[str, Any]) -> str:
    """`col = ?, ...` for the columns changed; only the columns a job may change are named
    in SQL (their values are parameters), so no caller's key can reach the statement."""
    unknown = set(changes) - _CHANGEABLE
    if unknown:
        raise ValueError(f"jobs have no column(s) {', '.join(sorted(unknown))}")
    return ", ".join(f"{name} = ?" for name in changes)


def list_jobs(catalog: Catalog, kind: str | None = None) -> list[dict[str, Any]]:
    """Every job (of one kind, if given), newest first, config decoded."""
    where, params = ("WHERE kind = ?", [kind]) if kind else ("", [])
    with catalog.connect() as con:
        rows = dicts(
            con.execute(
                f"SELECT {_COLUMNS} FROM jobs {where} ORDER BY created_at DESC, id DESC", params
            )
        )
    for row in rows:
        row["config"] = json.loads(row["config"] or "{}")
    return rows


def job_ids(catalog: Catalog) -> list[str]:
    with catalog.connect() as con:
        return [row[0] for row in con.execute("SELECT id FROM jobs ORDER BY id").fetchall()]


def now() -> datetime:
    """Naive local time, as the catalogue's current_timestamp defaults store it."""
    return datetime.now()
