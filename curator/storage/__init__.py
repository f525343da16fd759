"""The catalogue: the one package that talks to DuckDB. No other package imports duckdb.

DuckDB lets one process at a time open the file (DESIGN.md decision 2), so a Catalog never
keeps it open: every call opens, works and closes, and an open refused because another
process holds the file is retried with backoff until `lock_timeout` runs out.
"""

from __future__ import annotations

from curator.storage.catalog import Migration, builtin_migrations
from curator.storage.ingest import (
    FileRecord,
    IngestStore,
    KnownFile,
    KnownTrack,
    SegmentRecord,
    TrackRecord,
)
from curator.storage.labels import HumanLabel, LabelStore
from curator.storage.review import ReviewQuery, ReviewStore
from curator.storage.runs import RunRecord, RunStore, write_parquet
from curator.storage.sql import PROMPT_IN_USE_ORDER


class Catalog(IngestStore, RunStore, LabelStore, ReviewStore):
    """One project's catalogue; each area's methods live in its own module."""


__all__ = [
    "PROMPT_IN_USE_ORDER",
    "Catalog",
    "FileRecord",
    "HumanLabel",
    "KnownFile",
    "KnownTrack",
    "Migration",
    "ReviewQuery",
    "RunRecord",
    "SegmentRecord",
    "TrackRecord",
    "builtin_migrations",
    "write_parquet",
]
