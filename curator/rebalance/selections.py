"""Saved selections: the ones a rebalance wrote, listed, read back and deleted by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from curator.duplicates.units import Leak, read_units
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


def selection_leaks(project: Project, names: Sequence[str] = ()) -> dict[str, list[Leak]]:
    """Per selection (`names`, or every one), the duplicate units it has on both sides of its
    split: a selection made before the duplicates were found, or with them kept apart."""
    units = read_units(project.catalog)
    chosen = list(names) or [row["name"] for row in stored.selections(project.catalog)]
    return {name: units.leaks(stored.selection_items(project.catalog, name)) for name in chosen}
