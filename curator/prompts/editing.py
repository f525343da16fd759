"""Curators' prompts and the Prompts page: an edit wins over every writer's, and can be reverted.

Also what the page and `curator prompts --show` read: the table of segments with the prompt
in use, and every version of one segment's prompt.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curator.catalogue.metadata import TAG_FACETS, segment_metadata
from curator.curation.review import current_curator, effective_tags
from curator.errors import CuratorError
from curator.project import Project
from curator.prompts.checking import tag_lists, text_problems
from curator.storage import prompts as stored
from curator.storage.prompts import (
    HUMAN,
    PromptRow,
    delete_human_prompt,
    prompts_in_use,
    read_written_from,
    save_prompts,
)
from curator.storage.selections import selection_items

if TYPE_CHECKING:
    from curator.prompts.writing import PromptSummary


def edit_prompt(project: Project, segment_id: str, text: str, actor: str | None = None) -> None:
    """Store a curator's prompt for a segment, under `actor` (default: `current_curator()`);
    it wins over every writer's."""
    text = text.strip()
    problems = text_problems(text)
    if problems:
        raise CuratorError(f"prompt for {segment_id} not saved: {'; '.join(problems)}")
    written_from = tags_now(project, segment_id)
    row = PromptRow(segment_id, HUMAN, text, actor=actor or current_curator())
    save_prompts(project.catalog, [replace(row, written_from=written_from)])


def tags_now(project: Project, segment_id: str) -> dict[str, list[str]]:
    """The segment's effective tags per facet (what a prompt written now would describe)."""
    return effective_tags({"labels": project.catalog.labels(segment_id)})


def prompt_staleness(
    written_from: dict[str, list[str]] | str | None, now: dict[str, list[str]]
) -> str | None:
    """How the tags changed since a prompt was written ("+drums/snare, -moods/dark"), or
    None when they did not, or when what it was written from was never recorded."""
    if written_from is None:
        return None
    if isinstance(written_from, str):
        written_from = read_written_from(written_from) or {}
    # A prompt is written from the metadata's tag facets (catalogue.metadata.TAG_FACETS).
    before = {(f, t) for f, tags in written_from.items() for t in tags if f in TAG_FACETS}
    after = {(f, t) for f, tags in now.items() for t in tags if f in TAG_FACETS}
    if before == after:
        return None
    return ", ".join(
        [f"+{f}/{t}" for f, t in sorted(after - before)]
        + [f"-{f}/{t}" for f, t in sorted(before - after)]
    )


def row_prompt_staleness(row: dict[str, Any]) -> str | None:
    """prompt_staleness of a review row's prompt (curation.review.review_page rows)."""
    if not row.get("prompt"):
        return None
    return prompt_staleness(row.get("prompt_written_from"), effective_tags(row))


def rewrite_prompt(project: Project, segment_id: str, actor: str | None = None) -> PromptSummary:
    """Write the segment's prompt again from its current tags, with the writer of the prompt
    in use (a curator's edit, which a writer cannot redo, is replaced by the default
    writer's prompt)."""
    from curator.prompts.writing import DEFAULT_WRITER, write_prompts

    in_use = prompts_in_use(project.catalog, [segment_id]).get(segment_id)
    writer = DEFAULT_WRITER
    if in_use is not None and in_use.writer != HUMAN:
        writer = in_use.writer.split("@")[0]
    summary = write_prompts(project, [segment_id], writer)
    if in_use is not None and in_use.writer == HUMAN and not summary.failed:
        revert_prompt(project, segment_id)
    return summary


def revert_prompt(project: Project, segment_id: str) -> bool:
    """Drop the curator's prompt for a segment, so the writers' is used again."""
    return delete_human_prompt(project.catalog, segment_id)


def prompt_versions(project: Project, segment_id: str) -> list[dict[str, Any]]:
    """Every prompt stored for a segment (each writer's and the curator's), newest first,
    with `in_use` true for the one training uses (a curator's edit, else the newest)."""
    versions = [dict(version) for version in stored.prompt_versions(project.catalog, segment_id)]
    in_use = prompts_in_use(project.catalog, [segment_id]).get(segment_id)
    for version in versions:
        version["in_use"] = in_use is not None and version["writer"] == in_use.writer
    return versions


def selection_segment_ids(project: Project, selection: str) -> list[str]:
    """The segments of a named selection (UnknownSelection names the known ones)."""
    return [item.segment_id for item in selection_items(project.catalog, selection)]


def prompt_table(
    project: Project,
    selection: str | None = None,
    text: str | None = None,
    tag: str | None = None,
) -> list[dict[str, Any]]:
    """Segments with their metadata and the prompt in use (who wrote it: `writer`, and for a
    curator's edit `actor`), filtered by selection, by a tag of any facet, and by text in the
    prompt, segment id or file name. The rows are shared between calls: read, never change."""
    table = _whole_table(project, include_unusable=selection is not None)
    ids = selection_segment_ids(project, selection) if selection else list(table)
    rows = [table[sid] for sid in ids if sid in table]
    if tag:
        rows = [r for r in rows if tag in r["tags"]]
    if text:
        needle = text.lower()
        rows = [
            r
            for r in rows
            if needle in (r["prompt"] or "").lower()
            or needle in r["id"]
            or needle in r["source"].lower()
        ]
    return rows


# The Prompts page asks for the table on every rerun (each click); it is built again only
# when the metadata or the prompts changed, which two content fingerprints tell in ~50 ms.
# Per catalogue file and kind (usable segments, or all), the latest table only.
_TABLES: dict[tuple[Path, bool], tuple[str, dict[str, dict[str, Any]]]] = {}


def _whole_table(project: Project, include_unusable: bool) -> dict[str, dict[str, Any]]:
    """Every segment's row of prompt_table by id, from the cache while still current."""
    catalog = project.catalog
    version = f"{catalog.metadata_version()}/{stored.prompts_version(catalog)}"
    cached = _TABLES.get((catalog.path, include_unusable))
    if cached is not None and cached[0] == version:
        return cached[1]
    records = segment_metadata(project, include_unusable)
    in_use = prompts_in_use(catalog)
    table = {sid: _table_row(sid, record, in_use.get(sid)) for sid, record in records.items()}
    _TABLES[(catalog.path, include_unusable)] = (version, table)
    return table


def _table_row(segment_id: str, record: dict[str, Any], prompt: PromptRow | None) -> dict:
    return {
        "id": segment_id,
        "source": record["source"],
        "start": record["start"],
        "duration": record["duration"],
        "tags": [t for tags in tag_lists(record).values() for t in tags],
        "tempo": record.get("tempo"),
        "key": " ".join(str(record[k]) for k in ("key", "scale") if record.get(k)) or None,
        "prompt": prompt.text if prompt else None,
        "writer": prompt.writer if prompt else None,
        "actor": prompt.actor if prompt else None,
        "stale": prompt_staleness(prompt.written_from, tag_lists(record)) if prompt else None,
    }
