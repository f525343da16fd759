"""The state of a project in numbers: what `curator status` and the app's overview show."""

from __future__ import annotations

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
    }


def _run_line(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "kind", "plugin", "plugin_version", "status", "from_cache", "done", "failed")
    return {key: run[key] for key in keys} | {"started_at": str(run["started_at"])}
