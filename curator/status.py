"""The state of a project in numbers: what `curator status` and the app's overview show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curator.project import Project


def project_status(project: Project) -> dict[str, Any]:
    """Counts by state, usable hours, and each unusable file with its reason."""
    catalog = project.catalog
    counts = catalog.counts()
    return {
        "project": str(project.root),
        **counts,
        "usable_hours": round(catalog.hours(), 4),
        "problems": [{"path": p, "status": s, "reason": r} for p, s, r in catalog.problems()],
        "runs": [_run_line(run) for run in catalog.runs()],
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
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


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
    )
    return {key: run[key] for key in keys} | {"started_at": str(run["started_at"])}
