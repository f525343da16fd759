"""Per-segment metadata in the seed project's format, built from the effective labels."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TextIO

from pydantic import BaseModel, Field, model_validator

from curator.errors import InvalidInput
from curator.music import VALUE_FACETS
from curator.project import Project
from curator.storage import HumanLabel
from curator.validation import (
    STRICT_RECORD,
    Key,
    Scale,
    TagName,
    Tempo,
    checked_labels,
    parsed,
    read_input_text,
    tag_name,
)
from curator.vocabulary import Vocabulary

# The seed's JSON has one list per tag facet and plain values for music.VALUE_FACETS.
TAG_FACETS = ("instruments", "genres", "moods")


# metadata_table's column for each field of a record, in the record's order.
_FIELDS = {"source": "source", "start": "start", "duration": "duration"}
_FIELDS |= {f"{facet}_tags": f"t{i}" for i, facet in enumerate(TAG_FACETS)}
_FIELDS |= {facet: f"v{i}" for i, facet in enumerate(VALUE_FACETS)}


def segment_metadata(project: Project, include_unusable: bool = False) -> dict[str, dict[str, Any]]:
    """One record per segment, keyed by segment id, ordered by id."""
    return dict(iter_segment_metadata(project, include_unusable))


def iter_segment_metadata(
    project: Project, include_unusable: bool = False, chunk: int = 4096
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(segment id, record) by id, built `chunk` segments at a time: a caller that writes
    each record as it comes holds the metadata as Arrow columns (tens of bytes a segment)
    and one chunk of Python records, never a dict of them all."""
    table = project.catalog.metadata_table(TAG_FACETS, VALUE_FACETS, include_unusable)
    for batch in table.to_batches(max_chunksize=chunk):
        for row in batch.to_pylist():
            yield row["id"], _seed_record(row)


def _seed_record(row: dict[str, Any]) -> dict[str, Any]:
    """A metadata_table row as the seed's record: tags as lists, tempo a number."""
    record = {field: row[column] for field, column in _FIELDS.items()}
    if record["tempo"] is not None:
        record["tempo"] = float(record["tempo"])
    return record


def write_metadata(
    project: Project, out: TextIO, fmt: str = "json", include_unusable: bool = False
) -> int:
    """Write every segment's record to `out` as it is read, in `fmt` ("json": one object
    keyed by segment id, indented by two; "jsonl": one {"id": ..., ...} per line); returns
    how many. The JSON is character for character `json.dumps(records, indent=2)`, written
    one record at a time, so time grows with the catalogue and no record waits in memory."""
    count = 0
    for segment_id, record in iter_segment_metadata(project, include_unusable):
        if fmt == "jsonl":
            out.write(json.dumps({"id": segment_id, **record}, ensure_ascii=False) + "\n")
        else:
            out.write(("{\n" if count == 0 else ",\n") + _json_entry(segment_id, record))
        count += 1
    if fmt == "json":
        out.write("\n}\n" if count else "{}\n")
    return count


# json's own string encoder (C): json.dumps with an indent runs the pure-Python encoder,
# which took most of an export's time.
_encode_string = json.encoder.encode_basestring


def _json_entry(segment_id: str, record: dict[str, Any]) -> str:
    """`"id": {record}` as json.dumps(records, indent=2, ensure_ascii=False) writes it."""
    fields = ",\n".join(
        f"    {_encode_string(key)}: {_json_value(value, '    ')}" for key, value in record.items()
    )
    return f"  {_encode_string(segment_id)}: " + (f"{{\n{fields}\n  }}" if record else "{}")


def _json_value(value: Any, indent: str) -> str:
    if isinstance(value, str):
        return _encode_string(value)
    if isinstance(value, list):
        inner = ",\n".join(f"{indent}  {_json_value(v, indent + '  ')}" for v in value)
        return f"[\n{inner}\n{indent}]" if value else "[]"
    if value is None:
        return "null"
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)  # what json writes for a float, without a call into it
    return json.dumps(value)  # other numbers, booleans, NaN: spelled as json spells them


# -- bringing existing labels in ---------------------------------------------------------------


@dataclass
class ImportSummary:
    """What `curator metadata import` matched, and each record it could not place."""

    records: int = 0
    segments: int = 0
    labels: int = 0
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # (record key, reason)


class MetadataRecord(BaseModel):
    """One record of a metadata file, checked: where it belongs and the labels it states.

    Tags are lists of tag names (a string is not a list of letters); tempo, key and scale
    are normalised; other keys (a seed's prompt, say) are carried along unread.
    """

    model_config = STRICT_RECORD

    id: str | None = None
    source: str | None = None
    filepath: str | None = None
    start: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    duration: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    instruments_tags: list[TagName] | None = None
    genres_tags: list[TagName] | None = None
    moods_tags: list[TagName] | None = None
    tempo: Tempo | None = None
    key: Key | None = None
    scale: Scale | None = None

    @model_validator(mode="after")
    def _no_other_facets(self) -> MetadataRecord:
        others = sorted(k for k in self.model_extra or {} if k.endswith("_tags"))
        if others:
            known = ", ".join(f"{f}_tags" for f in TAG_FACETS)
            raise ValueError(f"unknown tag list(s) {', '.join(others)} (known: {known})")
        return self

    def tags(self, facet: str) -> list[str]:
        return list(dict.fromkeys(getattr(self, f"{facet}_tags") or []))


