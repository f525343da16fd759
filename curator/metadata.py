"""Per-segment metadata in the seed project's format, built from the effective labels."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curator.errors import CuratorError
from curator.project import Project
from curator.storage import HumanLabel

# The seed's JSON has one list per tag facet and plain values for tempo, key and scale.
TAG_FACETS = ("instruments", "genres", "moods")
VALUE_FACETS = ("key", "scale", "tempo")


def empty_record(row: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "source": row["source"],
        "start": row["start"],
        "duration": row["duration"],
    }
    record.update({f"{facet}_tags": [] for facet in TAG_FACETS})
    record.update(dict.fromkeys(VALUE_FACETS))
    return record


def segment_metadata(project: Project, include_unusable: bool = False) -> dict[str, dict[str, Any]]:
    """One record per segment, keyed by segment id, ordered by id."""
    catalog = project.catalog
    records = {row["id"]: empty_record(row) for row in catalog.segment_rows(include_unusable)}
    for segment_id, facet, tag, present, value, _source in catalog.effective_labels():
        record = records.get(segment_id)
        if record is None or not present:
            continue
        if facet in TAG_FACETS:
            record[f"{facet}_tags"].append(tag)
        elif facet in VALUE_FACETS:
            record[facet] = float(value) if facet == "tempo" and value is not None else value
    return records


# -- bringing existing labels in ---------------------------------------------------------------


@dataclass
class ImportSummary:
    """What `curator metadata import` matched, and each record it could not place."""

    records: int = 0
    segments: int = 0
    labels: int = 0
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # (record key, reason)


def read_records(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(key, record) pairs from a JSON object keyed by segment id or file, or from JSONL."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        return [(str(k), v) for k, v in data.items() if isinstance(v, dict)]
    try:
        lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise CuratorError(f"{path}: neither a JSON object nor JSON lines ({exc})") from exc
    return [
        (str(r.get("id") or r.get("filepath") or r.get("source") or i), r)
        for i, r in enumerate(lines)
    ]


class SegmentIndex:
    """Finds the segments a record describes: by segment id, else by file and start."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.by_id = {r["id"]: r for r in rows}
        self.by_path: dict[str, list[dict[str, Any]]] = {}
        self.by_name: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            self.by_path.setdefault(row["source"], []).append(row)
            self.by_name.setdefault(Path(row["source"]).name, []).append(row)

    def match(self, key: str, record: dict[str, Any]) -> tuple[list[str], str | None]:
        if key in self.by_id:
            return [key], None
        track = self._track(str(record.get("source") or record.get("filepath") or key))
        if track is None:
            return [], "no segment id or audio file of this name in the project"
        if record.get("start") is None:
            return [r["id"] for r in track], None
        best = max(track, key=lambda r: _overlap(r, record))
        if _overlap(best, record) <= 0:
            return [], f"no segment of {Path(best['source']).name} overlaps {record['start']} s"
        return [best["id"]], None

    def _track(self, name: str) -> list[dict[str, Any]] | None:
        if name in self.by_path:
            return self.by_path[name]
        same_name = self.by_name.get(Path(name).name, [])
        sources = {r["source"] for r in same_name}
        return same_name if len(sources) == 1 else None


def _overlap(row: dict[str, Any], record: dict[str, Any]) -> float:
    start = float(record["start"])
    end = start + float(record.get("duration") or row["duration"])
    return min(end, row["start"] + row["duration"]) - max(start, row["start"])


def record_labels(segment_id: str, record: dict[str, Any]) -> list[HumanLabel]:
    """The labels a seed-format record states: tags per facet, and tempo, key, scale."""
    labels = [
        HumanLabel(segment_id, facet, str(tag))
        for facet in TAG_FACETS
        for tag in record.get(f"{facet}_tags") or []
    ]
    for facet in VALUE_FACETS:
        if record.get(facet) is not None:
            labels.append(HumanLabel(segment_id, facet, facet, value=_value_text(record[facet])))
    return labels


def _value_text(value: Any) -> str:
    return f"{float(value):g}" if isinstance(value, int | float) else str(value)


def import_metadata(project: Project, path: Path, source: str, human: bool) -> ImportSummary:
    """Bring labels from `path` in, as `source`'s model labels or (human) as people's."""
    summary = ImportSummary()
    index = SegmentIndex(project.catalog.segment_rows(include_unusable=True))
    labels: list[HumanLabel] = []
    matched: set[str] = set()
    for key, record in read_records(path):
        summary.records += 1
        segment_ids, problem = index.match(key, record)
        if problem:
            summary.unmatched.append((key, problem))
        for segment_id in segment_ids:
            labels += record_labels(segment_id, record)
            matched.add(segment_id)
    summary.segments = len(matched)
    summary.labels = _store(project, labels, matched, source, human, path)
    return summary


def _store(
    project: Project,
    labels: list[HumanLabel],
    segments: set[str],
    source: str,
    human: bool,
    path: Path,
) -> int:
    catalog = project.catalog
    if human:
        return catalog.apply_human_labels(
            labels, actor=source, batch_id=f"import:{uuid.uuid4()}", action="import"
        )
    return catalog.import_model_labels(labels, sorted(segments), source, {"file": str(path)})
