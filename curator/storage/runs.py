"""Tagger and analyzer runs: records, pending segments, shard merges, scores, embeddings."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from curator.storage.catalog import CatalogBase
from curator.storage.sql import (
    USABLE,
    dicts,
    ids_and_matrix,
    register_columns,
    register_segments,
    scalar,
)


@dataclass(frozen=True)
class RunRecord:
    kind: str
    plugin: str
    plugin_version: str
    settings: dict[str, Any]
    settings_hash: str
    vocabulary_hash: str | None
    tags: list[tuple[str, str]]
    from_cache: bool
    host: str
    pid: int = field(default_factory=os.getpid)  # the process running it, on `host`


# What merging a shard's table first deletes, so that merging it twice changes nothing.
# `_segments` holds the shard's segment ids; the parameters are the run id and plugin name.
_IN_SHARD = "segment_id IN (SELECT segment_id FROM _segments)"


_MERGE_DELETES = {
    "items": f"DELETE FROM run_items WHERE run_id = $run AND {_IN_SHARD}",
    "scores": f"DELETE FROM scores WHERE run_id = $run AND {_IN_SHARD}",
    "measurements": f"DELETE FROM measurements WHERE run_id = $run AND {_IN_SHARD}",
    "embeddings": f"DELETE FROM embeddings WHERE {_IN_SHARD} "
    "AND model IN (SELECT model FROM _shard)",
    # A plugin's new labels replace all its earlier ones (any version) for these segments;
    # other plugins' labels and people's are never touched.
    "labels": f"DELETE FROM labels WHERE source_kind = 'model' AND {_IN_SHARD} "
    "AND split_part(source, '@', 1) = $plugin",
}


_MERGE_TARGETS = {"items": "run_items"}


def _merge_table(
    con: Any,
    source: str,
    table: str,
    run_id: int,
    plugin: str,
    params: Mapping[str, Any] | None = None,
) -> None:
    # A table, not a view: a view cannot take the parameters (the shard's path) `source` needs.
    con.execute(f"CREATE OR REPLACE TEMP TABLE _shard AS {source}", params or {})
    delete = _MERGE_DELETES[table]
    params = {k: v for k, v in (("run", run_id), ("plugin", plugin)) if f"${k}" in delete}
    con.execute(delete, params)
    con.execute(f"INSERT INTO {_MERGE_TARGETS.get(table, table)} BY NAME SELECT * FROM _shard")


def write_parquet(path: Path, columns: Mapping[str, Any]) -> bool:
    """Write columns (1-D arrays, or 2-D for list columns) to Parquet without a catalogue.

    An in-memory DuckDB does the writing, so workers need neither the catalogue file nor
    pandas.
    """
    con = duckdb.connect(":memory:")
    try:
        source = register_columns(con, "_columns", columns)
        con.execute(f"COPY ({source}) TO $path (FORMAT parquet)", {"path": str(path)})
    finally:
        con.close()
    return True


class RunStore(CatalogBase):
    """Catalog methods for this area (combined into `Catalog`)."""

    def start_run(self, run: RunRecord) -> int:
        with self.connect() as con:
            return int(
                scalar(
                    con,
                    "INSERT INTO runs (kind, plugin, plugin_version, settings, settings_hash, "
                    "vocabulary_hash, tags, from_cache, status, host, pid) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?) RETURNING id",
                    [
                        run.kind,
                        run.plugin,
                        run.plugin_version,
                        json.dumps(run.settings),
                        run.settings_hash,
                        run.vocabulary_hash,
                        json.dumps(run.tags),
                        run.from_cache,
                        run.host,
                        run.pid,
                    ],
                )
            )

    def start_progress(self, run_id: int, pending: int) -> None:
        """A run (re)starts with `pending` segments to do: record its total (those it has
        done already plus these) and where its rate starts counting, for Home's progress."""
        with self.connect() as con:
            con.execute(
                "UPDATE runs SET done_before = d.done, total = d.done + $pending, "
                "resumed_at = current_timestamp::TIMESTAMP, progress_done = NULL FROM (SELECT "
                "count(*) FILTER (WHERE status = 'done') AS done FROM run_items "
                "WHERE run_id = $run) d WHERE id = $run",
                {"run": run_id, "pending": pending},
            )

    def record_progress(self, run_id: int, done: int) -> None:
        """How many segments a run without items (an export) has done so far."""
        with self.connect() as con:
            con.execute("UPDATE runs SET progress_done = ? WHERE id = ?", [done, run_id])

    def unfinished_runs(self, settings_hash: str | None = None) -> list[dict[str, Any]]:
        """Runs recorded as running or interrupted (of these settings, if given), newest first,
        with the host and process that ran them."""
        with self.connect() as con:
            return dicts(
                con.execute(
                    "SELECT id, kind, plugin, status, host, pid FROM runs WHERE status IN "
                    "('running', 'interrupted') AND ($hash IS NULL OR settings_hash = $hash) "
                    "ORDER BY id DESC",
                    {"hash": settings_hash},
                )
            )

    def claim_run(self, run_id: int, host: str, pid: int) -> None:
        """Resume an unfinished run in the process `pid` on `host`."""
        with self.connect() as con:
            con.execute(
                "UPDATE runs SET status = 'running', error = NULL, finished_at = NULL, "
                "host = ?, pid = ? WHERE id = ?",
                [host, pid, run_id],
            )

    def mark_runs_interrupted(self, run_ids: Sequence[int]) -> None:
        """Runs still recorded as running whose process is gone."""
        if not run_ids:
            return
        with self.connect() as con:
            con.execute(
                "UPDATE runs SET status = 'interrupted', finished_at = now() "
                "WHERE status = 'running' AND list_contains(?, id)",
                [list(run_ids)],
            )

    def set_run_status(
        self, run_id: int, status: str, error: str | None = None, host: str | None = None
    ) -> None:
        finished = "now()" if status in ("finished", "failed", "interrupted") else "NULL"
        with self.connect() as con:
            con.execute(
                f"UPDATE runs SET status = ?, error = ?, host = coalesce(?, host), "
                f"finished_at = {finished} WHERE id = ?",
                [status, error, host, run_id],
            )

    def runs(self) -> list[dict[str, Any]]:
        """Every run with its settings and how many segments it did and failed."""
        with self.connect() as con:
            cursor = con.execute(
                "SELECT r.id, r.kind, r.plugin, r.plugin_version, r.settings, r.status, "
                "r.from_cache, r.started_at, r.finished_at, r.error, r.host, r.pid, r.total, "
                "r.done_before, r.resumed_at, r.progress_done, "
                "count(i.segment_id) FILTER (WHERE i.status = 'done') AS done, "
                "count(i.segment_id) FILTER (WHERE i.status = 'failed') AS failed "
                "FROM runs r LEFT JOIN run_items i ON i.run_id = r.id GROUP BY ALL ORDER BY r.id"
            )
            return dicts(cursor)

    def run_tags(self, run_id: int) -> list[tuple[str, str]]:
        with self.connect() as con:
            return [
                tuple(t)
                for t in json.loads(
                    scalar(con, "SELECT tags FROM runs WHERE id = ?", [run_id]) or "[]"
                )
            ]

    def pending_segments(
        self, settings_hash: str, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Usable segments no run with these settings has done yet, by id."""
        with self.connect() as con:
            cursor = con.execute(
                "SELECT s.id, t.path AS source, s.start, s.duration FROM segments s "
                f"JOIN tracks t ON t.id = s.track_id WHERE {USABLE} AND s.id NOT IN ("
                " SELECT i.segment_id FROM run_items i JOIN runs r ON r.id = i.run_id "
                " WHERE r.settings_hash = ? AND i.status = 'done') ORDER BY s.id LIMIT ?",
                [settings_hash, limit],  # LIMIT NULL: no limit
            )
            return dicts(cursor)

    def run_failures(self, run_id: int) -> list[tuple[str, str]]:
        with self.connect() as con:
            return con.execute(
                "SELECT segment_id, reason FROM run_items WHERE run_id = ? "
                "AND status = 'failed' ORDER BY segment_id",
                [run_id],
            ).fetchall()

    def merge_shard(
        self,
        folder: Path,
        run_id: int,
        plugin: str,
        tables: Sequence[str],
        segment_ids: Sequence[str],
    ) -> None:
        """Merge one shard in one transaction; merging the same shard twice changes nothing."""
        with self.transaction() as con:
            register_segments(con, segment_ids)
            for table in tables:
                source = "SELECT * FROM read_parquet($path)"
                path = str(folder / f"{table}.parquet")
                _merge_table(con, source, table, run_id, plugin, {"path": path})

    def merge_columns(
        self,
        run_id: int,
        plugin: str,
        tables: Mapping[str, Mapping[str, Any]],
        segment_ids: Sequence[str],
    ) -> None:
        """Merge results held in memory (as a shard's tables) in one transaction.

        For work done by the merging process itself, such as re-tagging from cached
        embeddings, where a detour through Parquet files would only cost time.
        """
        with self.transaction() as con:
            register_segments(con, segment_ids)
            for table, columns in tables.items():
                _merge_table(
                    con, register_columns(con, f"_{table}", columns), table, run_id, plugin
                )

    def embeddings(self, model: str) -> tuple[list[str], np.ndarray]:
        """Segment ids and their cached embeddings (one row each) for `model`."""
        rows = (
            "SELECT e.segment_id, e.vector FROM embeddings e JOIN segments s "
            "ON s.id = e.segment_id WHERE e.model = ? ORDER BY e.segment_id"
        )
        with self.connect() as con:
            return ids_and_matrix(con, rows, "vector", [model])

    def scores(self, run_id: int) -> tuple[list[str], np.ndarray]:
        """Segment ids and their scores in a run, one row each, columns in the run's tag order.

        NaN where the tagger gave a tag no score.
        """
        rows = "SELECT segment_id, scores FROM scores WHERE run_id = ? ORDER BY segment_id"
        with self.connect() as con:
            return ids_and_matrix(con, rows, "scores", [run_id])

    def measurements(self, run_id: int) -> list[dict[str, Any]]:
        with self.connect() as con:
            return dicts(
                con.execute(
                    "SELECT segment_id, name, value, text, confidence FROM measurements "
                    "WHERE run_id = ? ORDER BY segment_id, name",
                    [run_id],
                )
            )