def read_records(path: Path) -> list[tuple[str, MetadataRecord]]:
    """(key, record) pairs from a JSON object keyed by segment id or file, or from JSONL.

    Every record is checked; the first bad one raises InvalidInput naming the file, the
    record and the reason, so a file goes in whole or not at all.
    """
    text = read_input_text(path)
    raw = _raw_records(path, text)
    if not raw:
        raise InvalidInput(f"{path}: holds no records; nothing imported")
    return [(key, _record(path, key, value)) for key, value in raw]


def _raw_records(path: Path, text: str) -> list[tuple[str, Any]]:
    try:
        data = json.loads(text)
    except RecursionError:
        raise InvalidInput(f"{path}: JSON nested too deeply") from None
    except ValueError:
        data = None  # not one JSON document: JSON lines, one record per line
    if isinstance(data, dict) and not _one_line_record(text, data):
        return list(data.items())
    if data is not None and not isinstance(data, dict):
        raise InvalidInput(
            f"{path}: a JSON {type(data).__name__}; expected an object of records or JSON lines"
        )
    lines = enumerate(text.splitlines(), 1)
    return [_jsonl_record(path, number, line) for number, line in lines if line.strip()]


def _one_line_record(text: str, data: dict[str, Any]) -> bool:
    """A file of one JSON line that is a record itself (JSONL), not an object of records."""
    one_line = len(text.strip().splitlines()) == 1
    return one_line and bool(set(data) & set(MetadataRecord.model_fields))


def _jsonl_record(path: Path, number: int, line: str) -> tuple[str, Any]:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:
        reason = "JSON nested too deeply" if isinstance(exc, RecursionError) else exc
        raise InvalidInput(
            f"{path}: line {number}: neither a JSON object nor JSON lines ({reason})"
        ) from None
    if not isinstance(record, dict):
        return f"line {number}", record
    named = record.get("id") or record.get("filepath") or record.get("source")
    return (named if isinstance(named, str) else f"line {number}"), record


def _record(path: Path, key: str, value: Any) -> MetadataRecord:
    where = f"{path}: record {_shown_key(key)}"
    if not isinstance(value, dict):
        raise InvalidInput(f"{where}: must be a JSON object, got a {type(value).__name__}")
    return parsed(MetadataRecord, value, where)


def _shown_key(key: str) -> str:
    return repr(key) if len(key) <= 60 else repr(key[:57] + "...")


class SegmentIndex:
    """Finds the segments a record describes: by segment id, else by file and start."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.by_id = {r["id"]: r for r in rows}
        self.by_path: dict[str, list[dict[str, Any]]] = {}
        self.by_name: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            self.by_path.setdefault(row["source"], []).append(row)
            self.by_name.setdefault(Path(row["source"]).name, []).append(row)

    def match(self, key: str, record: MetadataRecord) -> tuple[list[str], str | None]:
        if key in self.by_id:
            return [key], None
        track = self._track(record.source or record.filepath or key)
        if track is None:
            return [], "no segment id or audio file of this name in the project"
        if record.start is None:
            return [r["id"] for r in track], None
        best = max(track, key=lambda r: _overlap(r, record))
        if _overlap(best, record) <= 0:
            return [], f"no segment of {Path(best['source']).name} overlaps {record.start:g} s"
        return [best["id"]], None

    def _track(self, name: str) -> list[dict[str, Any]] | None:
        if name in self.by_path:
            return self.by_path[name]
        same_name = self.by_name.get(Path(name).name, [])
        sources = {r["source"] for r in same_name}
        return same_name if len(sources) == 1 else None


def _overlap(row: dict[str, Any], record: MetadataRecord) -> float:
    start = record.start or 0.0
    end = start + (record.duration or row["duration"])
    return min(end, row["start"] + row["duration"]) - max(start, row["start"])


def record_labels(segment_id: str, record: MetadataRecord | dict[str, Any]) -> list[HumanLabel]:
    """The labels a seed-format record states: tags per facet, and tempo, key, scale."""
    if not isinstance(record, MetadataRecord):
        record = parsed(MetadataRecord, record, f"record {segment_id!r}")
    labels = [
        HumanLabel(segment_id, facet, tag) for facet in TAG_FACETS for tag in record.tags(facet)
    ]
    for facet in VALUE_FACETS:
        value = getattr(record, facet)
        if value is not None:
            labels.append(HumanLabel(segment_id, facet, facet, value=value))
    return labels


def import_metadata(project: Project, path: Path, source: str, human: bool) -> ImportSummary:
    """Bring labels from `path` in, as `source`'s model labels or (human) as people's.

    All or nothing: a record with a bad value, or a tag the vocabulary lacks, refuses the
    whole file before anything is written. Records that match no segment are reported.
    """
    source = _source_name(source)
    records = read_records(path)
    vocabulary = project.vocabulary()
    summary = ImportSummary()
    index = SegmentIndex(project.catalog.segment_rows(include_unusable=True))
    labels: list[HumanLabel] = []
    matched: set[str] = set()
    for key, record in records:
        summary.records += 1
        segment_ids, problem = index.match(key, record)
        if problem:
            summary.unmatched.append((key, problem))
        for segment_id in segment_ids:
            labels += _checked(path, key, vocabulary, record_labels(segment_id, record))
            matched.add(segment_id)
    summary.segments = len(matched)
    summary.labels = _store(project, labels, matched, source, human, path) if matched else 0
    return summary


def _checked(
    path: Path, key: str, vocabulary: Vocabulary, labels: list[HumanLabel]
) -> list[HumanLabel]:
    try:
        return checked_labels(vocabulary, labels)
    except InvalidInput as exc:
        raise InvalidInput(f"{path}: record {_shown_key(key)}: {exc}") from None


def _source_name(source: str) -> str:
    try:
        return tag_name(source, "--source")
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


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
