"""The catalogue: the one package that talks to DuckDB. No other package imports duckdb.

DuckDB lets one process at a time open the file (DESIGN.md decision 2), so a Catalog never
keeps it open: every call opens, works and closes, and an open refused because another
process holds the file is retried with backoff until `lock_timeout` runs out.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from curator.errors import CatalogBusy, CuratorError

_MIGRATION_NAME = re.compile(r"^(\d{3})_[\w-]+\.sql$")
_migrated: set[Path] = set()
_ROWS_PER_STATEMENT = 256

# A segment goes into training when its track is present and it is neither silent nor
# excluded by a curator (s = segments, t = tracks).
_USABLE = "t.status = 'ingested' AND NOT s.silent AND NOT s.excluded"
_USABLE_IDS = f"SELECT s.id FROM segments s JOIN tracks t ON t.id = s.track_id WHERE {_USABLE}"


def _effective_labels_sql(where: str = "true") -> str:
    """Human over model: one row per (segment, facet, tag) with a label matching `where`.

    The filter goes into both branches so that a query about one facet reads only it.
    """
    return f"""
WITH human AS (
    SELECT segment_id, facet, tag, present, value, 'human' AS source_kind
    FROM labels WHERE source_kind = 'human' AND {where}),
model AS (
    SELECT segment_id, facet, tag, bool_or(present) AS present,
           arg_max(value, coalesce(score, 0)) AS value, 'model' AS source_kind
    FROM labels WHERE source_kind = 'model' AND {where} GROUP BY segment_id, facet, tag)
SELECT * FROM (
    SELECT * FROM human
    UNION ALL
    SELECT m.* FROM model m ANTI JOIN human h USING (segment_id, facet, tag))
"""


_EFFECTIVE_LABELS = _effective_labels_sql()

# Which of a segment's stored prompts training uses: a curator's edit, else the newest.
PROMPT_IN_USE_ORDER = "(source_kind = 'human', created_at)"


@dataclass(frozen=True)
class Migration:
    scope: str
    number: int
    name: str
    sql: str


@dataclass(frozen=True)
class FileRecord:
    path: str
    size: int | None
    mtime_ns: int | None
    track_id: str | None
    status: str
    reason: str | None


@dataclass(frozen=True)
class TrackRecord:
    id: str
    content_hash: str
    path: str
    duration: float
    sample_rate: int
    channels: int
    format: str
    subtype: str
    status: str
    reason: str | None


@dataclass(frozen=True)
class SegmentRecord:
    id: str
    track_id: str
    idx: int
    start: float
    duration: float
    rms_db: float
    peak_db: float
    silent: bool


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


@dataclass(frozen=True)
class ReviewQuery:
    """A review filter in storage terms (see curator.review.ReviewFilter)."""

    facet: str | None = None
    tag: str | None = None
    source: str | None = None
    score_min: float | None = None
    score_max: float | None = None
    threshold: float | None = None  # set: order by closeness of the score to it
    state: str | None = "usable"
    confidence_below: float | None = None  # latest tempo or key confidence under this


@dataclass(frozen=True)
class HumanLabel:
    """A person's decision on one tag (present or rejected) or value (tempo, key, scale)."""

    segment_id: str
    facet: str
    tag: str
    present: bool = True
    value: str | None = None


@dataclass(frozen=True)
class KnownFile:
    size: int | None
    mtime_ns: int | None
    status: str
    track_id: str | None


@dataclass(frozen=True)
class KnownTrack:
    id: str
    path: str
    status: str


