"""Per-segment metadata in the seed project's format, built from the effective labels."""

from __future__ import annotations

from typing import Any

from curator.project import Project

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
