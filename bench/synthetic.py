"""Synthetic catalogues for the benchmarks: tracks and segments without audio behind them."""

from __future__ import annotations

from typing import Any

import numpy as np

from curator.project import Project
from curator.storage import SegmentRecord, TrackRecord


def add_segments(
    project: Project, count: int, track_seconds: float, segment_seconds: float
) -> list[SegmentRecord]:
    """`count` segments, two per track, written to the catalogue as ingest would."""
    tracks = [_track(i, track_seconds) for i in range(count // 2)]
    gap = track_seconds / 2
    rows = [
        SegmentRecord(f"{t.id}-{k}", t.id, k, 5.0 + gap * k, segment_seconds, -18.0, -1.0, False)
        for t in tracks
        for k in range(2)
    ]
    project.catalog.save_ingest_batch([], tracks, rows)
    return rows


def _track(number: int, seconds: float) -> TrackRecord:
    return TrackRecord(
        f"{number:016x}",
        f"{number:032x}",
        f"/synthetic/{number}.wav",
        seconds,
        44100,
        2,
        "WAV",
        "PCM_16",
        "ingested",
        None,
    )


def model_label_columns(
    segment_ids: Any,
    facets: Any,
    tags: Any,
    source: str,
    run_id: int,
    scores: Any,
    values: Any = None,
) -> dict[str, np.ndarray]:
    """The "labels" table of `Catalog.merge_columns`: one present model label per row.

    `facets` may be one facet name for every row; `values` (tempo, key, ...) default to none.
    """
    count = len(segment_ids)
    if values is None:
        values = np.full(count, None, dtype=object)
    if isinstance(facets, str):
        facets = np.full(count, facets, dtype=object)
    return {
        "segment_id": np.asarray(segment_ids, dtype=object),
        "facet": np.asarray(facets, dtype=object),
        "tag": np.asarray(tags, dtype=object),
        "source": np.full(count, source, dtype=object),
        "source_kind": np.full(count, "model", dtype=object),
        "present": np.ones(count, dtype=bool),
        "value": np.full(count, None, dtype=object)
        if values is None
        else np.asarray(values, dtype=object),
        "run_id": np.full(count, run_id),
        "score": np.asarray(scores),
        "actor": np.full(count, None, dtype=object),
    }