def builtin_migrations() -> list[Migration]:
    """The core schema's migrations, in order, from `curator/db/migrations`."""
    folder = resources.files("curator.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration("curator", int(match[1]), entry.name, entry.read_text()))
    return sorted(found, key=lambda m: m.number)


def _is_lock_conflict(exc: Exception) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


class Catalog:
    """A project's catalogue file; each method holds the file only while it runs."""

    def __init__(self, path: Path, lock_timeout: float = 120.0) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout

    # -- opening and schema ------------------------------------------------------------

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
        """Apply the migrations not yet recorded; returns the names applied now."""
        with self.connect() as con:
            return self._apply_migrations(con, migrations or builtin_migrations())

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

    # -- ingest --------------------------------------------------------------------------

    def known_files(self) -> dict[str, KnownFile]:
        with self.connect() as con:
            rows = con.execute(
                "SELECT path, size, mtime_ns, status, track_id FROM files"
            ).fetchall()
        return {
            path: KnownFile(size, mtime, status, track) for path, size, mtime, status, track in rows
        }

    def known_tracks(self) -> dict[str, KnownTrack]:
        """Tracks by content hash."""
        with self.connect() as con:
            rows = con.execute("SELECT content_hash, id, path, status FROM tracks").fetchall()
        return {digest: KnownTrack(tid, path, status) for digest, tid, path, status in rows}

    def save_ingest_batch(
        self,
        files: Sequence[FileRecord],
        tracks: Sequence[TrackRecord],
        segments: Sequence[SegmentRecord],
        revived: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Write one batch of ingest results in a single transaction.

        A re-run after an interruption may send rows that already exist: tracks and
        segments are keyed by content, so those are left as they are (no duplicates).
        `revived` holds (track id, new path) for missing tracks found again elsewhere.
        """
        with self.transaction() as con:
            _insert(con, "tracks", [asdict(t) for t in tracks], "ON CONFLICT DO NOTHING")
            _insert(con, "segments", [asdict(s) for s in segments], "ON CONFLICT DO NOTHING")
            _insert(
                con,
                "files",
                [asdict(f) for f in files],
                "ON CONFLICT (path) DO UPDATE SET size = excluded.size, "
                "mtime_ns = excluded.mtime_ns, track_id = excluded.track_id, "
                "status = excluded.status, reason = excluded.reason, "
                "seen_at = now()",
            )
            for track_id, path in revived:
                con.execute(
                    "UPDATE tracks SET status = 'ingested', reason = NULL, path = ?, "
                    "updated_at = current_timestamp WHERE id = ?",
                    [path, track_id],
                )

    def mark_files_missing(self, paths: Sequence[str]) -> None:
        """Files that vanished since the last scan; their tracks follow if no copy is left."""
        with self.transaction() as con:
            _insert_temp(con, "gone", [{"path": p} for p in paths])
            con.execute(
                "UPDATE files SET status = 'missing', reason = 'file no longer exists', "
                "seen_at = now() WHERE path IN (SELECT path FROM gone)"
            )
            self._refresh_track_status(con)

    def _refresh_track_status(self, con: Any) -> None:
        # A track is missing when none of the files holding its audio is still there; its
        # segments and labels are kept so that moving the file back restores everything.
        con.execute(
            "UPDATE tracks SET status = 'missing', updated_at = current_timestamp, "
            "reason = 'no file with this audio is left (last seen at ' || path || ')' "
            "WHERE status = 'ingested' AND id NOT IN (SELECT track_id FROM files "
            "WHERE track_id IS NOT NULL AND status IN ('ingested', 'duplicate'))"
        )
        con.execute(
            "UPDATE tracks SET path = f.path, updated_at = current_timestamp FROM "
            "(SELECT track_id, min(path) AS path FROM files WHERE status IN "
            "('ingested', 'duplicate') AND track_id IS NOT NULL GROUP BY track_id) f "
            "WHERE tracks.id = f.track_id AND tracks.status = 'ingested' "
            "AND tracks.path NOT IN (SELECT path FROM files WHERE status IN "
            "('ingested', 'duplicate'))"
        )

    def refresh_track_status(self) -> None:
        with self.transaction() as con:
            self._refresh_track_status(con)

    # -- reading -------------------------------------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        """Counts by state: files, tracks, segments (ok, silent, excluded)."""
        with self.connect() as con:
            files = dict(con.execute("SELECT status, count(*) FROM files GROUP BY ALL").fetchall())
            tracks = dict(
                con.execute("SELECT status, count(*) FROM tracks GROUP BY ALL").fetchall()
            )
            segments = dict(
                con.execute(
                    "SELECT CASE WHEN t.status <> 'ingested' THEN 'track missing' "
                    "WHEN s.excluded THEN 'excluded' WHEN s.silent THEN 'silent' "
                    "ELSE 'usable' END, "
                    "count(*) FROM segments s JOIN tracks t ON t.id = s.track_id GROUP BY ALL"
                ).fetchall()
            )
        return {"files": files, "tracks": tracks, "segments": segments}

    def hours(self) -> float:
        """Hours of usable segment audio."""
        with self.connect() as con:
            return float(
                _scalar(
                    con,
                    "SELECT coalesce(sum(s.duration), 0) / 3600 FROM segments s JOIN tracks t "
                    f"ON t.id = s.track_id WHERE {_USABLE}",
                )
            )

    def audio_bytes(self) -> int:
        """Size of the audio files the catalogue holds (each distinct file once)."""
        with self.connect() as con:
            return int(
                _scalar(con, "SELECT coalesce(sum(size), 0) FROM files WHERE status = 'ingested'")
            )

    def problems(self) -> list[tuple[str, str, str]]:
        """(path, status, reason) of every file that was skipped, failed or went missing."""
        with self.connect() as con:
            return con.execute(
                "SELECT path, status, reason FROM files WHERE status IN "
                "('skipped', 'failed', 'missing') ORDER BY status, path"
            ).fetchall()

    def file_rows(self) -> list[tuple[str, str, str | None]]:
        """(path, status, reason) of every file ever scanned, by path."""
        with self.connect() as con:
            return con.execute("SELECT path, status, reason FROM files ORDER BY path").fetchall()

    def segment_rows(self, include_unusable: bool = False) -> list[dict[str, Any]]:
        """Segments with their track's path and audio properties, ordered by id."""
        where = "" if include_unusable else f"WHERE {_USABLE}"
        with self.connect() as con:
            cursor = con.execute(
                "SELECT s.id, s.track_id, t.path AS source, s.idx, s.start, s.duration, "
                "s.rms_db, s.silent, s.excluded, t.duration AS track_duration, "
                "t.sample_rate, t.channels, t.format "
                f"FROM segments s JOIN tracks t ON t.id = s.track_id {where} ORDER BY s.id"
            )
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def effective_labels(self) -> list[tuple[str, str, str, bool, str | None, str]]:
        """(segment, facet, tag, present, value, source kind), a person's label winning.

        Without a human label, a tag is present when any model says so, and a value
        (tempo, key, scale) is the one given with the highest score.
        """
        with self.connect() as con:
            return con.execute(_EFFECTIVE_LABELS + " ORDER BY segment_id, facet, tag").fetchall()

    # -- runs ------------------------------------------------------------------------------

    def start_run(self, run: RunRecord) -> int:
        with self.connect() as con:
            return int(
                _scalar(
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

    def unfinished_runs(self, settings_hash: str | None = None) -> list[dict[str, Any]]:
        """Runs recorded as running or interrupted (of these settings, if given), newest first,
        with the host and process that ran them."""
        with self.connect() as con:
            return _dicts(
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
                "r.from_cache, r.started_at, r.finished_at, r.error, r.host, r.pid, "
                "count(i.segment_id) FILTER (WHERE i.status = 'done') AS done, "
                "count(i.segment_id) FILTER (WHERE i.status = 'failed') AS failed "
                "FROM runs r LEFT JOIN run_items i ON i.run_id = r.id GROUP BY ALL ORDER BY r.id"
            )
            return _dicts(cursor)

    def run_tags(self, run_id: int) -> list[tuple[str, str]]:
        with self.connect() as con:
            return [
                tuple(t)
                for t in json.loads(
                    _scalar(con, "SELECT tags FROM runs WHERE id = ?", [run_id]) or "[]"
                )
            ]

    def pending_segments(
        self, settings_hash: str, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Usable segments no run with these settings has done yet, by id."""
        with self.connect() as con:
            cursor = con.execute(
                "SELECT s.id, t.path AS source, s.start, s.duration FROM segments s "
                f"JOIN tracks t ON t.id = s.track_id WHERE {_USABLE} AND s.id NOT IN ("
                " SELECT i.segment_id FROM run_items i JOIN runs r ON r.id = i.run_id "
                " WHERE r.settings_hash = ? AND i.status = 'done') ORDER BY s.id LIMIT ?",
                [settings_hash, limit],  # LIMIT NULL: no limit
            )
            return _dicts(cursor)

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
            _register_segments(con, segment_ids)
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
            _register_segments(con, segment_ids)
            for table, columns in tables.items():
                _merge_table(
                    con, _register_columns(con, f"_{table}", columns), table, run_id, plugin
                )

    def embeddings(self, model: str) -> tuple[list[str], np.ndarray]:
        """Segment ids and their cached embeddings (one row each) for `model`."""
        rows = (
            "SELECT e.segment_id, e.vector FROM embeddings e JOIN segments s "
            "ON s.id = e.segment_id WHERE e.model = ? ORDER BY e.segment_id"
        )
        with self.connect() as con:
            return _ids_and_matrix(con, rows, "vector", [model])

    def scores(self, run_id: int) -> tuple[list[str], np.ndarray]:
        """Segment ids and their scores in a run, one row each, columns in the run's tag order.

        NaN where the tagger gave a tag no score.
        """
        rows = "SELECT segment_id, scores FROM scores WHERE run_id = ? ORDER BY segment_id"
        with self.connect() as con:
            return _ids_and_matrix(con, rows, "scores", [run_id])

    def measurements(self, run_id: int) -> list[dict[str, Any]]:
        with self.connect() as con:
            return _dicts(
                con.execute(
                    "SELECT segment_id, name, value, text, confidence FROM measurements "
                    "WHERE run_id = ? ORDER BY segment_id, name",
                    [run_id],
                )
            )

    def labels(self, segment_id: str | None = None) -> list[dict[str, Any]]:
        """Every label row (all sources), for one segment or all."""
        where, params = ("WHERE segment_id = ?", [segment_id]) if segment_id else ("", [])
        with self.connect() as con:
            return _dicts(
                con.execute(
                    "SELECT segment_id, facet, tag, source, source_kind, present, value, run_id, "
                    f"score, actor FROM labels {where} ORDER BY segment_id, facet, tag, source",
                    params,
                )
            )

    # -- human decisions --------------------------------------------------------------------

    def apply_human_labels(
        self, changes: Sequence[HumanLabel], actor: str, batch_id: str, action: str = "set"
    ) -> int:
        """Record people's labels (they win over models') and append each to the history.

        All changes land in one transaction under one batch id, so a bulk change can be
        undone as one. A change that restates the current label is skipped. Returns how
        many labels changed.
        """
        with self.transaction() as con:
            _register_changes(con, changes)
            return _apply_changes(con, actor, batch_id, action)

    def save_review(
        self,
        segment_id: str,
        changes: Sequence[HumanLabel],
        actor: str,
        batch_id: str,
        note: str | None = None,
        excluded: bool | None = None,
    ) -> int:
        """One segment's review: its labels, note and exclusion, in one transaction.

        Either all of it is recorded or none (a failure midway leaves the segment as it
        was). Returns how many labels and flags changed.
        """
        with self.transaction() as con:
            _register_changes(con, changes)
            changed = _apply_changes(con, actor, batch_id, "review")
            return changed + _set_flags(con, segment_id, actor, batch_id, note, excluded)

    def bulk_relabel(
        self,
        query: ReviewQuery,
        action: str,
        facet: str,
        tag: str,
        new_tag: str | None,
        actor: str,
        batch_id: str,
    ) -> int:
        """Add, remove or rename a tag on every segment `query` matches, in one transaction."""
        with self.transaction() as con:
            sql, params = _review_sql(query)
            con.execute(f"CREATE OR REPLACE TEMP TABLE _matched AS SELECT id FROM ({sql})", params)
            sql = _BULK_CHANGES[action]
            values = {"facet": facet, "tag": tag, "new_tag": new_tag or ""}
            con.execute(sql, {k: v for k, v in values.items() if f"${k}" in sql})
            return _apply_changes(con, actor, batch_id, action)

    def set_segment_flags(
        self,
        segment_id: str,
        actor: str,
        batch_id: str,
        note: str | None = None,
        excluded: bool | None = None,
    ) -> int:
        """A curator's note and whether the segment is excluded from training, with history.

        None leaves a flag as it is. History rows use facet '_segment' and the flag's name
        as tag, with the old and new values, so undo can restore them.
        """
        with self.transaction() as con:
            return _set_flags(con, segment_id, actor, batch_id, note, excluded)

    def undo_batch(self, batch_id: str, actor: str, undo_batch_id: str) -> int:
        """Restore every label and flag batch `batch_id` changed; the undo is in the history."""
        with self.transaction() as con:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _undo AS SELECT segment_id, facet, tag, "
                "arg_min(old_present, id) AS present, arg_min(old_value, id) AS value "
                "FROM label_history WHERE batch_id = ? AND undone_by IS NULL GROUP BY ALL",
                [batch_id],
            )
            if not _scalar(con, "SELECT count(*) FROM _undo"):
                raise CuratorError(f"nothing to undo in batch {batch_id} (unknown or undone)")
            flags = _undo_flags(con, actor, undo_batch_id)
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _changes AS SELECT * FROM _undo "
                "WHERE facet <> '_segment'"
            )
            restored = _apply_changes(con, actor, undo_batch_id, "undo")
            con.execute(
                "UPDATE label_history SET undone_by = ? WHERE batch_id = ? AND undone_by IS NULL",
                [undo_batch_id, batch_id],
            )
            return restored + flags

    def batches(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest change batches: who, when, what, how many labels, whether undone."""
        with self.connect() as con:
            return _dicts(
                con.execute(
                    "SELECT batch_id, any_value(action) AS action, any_value(actor) AS actor, "
                    "min(changed_at) AS changed_at, count(*) AS labels, "
                    "any_value(undone_by) AS undone_by FROM label_history GROUP BY batch_id "
                    "ORDER BY min(id) DESC LIMIT ?",
                    [limit],
                )
            )

    def tag_frequencies(self, facet: str) -> list[dict[str, Any]]:
        """Per tag of `facet`, usable segments labelled by models only and by a person."""
        # One grouping pass over the facet's labels (a person's label decides when present).
        with self.connect() as con:
            return _dicts(
                con.execute(
                    "SELECT tag, count(*) FILTER (WHERE human IS NULL AND model) AS model, "
                    f"count(*) FILTER (WHERE human) AS human FROM ({_LABEL_PIVOT}) p "
                    "WHERE (human OR (human IS NULL AND model)) AND segment_id IN ("
                    + _USABLE_IDS
                    + ") GROUP BY tag ORDER BY count(*) DESC, tag",
                    {"facet": facet, "tag": None},
                )
            )

    def effective_values(self, name: str) -> list[tuple[str, str]]:
        """(segment id, value) of `name` (tempo, key or scale) for usable segments."""
        with self.connect() as con:
            return con.execute(
                "SELECT e.segment_id, e.value FROM ("
                + _effective_labels_sql("facet = $name")
                + ") e JOIN segments s ON s.id = e.segment_id JOIN tracks t ON "
                "t.id = s.track_id WHERE e.present AND e.value IS NOT NULL AND "
                + _USABLE
                + " ORDER BY e.segment_id",
                {"name": name},
            ).fetchall()

    def cooccurrence(self, facet: str, other: str | None = None) -> list[tuple[str, str, int]]:
        """(tag, other tag, segments with both) over usable segments' effective labels."""
        facets = {"facet": facet, "other": other or facet}
        present = (
            "SELECT segment_id, facet, tag FROM ("
            + _effective_labels_sql("facet IN ($facet, $other)")
            + ") WHERE present"
        )
        with self.connect() as con:
            return con.execute(
                f"SELECT a.tag, b.tag, count(*) FROM ({present}) a JOIN ({present}) b USING "
                "(segment_id) WHERE a.facet = $facet AND b.facet = $other AND segment_id IN ("
                + _USABLE_IDS
                + ") GROUP BY ALL ORDER BY 3 DESC",
                facets,
            ).fetchall()

    def review_segments(
        self, query: ReviewQuery, offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """How many segments `query` matches, and one page of them with their details."""
        sql, params = _review_sql(query)
        # One pass: the query's window count covers every match before the page is cut.
        with self.connect() as con:
            rows = _dicts(con.execute(*_page(sql, params, offset, limit)))
            total = rows[0]["total"] if rows else _count(con, sql, params)
            _attach_details(con, rows)
        return total, rows

    def import_model_labels(
        self,
        labels: Sequence[HumanLabel],
        segment_ids: Sequence[str],
        source: str,
        settings: dict[str, Any],
    ) -> int:
        """Labels from another tool, recorded as model labels of an `import` run of `source`.

        They replace what an earlier import from the same source said about these segments.
        """
        with self.transaction() as con:
            run_id = int(
                _scalar(
                    con,
                    "INSERT INTO runs (kind, plugin, plugin_version, settings, settings_hash, "
                    "status, finished_at) VALUES ('import', ?, 'import', ?, ?, 'finished', now()) "
                    "RETURNING id",
                    [source, json.dumps(settings), f"import:{source}"],
                )
            )
            con.register("_segment_ids", {"segment_id": np.asarray(segment_ids, dtype=str)})
            con.execute(
                "DELETE FROM labels WHERE source = ? AND segment_id IN "
                "(SELECT segment_id FROM _segment_ids)",
                [source],
            )
            _insert(
                con,
                "labels",
                [
                    {
                        "segment_id": label.segment_id,
                        "facet": label.facet,
                        "tag": label.tag,
                        "source": source,
                        "source_kind": "model",
                        "present": label.present,
                        "value": label.value,
                        "run_id": run_id,
                        "score": 1.0,
                    }
                    for label in labels
                ],
                "ON CONFLICT DO NOTHING",
            )
            return len(labels)

    def label_history(self, segment_id: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE segment_id = ?", [segment_id]) if segment_id else ("", [])
        with self.connect() as con:
            return _dicts(
                con.execute(
                    "SELECT id, batch_id, segment_id, facet, tag, action, old_present, "
                    "new_present, old_value, new_value, actor, changed_at "
                    f"FROM label_history {where} ORDER BY id",
                    params,
                )
            )

    def segment_count(self) -> int:
        with self.connect() as con:
            return int(_scalar(con, "SELECT count(*) FROM segments"))

    def duplicate_rows(self) -> dict[str, int]:
        """Per table, how many rows share a key that must be unique (0 everywhere when sound)."""
        checks = {
            "tracks": "SELECT count(*) - count(DISTINCT content_hash) FROM tracks",
            "files": "SELECT count(*) - count(DISTINCT path) FROM files",
            "segments": "SELECT count(*) - count(DISTINCT (track_id, idx)) FROM segments",
        }
        with self.connect() as con:
            return {table: int(_scalar(con, sql)) for table, sql in checks.items()}


_STATE_SQL = {
    "usable": _USABLE,
    "silent": "s.silent",
    "excluded": "s.excluded",
    "missing": "t.status <> 'ingested'",
}
# Per (segment, facet, tag): the person's label, the models' (any says present), best score.
_LABEL_PIVOT = (
    "SELECT segment_id, tag, bool_or(present) FILTER (WHERE source_kind = 'human') AS human, "
    "bool_or(present) FILTER (WHERE source_kind = 'model') AS model FROM labels "
    "WHERE ($facet IS NULL OR facet = $facet) AND ($tag IS NULL OR tag = $tag) "
    "GROUP BY segment_id, facet, tag"
)
_SOURCE_SQL = {
    None: "coalesce(human, model, false)",
    "model": "human IS NULL AND model",
    "human": "human",
    "both": "human AND model",
    "disagree": "human IS NOT NULL AND human <> coalesce(model, false)",
}


def _review_sql(query: ReviewQuery) -> tuple[str, dict[str, Any]]:
    """The SELECT of the segments a review query matches, in queue order, and its params.

    Every value is a parameter; the state and source only pick fixed fragments from
    _STATE_SQL and _SOURCE_SQL (an unknown one is a KeyError, never SQL).
    """
    conditions = [_STATE_SQL[query.state]] if query.state else []
    params: dict[str, Any] = {}
    if (query.facet or query.tag) and not (query.threshold is not None and query.source is None):
        params |= {"facet": query.facet, "tag": query.tag}
        conditions.append(
            f"s.id IN (SELECT segment_id FROM ({_LABEL_PIVOT}) WHERE {_SOURCE_SQL[query.source]})"
        )
    score, join = "NULL::FLOAT", ""
    if (
        query.tag
        and query.facet
        and (
            query.score_min is not None
            or query.score_max is not None
            or query.threshold is not None
        )
    ):
        score, join = _score_column(query, params)
    conditions += _score_bounds(query, score, params)
    if query.confidence_below is not None:
        conditions.append(_UNSURE_VALUES)
        params["confidence_below"] = query.confidence_below
    order = f"abs({score} - $threshold) NULLS LAST, s.id" if query.threshold is not None else "s.id"
    if query.threshold is not None:
        params["threshold"] = query.threshold
    where = " AND ".join(conditions) or "true"
    return (
        f"SELECT s.id, t.path AS source, s.start, s.duration, t.status AS track_status, "
        f"s.silent, s.excluded, s.note, {score} AS score, count(*) OVER () AS total "
        f"FROM segments s JOIN tracks t ON t.id = s.track_id {join} WHERE {where} "
        f"ORDER BY {order}",
        params,
    )


# Segments whose latest tempo or key estimate is less confident than the curator asked for.
_UNSURE_VALUES = (
    "s.id IN (SELECT segment_id FROM (SELECT segment_id, confidence, row_number() OVER "
    "(PARTITION BY segment_id, name ORDER BY run_id DESC) AS k FROM measurements "
    "WHERE name IN ('tempo', 'key')) WHERE k = 1 AND confidence < $confidence_below)"
)


def _score_column(query: ReviewQuery, params: dict[str, Any]) -> tuple[str, str]:
    # The tag's score from the latest run of a tagger that scores it: runs store one list
    # per segment in the order of runs.tags, so the list position is found first.
    params["pair"] = [query.facet, query.tag]
    join = (
        "JOIN (SELECT id AS run_id, list_position(CAST(tags AS VARCHAR[][]), $pair) AS k "
        "FROM runs WHERE kind = 'tag' AND list_position(CAST(tags AS VARCHAR[][]), $pair) "
        "IS NOT NULL ORDER BY id DESC LIMIT 1) r ON true "
        "LEFT JOIN scores sc ON sc.segment_id = s.id AND sc.run_id = r.run_id"
    )
    return "sc.scores[r.k]", join


def _score_bounds(query: ReviewQuery, score: str, params: dict[str, Any]) -> list[str]:
    bounds = []
    if query.score_min is not None:
        bounds.append(f"{score} >= $score_min")
        params["score_min"] = query.score_min
    if query.score_max is not None:
        bounds.append(f"{score} <= $score_max")
        params["score_max"] = query.score_max
    return bounds


def _attach_details(con: Any, rows: list[dict[str, Any]]) -> None:
    """Give each segment of a page its labels, latest measurements and prompt."""
    if not rows:
        return
    con.register("_page_ids", {"segment_id": np.array([r["id"] for r in rows], dtype=object)})
    page = "segment_id IN (SELECT segment_id::VARCHAR FROM _page_ids)"
    labels = _dicts(
        con.execute(
            "SELECT segment_id, facet, tag, source, source_kind, present, value, score, actor "
            f"FROM labels WHERE {page} ORDER BY facet, tag, source_kind DESC, source"
        )
    )
    measurements = _dicts(
        con.execute(
            "SELECT m.segment_id, m.name, m.value, m.text, m.confidence, r.plugin FROM "
            "measurements m JOIN runs r ON r.id = m.run_id WHERE m."
            + page
            + " QUALIFY row_number() OVER (PARTITION BY m.segment_id, m.name ORDER BY m.run_id "
            "DESC) = 1 ORDER BY m.name"
        )
    )
    prompts = dict(
        con.execute(
            f"SELECT segment_id, arg_max(text, {PROMPT_IN_USE_ORDER}) FROM prompts WHERE {page} "
            "GROUP BY segment_id"
        ).fetchall()
    )
    for row in rows:
        row["labels"] = [x for x in labels if x["segment_id"] == row["id"]]
        row["measurements"] = [x for x in measurements if x["segment_id"] == row["id"]]
        row["prompt"] = prompts.get(row["id"])


def _set_flags(
    con: Any, segment_id: str, actor: str, batch_id: str, note: str | None, excluded: bool | None
) -> int:
    """Catalog.set_segment_flags inside an open transaction; returns how many flags changed."""
    old = con.execute("SELECT note, excluded FROM segments WHERE id = ?", [segment_id]).fetchone()
    if old is None:
        raise CuratorError(f"no segment {segment_id!r}")
    # An empty note and no note are the same thing to a curator.
    wanted = {"note": note, "excluded": None if excluded is None else str(excluded).lower()}
    before = {"note": old[0] or "", "excluded": str(old[1]).lower()}
    changed = {k: v for k, v in wanted.items() if v is not None and v != before[k]}
    for flag, value in changed.items():
        _set_flag(con, segment_id, flag, value)
        con.execute(
            "INSERT INTO label_history (batch_id, segment_id, facet, tag, action, "
            "old_value, new_value, actor) VALUES (?, ?, '_segment', ?, ?, ?, ?, ?)",
            [batch_id, segment_id, flag, flag, before[flag], value, actor],
        )
    return len(changed)


def _set_flag(con: Any, segment_id: str, flag: str, value: str | None) -> None:
    if flag == "note":
        con.execute("UPDATE segments SET note = ? WHERE id = ?", [value or None, segment_id])
    else:
        con.execute("UPDATE segments SET excluded = ? WHERE id = ?", [value == "true", segment_id])


def _undo_flags(con: Any, actor: str, undo_batch_id: str) -> int:
    """Put back the segment flags (note, excluded) in _undo; returns how many."""
    rows = con.execute(
        "SELECT u.segment_id, u.tag, u.value, CASE u.tag WHEN 'note' THEN s.note "
        "ELSE lower(s.excluded::VARCHAR) END FROM _undo u JOIN segments s "
        "ON s.id = u.segment_id WHERE u.facet = '_segment'"
    ).fetchall()
    for segment_id, flag, old_value, current in rows:
        _set_flag(con, segment_id, flag, old_value)
        con.execute(
            "INSERT INTO label_history (batch_id, segment_id, facet, tag, action, old_value, "
            "new_value, actor) VALUES (?, ?, '_segment', ?, 'undo', ?, ?, ?)",
            [undo_batch_id, segment_id, flag, current, old_value, actor],
        )
    return len(rows)


def _register_changes(con: Any, changes: Sequence[HumanLabel]) -> None:
    con.register(
        "_change_rows",
        {
            "segment_id": np.array([c.segment_id for c in changes], dtype=object),
            "facet": np.array([c.facet for c in changes], dtype=object),
            "tag": np.array([c.tag for c in changes], dtype=object),
            "present": np.array([c.present for c in changes], dtype=bool),
            "value": np.array([c.value for c in changes], dtype=object),
        },
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _changes AS SELECT segment_id::VARCHAR AS "
        "segment_id, facet::VARCHAR AS facet, tag::VARCHAR AS tag, present, "
        "value::VARCHAR AS value FROM _change_rows"
    )
    unknown = con.execute(
        "SELECT DISTINCT segment_id FROM _changes WHERE segment_id NOT IN "
        "(SELECT id FROM segments) ORDER BY 1 LIMIT 3"
    ).fetchall()
    if unknown:
        named = ", ".join(repr(r[0][:40]) for r in unknown)  # a pasted id may be any length
        raise CuratorError(f"no segment {named} in the catalogue")


def _apply_changes(con: Any, actor: str, batch_id: str, action: str) -> int:
    """Apply the rows of temp table _changes as human labels, set-based, with history.

    A change whose label is already so is dropped; the history gets the old and new state
    of every other one, so undo can restore it (no old state: there was no human label).
    """
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _effective_changes AS SELECT c.*, h.present AS "
        "old_present, h.value AS old_value FROM _changes c LEFT JOIN labels h ON "
        "h.segment_id = c.segment_id AND h.facet = c.facet AND h.tag = c.tag "
        "AND h.source = 'human' WHERE h.present IS DISTINCT FROM c.present "
        "OR h.value IS DISTINCT FROM c.value"
    )
    con.execute(
        "INSERT INTO label_history (batch_id, segment_id, facet, tag, action, old_present, "
        "new_present, old_value, new_value, actor) SELECT ?, segment_id, facet, tag, ?, "
        "old_present, present, old_value, value, ? FROM _effective_changes",
        [batch_id, action, actor],
    )
    con.execute(
        "DELETE FROM labels WHERE source = 'human' AND (segment_id, facet, tag) IN (SELECT "
        "(segment_id, facet, tag) FROM _effective_changes WHERE present IS NULL)"
    )
    con.execute(
        "INSERT INTO labels (segment_id, facet, tag, source, source_kind, present, value, "
        "actor) SELECT segment_id, facet, tag, 'human', 'human', present, value, ? FROM "
        "_effective_changes WHERE present IS NOT NULL ON CONFLICT DO UPDATE SET present = "
        "excluded.present, value = excluded.value, actor = excluded.actor, updated_at = now()",
        [actor],
    )
    return int(_scalar(con, "SELECT count(*) FROM _effective_changes"))


# The human labels each bulk action writes for the segments in _matched.
_HAS_TAG = (
    "SELECT segment_id FROM ({eff}) WHERE facet = $facet AND tag = $tag AND present "
    "AND segment_id IN (SELECT id FROM _matched)"
).replace("{eff}", _EFFECTIVE_LABELS)
_BULK_CHANGES = {
    "add": "CREATE OR REPLACE TEMP TABLE _changes AS SELECT id AS segment_id, $facet AS facet, "
    "$tag AS tag, true AS present, NULL::VARCHAR AS value FROM _matched",
    "remove": "CREATE OR REPLACE TEMP TABLE _changes AS SELECT segment_id, $facet AS facet, "
    "$tag AS tag, false AS present, NULL::VARCHAR AS value FROM (" + _HAS_TAG + ")",
    "rename": "CREATE OR REPLACE TEMP TABLE _changes AS SELECT segment_id, $facet AS facet, "
    "t.tag, t.tag = $new_tag AS present, NULL::VARCHAR AS value FROM (" + _HAS_TAG + ") "
    "CROSS JOIN (SELECT unnest([$tag, $new_tag]) AS tag) t",
}


def _ids_and_matrix(
    con: Any, rows: str, column: str, params: Sequence[Any]
) -> tuple[list[str], np.ndarray]:
    # Unnesting the lists into one float column is ten times faster than fetching 40,000
    # Python lists and stacking them.
    found = con.execute(f"SELECT segment_id FROM ({rows})", params).fetchnumpy()
    ids = [str(i) for i in found["segment_id"]]
    flat = con.execute(f"SELECT unnest({column}) AS v FROM ({rows})", params).fetchnumpy()["v"]
    if not ids:
        return ids, np.zeros((0, 0), dtype=np.float32)
    # NULL elements (a tag the tagger could not score) arrive masked; NaN keeps "no score"
    # apart from "scored 0", which would read as confidently absent.
    values = np.ma.filled(np.ma.asarray(flat, dtype=np.float32), np.nan)
    return ids, values.reshape(len(ids), -1)


def _page(
    sql: str, params: Mapping[str, Any], offset: int, limit: int
) -> tuple[str, dict[str, Any]]:
    """`sql` cut to one page, the bounds passed as parameters like every other value."""
    return f"{sql} LIMIT $limit OFFSET $offset", {**params, "limit": limit, "offset": offset}


def _count(con: Any, sql: str, params: Mapping[str, Any]) -> int:
    return int(_scalar(con, f"SELECT count(*) FROM ({sql})", params))


def _dicts(cursor: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


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


def _register_segments(con: Any, segment_ids: Sequence[str]) -> None:
    con.register("_segment_ids", {"segment_id": np.asarray(segment_ids, dtype=str)})
    con.execute("CREATE OR REPLACE TEMP TABLE _segments AS SELECT * FROM _segment_ids")


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
        source = _register_columns(con, "_columns", columns)
        con.execute(f"COPY ({source}) TO $path (FORMAT parquet)", {"path": str(path)})
    finally:
        con.close()
    return True


def _register_columns(con: Any, name: str, columns: Mapping[str, Any]) -> str:
    """Make numpy columns queryable as `name`; returns the SELECT that reads them.

    A 2-D array becomes a FLOAT[] column, one list per row (DuckDB scans 1-D arrays only).
    Column names go into the SELECT, so they must be the code's own (a table's columns),
    never a value read from a user or a file.
    """
    flat, selects = {}, []
    for column, values in columns.items():
        array = np.asarray(values)
        if array.ndim == 2:
            parts = [f"{column}__{i}" for i in range(array.shape[1])]
            flat.update({p: np.ascontiguousarray(array[:, i]) for i, p in enumerate(parts)})
            selects.append(f"[{', '.join(parts)}]::FLOAT[] AS {column}")
        else:
            flat[column] = array
            selects.append(column)
    con.register(name, flat)
    return f"SELECT {', '.join(selects)} FROM {name}"


def _scalar(con: Any, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
    """The first column of the first row of a query that always returns one row."""
    row = con.execute(sql, params).fetchone()
    return row[0] if row else None


def _run_migration(con: Any, migration: Migration) -> None:
    """Apply one migration and record it, all or nothing."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(migration.sql)
        con.execute(
            "INSERT INTO schema_migrations (scope, number, name) VALUES (?, ?, ?)",
            [migration.scope, migration.number, migration.name],
        )
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _insert(con: Any, table: str, rows: list[dict[str, Any]], conflict: str = "") -> None:
    """Insert rows with multi-row VALUES statements, a few hundred rows per statement.

    Row-by-row inserts are two orders of magnitude slower, and going through Arrow costs
    every short-lived command seconds of pandas import on its first use. The table, the
    column names (the keys of `rows`) and `conflict` are the code's own; values are parameters.
    """
    if not rows:
        return
    columns = list(rows[0])
    one_row = "(" + ", ".join("?" * len(columns)) + ")"
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        values = ", ".join([one_row] * len(chunk))
        params = [row[column] for row in chunk for column in columns]
        con.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} {conflict}", params
        )


def _insert_temp(con: Any, name: str, rows: list[dict[str, Any]]) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} (path VARCHAR)")
    _insert(con, name, rows)
