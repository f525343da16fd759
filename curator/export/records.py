"""What an export records: each chosen segment's files, the manifest, Parquet and content hash.

Nothing here touches the catalogue or the audio: the build hands in the chosen segments and
their prompts, and gets back the records, their bytes and the hash that proves them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curator.catalogue.metadata import TAG_FACETS
from curator.settings import ExportSettings
from curator.storage.exports import ExportRecord
from curator.storage.selections import SPLITS

MANIFEST = "manifest.jsonl"
METADATA = "metadata.parquet"
SECONDS = ("segment", "track")


@dataclass
class ExportSummary:
    """What one export did; `left_out` names every segment it could not use, and why."""

    out: Path
    selection: str | None
    exporter: str
    export_id: int | None = None
    segments: int = 0
    files: int = 0
    written: int = 0
    reused: int = 0
    prompts_missing: int = 0  # segments that had no prompt when the export began
    prompts_written: int = 0  # of those, how many got one from the writer
    content_hash: str = ""
    splits: dict[str, int] = field(default_factory=dict)
    left_out: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["out"] = str(self.out)
        data["left_out"] = [{"segment": s, "reason": r} for s, r in self.left_out]
        return data


@dataclass(frozen=True)
class ExportSegment:
    """One chosen segment with what its files need: source window, split, repeats, tags."""

    id: str
    track_id: str
    source: str
    start: float
    duration: float
    track_duration: float
    split: str
    repeats: int
    weight: float
    metadata: Mapping[str, Any]

    def files(self, ext: str) -> list[str]:
        """Paths relative to the export folder: the segment's file, then its copies."""
        names = [f"{self.id}.{ext}"] + [f"{self.id}.copy{k}.{ext}" for k in range(1, self.repeats)]
        return [f"{self.split}/{name}" for name in names]


def build_records(
    segments: Sequence[ExportSegment], prompts: Mapping[str, str], settings: ExportSettings
) -> list[dict[str, Any]]:
    """One record per audio file (copies included), by split, segment and copy: the manifest."""
    records = [
        _record(segment, prompts[segment.id], path, copy, settings)
        for segment in segments
        for copy, path in enumerate(segment.files(settings.format))
    ]
    return sorted(records, key=lambda r: (r["split"], r["segment_id"], r["copy"]))


def _record(
    segment: ExportSegment, prompt: str, path: str, copy: int, settings: ExportSettings
) -> dict[str, Any]:
    meta = segment.metadata
    if settings.seconds == "track":
        seconds_start, seconds_total = segment.start, segment.track_duration
    else:
        seconds_start, seconds_total = 0.0, segment.duration
    record: dict[str, Any] = {
        "filepath": path,
        "start": segment.start,
        "duration": segment.duration,
        "prompt": prompt,
    }
    record.update({f"{facet}_tags": list(meta[f"{facet}_tags"]) for facet in TAG_FACETS})
    record.update(
        {
            "bpm": meta.get("tempo"),
            "key": meta.get("key"),
            "scale": meta.get("scale"),
            "source": segment.source,
            "track_id": segment.track_id,
            "segment_id": segment.id,
            "split": segment.split,
            "repeats": segment.repeats,
            "copy": copy,
            "weight": segment.weight,
            "seconds_start": seconds_start,
            "seconds_total": seconds_total,
        }
    )
    return record


def manifest_bytes(records: Sequence[Mapping[str, Any]]) -> bytes:
    """JSON lines in record order, no timestamps: the same export gives the same bytes."""
    lines = (json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return "".join(lines).encode("utf-8")


def manifest_files(manifest: bytes) -> set[str]:
    """The audio files a manifest names, relative to its folder."""
    return {json.loads(line)["filepath"] for line in manifest.decode().splitlines()}


def write_metadata_parquet(records: Sequence[Mapping[str, Any]], path: Path) -> None:
    import pyarrow as pa  # imported here: a second of start-up the other commands don't need
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([dict(r) for r in records]), str(path))


def content_hash(manifest: bytes, audio: Any, exporter: Any) -> str:
    """sha256 of the manifest, the audio settings (`audio_state`) and the exporter.

    The manifest names every file with its segment (whose id starts with the source
    audio's content hash), window and prompt; with the audio settings that decides every
    byte written, without reading gigabytes of audio back. `audio` and `exporter` are
    whatever a marker holds when a folder is checked against it.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([audio, exporter], sort_keys=True).encode())
    digest.update(manifest)
    return digest.hexdigest()


def count_records(summary: ExportSummary, records: Sequence[Mapping[str, Any]]) -> None:
    """Put the segments, files and files per split of `records` into `summary`."""
    summary.segments = len({r["segment_id"] for r in records})
    summary.files = len(records)
    summary.splits = {s: sum(1 for r in records if r["split"] == s) for s in SPLITS}


def catalogue_record(summary: ExportSummary, settings: ExportSettings) -> ExportRecord:
    """What the catalogue keeps of a finished export (`curator exports` lists it)."""
    return ExportRecord(
        path=str(summary.out),
        selection=summary.selection,
        exporter=summary.exporter,
        settings=dataclasses.asdict(settings),
        content_hash=summary.content_hash,
        n_segments=summary.segments,
        n_files=summary.files,
        left_out=summary.left_out,
    )
