"""Saved selections: the ones a rebalance wrote, listed, read back and deleted by name."""

from __future__ import annotations

from typing import Any

from curator.project import Project
from curator.storage import selections as stored


def selections(project: Project) -> list[dict[str, Any]]:
    """Every selection, newest first, with its segment and repeated-copy counts."""
    return stored.selections(project.catalog)


def selection(project: Project, name: str) -> dict[str, Any]:
    """One selection's record (method, settings, report); UnknownSelection if absent."""
    return stored.selection(project.catalog, name)


def delete_selection(project: Project, name: str) -> None:
    """Delete selection `name` and its segments; UnknownSelection if absent."""
    stored.delete_selection(project.catalog, name)
