"""Synthetic catalogues for the benchmarks: tracks and segments without audio behind them."""

from __future__ import annotations

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
