"""The state of a project in numbers: what `curator status` and the app's overview show."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from curator.project import Project
from curator.tagging import shards
from curator.tagging.runs import run_state


def project_status(project: Project) -> dict[str, Any]:
    """Counts by state, usable hours, each unusable file with its reason, the runs (a run
    whose process is gone shows as interrupted) and the shards set aside as unmergeable."""
    catalog = project.catalog
    counts = catalog.counts()
    return {
        "project": str(project.root),
        **counts,
        "usable_hours": round(catalog.hours(), 4),
        "problems": [{"path": p, "status": s, "reason": r} for p, s, r in catalog.problems()],
        "runs": run_lines(project),
        "quarantined_shards": shards.quarantined(project.runs_dir),
        "disk_bytes": disk_usage(project),
    }


def disk_usage(project: Project) -> dict[str, int]:
    """Bytes used by the catalogue, run shards, plugin caches, and the audio it indexes."""
    return {
        "catalogue": _size(project.root / "catalog.duckdb")
        + _size(project.root / "catalog.duckdb.wal"),
        "runs": _size(project.runs_dir),
        "cache": _size(project.root / "cache"),
        "audio": project.catalog.audio_bytes(),
    }


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(_file_size(p) for p in path.rglob("*")) if path.is_dir() else 0


def _file_size(path: Path) -> int:
    # A run may delete a merged shard while it is being counted.
    try:
        return path.stat().st_size if path.is_file() else 0
    except FileNotFoundError:
        return 0


def run_lines(project: Project) -> list[dict[str, Any]]:
    """Every run as `curator status` and the app show it."""
    return [_run_line(run) for run in project.catalog.runs()]


def run_progress(run: dict[str, Any], now: datetime | None = None) -> dict[str, Any] | None:
    """How far a run is: segments done (and failed) of its total, this process's rate in
    segments per second since it (re)started, and the seconds left at that rate (None
    where not known yet). None for a run that never recorded its total."""
    if run.get("total") is None:
        return None
    done = run["progress_done"] if run.get("progress_done") is not None else run["done"]
    done = min(int(done) + int(run.get("failed") or 0), int(run["total"]))
    rate = eta = None
    since = run.get("resumed_at")
    elapsed = ((now or datetime.now()) - since).total_seconds() if since else 0.0
    worked = done - int(run.get("done_before") or 0)
    if elapsed > 0 and worked > 0:
        rate = worked / elapsed
        eta = (int(run["total"]) - done) / rate
    return {"done": done, "total": int(run["total"]), "rate": rate, "eta_seconds": eta}


def _run_line(run: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "kind",
        "plugin",
        "plugin_version",
        "status",
        "from_cache",
        "done",
        "failed",
        "settings",
        "host",
        "pid",
    )
    # The status shown is what the run is now, not what it last managed to record.
    return {key: run[key] for key in keys} | {
        "status": run_state(run),
        "started_at": str(run["started_at"]),
        "progress": run_progress(run),
    }
