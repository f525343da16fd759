"""What ingest writes and reads: files, tracks, segments, and the catalogue's counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from curator.storage.catalog import CatalogBase
from curator.storage.sql import USABLE, insert, insert_temp, scalar


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


class IngestStore(CatalogBase):
    """Catalog methods for this area (combined into `Catalog`)."""

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
            insert(con, "tracks", [asdict(t) for t in tracks], "ON CONFLICT DO NOTHING")
            insert(con, "segments", [asdict(s) for s in segments], "ON CONFLICT DO NOTHING")
            insert(
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

    def record_ingest_sources(self, folders: Sequence[str]) -> None:
        """Remember folders ingest was given (absolute paths); once each, however often."""
        if not folders:
            return
        with self.transaction() as con:
            insert(
                con,
                "ingest_sources",
                [{"path": folder} for folder in folders],
                "ON CONFLICT (path) DO UPDATE SET last_ingested = now()",
            )

    def ingest_sources(self) -> list[str]:
        """Every folder ingest was given (see `record_ingest_sources`), by path."""
        with self.connect() as con:
            rows = con.execute("SELECT path FROM ingest_sources ORDER BY path").fetchall()
        return [path for (path,) in rows]

    def mark_files_missing(self, paths: Sequence[str]) -> None:
        """Files that vanished since the last scan; their tracks follow if no copy is left."""
        with self.transaction() as con:
            insert_temp(con, "gone", [{"path": p} for p in paths])
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
                scalar(
                    con,
                    "SELECT coalesce(sum(s.duration), 0) / 3600 FROM segments s JOIN tracks t "
                    f"ON t.id = s.track_id WHERE {USABLE}",
                )
            )

    def audio_bytes(self) -> int:
        """Size of the audio files the catalogue holds (each distinct file once)."""
        with self.connect() as con:
            return int(
                scalar(con, "SELECT coalesce(sum(size), 0) FROM files WHERE status = 'ingested'")
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
        where = "" if include_unusable else f"WHERE {USABLE}"
        with self.connect() as con:
            cursor = con.execute(
                "SELECT s.id, s.track_id, t.path AS source, s.idx, s.start, s.duration, "
                "s.rms_db, s.silent, s.excluded, t.duration AS track_duration, "
                "t.sample_rate, t.channels, t.format "
                f"FROM segments s JOIN tracks t ON t.id = s.track_id {where} ORDER BY s.id"
            )
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def segment_count(self) -> int:
        with self.connect() as con:
            return int(scalar(con, "SELECT count(*) FROM segments"))

    def duplicate_rows(self) -> dict[str, int]:
        """Per table, how many rows share a key that must be unique (0 everywhere when sound)."""
        checks = {
            "tracks": "SELECT count(*) - count(DISTINCT content_hash) FROM tracks",
            "files": "SELECT count(*) - count(DISTINCT path) FROM files",
            "segments": "SELECT count(*) - count(DISTINCT (track_id, idx)) FROM segments",
        }
        with self.connect() as con:
            return {table: int(scalar(con, sql)) for table, sql in checks.items()}
