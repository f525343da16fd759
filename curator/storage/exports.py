"""Past exports in the catalogue: where each went, with its settings and content hash."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from curator.storage import Catalog
from curator.storage.sql import dicts, scalar


@dataclass(frozen=True)
class ExportRecord:
    """One finished export, as `curator exports` lists it."""

    path: str
    selection: str | None
    exporter: str
    settings: Mapping[str, Any]
    content_hash: str
    n_segments: int
    n_files: int
    left_out: Sequence[tuple[str, str]] = field(default_factory=tuple)  # (segment, reason)


def record_export(catalog: Catalog, record: ExportRecord) -> int:
    """Store a finished export; returns its id."""
    with catalog.transaction() as con:
        return int(
            scalar(
                con,
                "INSERT INTO exports (path, selection, exporter, settings, content_hash, "
                "n_segments, n_files, left_out) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                [
                    record.path,
                    record.selection,
                    record.exporter,
                    json.dumps(dict(record.settings), sort_keys=True),
                    record.content_hash,
                    record.n_segments,
                    record.n_files,
                    json.dumps([list(pair) for pair in record.left_out]),
                ],
            )
        )


def exports(catalog: Catalog) -> list[dict[str, Any]]:
    """Every export, newest first, with its settings and left-out segments decoded."""
    with catalog.connect() as con:
        rows = dicts(
            con.execute(
                "SELECT id, path, selection, exporter, settings, content_hash, n_segments, "
                "n_files, left_out, created_at FROM exports ORDER BY created_at DESC, id DESC"
            )
        )
    for row in rows:
        row["settings"] = json.loads(row["settings"] or "{}")
        row["left_out"] = [tuple(pair) for pair in json.loads(row["left_out"] or "[]")]
    return rows
