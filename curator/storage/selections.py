"""Named selections (what `curator rebalance` chose) in the catalogue."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from curator.errors import CuratorError
from curator.storage import Catalog
from curator.storage.sql import dicts, insert_columns

SPLITS = ("train", "validation")


@dataclass(frozen=True)
class SelectionItem:
    """One segment of a selection: how often it is repeated and which split it is in."""

    segment_id: str
    repeats: int = 1
    weight: float = 1.0
    split: str = "train"


class UnknownSelection(CuratorError):
    """A command named a selection the catalogue does not hold."""


def save_selection(
    catalog: Catalog,
    name: str,
    method: str,
    items: Sequence[SelectionItem],
    settings: Mapping[str, Any] | None = None,
    report: Mapping[str, Any] | None = None,
) -> None:
    """Store (or replace) the selection `name` with its items, in one transaction."""
    bad = sorted({item.split for item in items} - set(SPLITS))
    if bad:
        raise CuratorError(f"selection {name!r}: unknown split(s) {', '.join(bad)}")
    columns = {
        "selection": np.full(len(items), name, dtype=object),
        "segment_id": np.array([item.segment_id for item in items], dtype=object),
        "repeats": np.array([item.repeats for item in items], dtype=np.int64),
        "weight": np.array([item.weight for item in items], dtype=np.float64),
        "split": np.array([item.split for item in items], dtype=object),
    }
    with catalog.transaction() as con:
        con.execute("DELETE FROM selection_items WHERE selection = ?", [name])
        con.execute("DELETE FROM selections WHERE name = ?", [name])
        con.execute(
            "INSERT INTO selections (name, method, settings, report) VALUES (?, ?, ?, ?)",
            [name, method, json.dumps(settings or {}), json.dumps(report or {})],
        )
        insert_columns(con, "selection_items", columns)


def selections(catalog: Catalog) -> list[dict[str, Any]]:
    """Every selection, newest first, with its segment and repeated-copy counts."""
    with catalog.connect() as con:
        rows = dicts(
            con.execute(
                "SELECT s.name, s.method, s.settings, s.report, s.created_at, "
                "count(i.segment_id) AS segments, coalesce(sum(i.repeats), 0) AS copies "
                "FROM selections s LEFT JOIN selection_items i ON i.selection = s.name "
                "GROUP BY ALL ORDER BY s.created_at DESC, s.name"
            )
        )
    for row in rows:
        row["settings"] = json.loads(row["settings"] or "{}")
        row["report"] = json.loads(row["report"] or "{}")
    return rows


def selection(catalog: Catalog, name: str) -> dict[str, Any]:
    """One selection's record (method, settings, report); UnknownSelection if absent."""
    for row in selections(catalog):
        if row["name"] == name:
            return row
    known = ", ".join(row["name"] for row in selections(catalog)) or "none yet"
    raise UnknownSelection(f"no selection named {name!r} (known: {known})")


def selection_items(catalog: Catalog, name: str) -> list[SelectionItem]:
    """The segments of selection `name`, ordered by segment id."""
    selection(catalog, name)
    with catalog.connect() as con:
        rows = con.execute(
            "SELECT segment_id, repeats, weight, split FROM selection_items "
            "WHERE selection = ? ORDER BY segment_id",
            [name],
        ).fetchall()
    return [SelectionItem(*row) for row in rows]


def delete_selection(catalog: Catalog, name: str) -> None:
    selection(catalog, name)
    with catalog.transaction() as con:
        con.execute("DELETE FROM selection_items WHERE selection = ?", [name])
        con.execute("DELETE FROM selections WHERE name = ?", [name])
