"""Training prompts per segment: written by prompt-writer plugins or by a person."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from curator.storage import Catalog
from curator.storage.sql import (
    PROMPT_IN_USE_ORDER,
    insert_columns,
    register_segments,
    scalar,
)

HUMAN = "human"


@dataclass(frozen=True)
class PromptRow:
    """One prompt; `writer` is "name@version" for a plugin, "human" for a curator's edit.

    input_key: what the prompt was written from (see curator.prompts.writing.input_key); None for
      a curator's edit.
    actor: the curator who saved an edit; None for a writer's prompt (`writer` names it).
    written_from: the segment's tags when the prompt was written or saved, {facet: [tags]};
      None where not known (prompts stored before this was recorded).
    """

    segment_id: str
    writer: str
    text: str
    run_id: int | None = None
    input_key: str | None = None
    actor: str | None = None
    written_from: dict[str, list[str]] | None = None

    @property
    def source_kind(self) -> str:
        return "human" if self.writer == HUMAN else "model"


@dataclass(frozen=True)
class PromptOutcome:
    """What happened to one segment in a prompt-writing run: done, or failed and why."""

    segment_id: str
    status: str  # done | failed
    reason: str | None = None


def _prompt_columns(rows: Sequence[PromptRow]) -> dict[str, list[object]]:
    return {
        "segment_id": [r.segment_id for r in rows],
        "writer": [r.writer for r in rows],
        "text": [r.text for r in rows],
        "source_kind": [r.source_kind for r in rows],
        "run_id": [r.run_id for r in rows],
        "input_key": [r.input_key for r in rows],
        "actor": [r.actor for r in rows],
        "written_from": [_json_or_none(r.written_from) for r in rows],
    }


def _json_or_none(value: object) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


_REPLACE_PROMPT = (
    "ON CONFLICT (segment_id, writer) DO UPDATE SET text = excluded.text, "
    "run_id = excluded.run_id, input_key = excluded.input_key, actor = excluded.actor, "
    "written_from = excluded.written_from, created_at = now()"
)


def save_prompts(catalog: Catalog, rows: Sequence[PromptRow]) -> None:
    """Store prompts, replacing any earlier one by the same writer for the same segment."""
    with catalog.transaction() as con:
        insert_columns(con, "prompts", _prompt_columns(rows), _REPLACE_PROMPT)


def save_prompt_batch(
    catalog: Catalog,
    rows: Sequence[PromptRow],
    run_id: int | None,
    outcomes: Sequence[PromptOutcome],
    cache: bool = True,
) -> None:
    """One batch of a writing run in one transaction: the prompts, their cache entries
    (unless `cache` is off) and each segment's outcome in the run's items."""
    with catalog.transaction() as con:
        insert_columns(con, "prompts", _prompt_columns(rows), _REPLACE_PROMPT)
        if cache:
            keyed = [r for r in rows if r.input_key]
            insert_columns(
                con,
                "prompt_cache",
                {
                    "input_key": [r.input_key for r in keyed],
                    "writer": [r.writer for r in keyed],
                    "text": [r.text for r in keyed],
                },
                "ON CONFLICT (input_key) DO UPDATE SET text = excluded.text, created_at = now()",
            )
        if run_id is not None:
            insert_columns(
                con,
                "run_items",
                {
                    "run_id": [run_id] * len(outcomes),
                    "segment_id": [o.segment_id for o in outcomes],
                    "status": [o.status for o in outcomes],
                    "reason": [o.reason for o in outcomes],
                },
                "ON CONFLICT (run_id, segment_id) DO UPDATE SET status = excluded.status, "
                "reason = excluded.reason",
            )


def stored_input_keys(catalog: Catalog, writer: str) -> dict[str, str]:
    """segment id -> input key of the prompt `writer` ("name@version") stored for it."""
    with catalog.connect() as con:
        rows = con.execute(
            "SELECT segment_id, input_key FROM prompts WHERE writer = ? AND input_key IS NOT NULL",
            [writer],
        ).fetchall()
    return dict(rows)


def prompts_version(
    catalog: Catalog, writer: str | None = None, segment_ids: Sequence[str] | None = None
) -> str:
    """A fingerprint of the stored prompts (only `writer`'s, "name@version", and only those
    of `segment_ids`, if given): equal fingerprints, the same prompts. About 10 ms at
    40,000 segments."""
    where = "($writer IS NULL OR writer = $writer)"
    with catalog.connect() as con:
        if segment_ids is not None:
            register_segments(con, segment_ids)
            where += " AND segment_id IN (SELECT segment_id FROM _segments)"
        found = scalar(
            con,
            "SELECT bit_xor(hash(segment_id, writer, text, input_key, actor, written_from, "
            f"created_at)) FROM prompts WHERE {where}",
            {"writer": writer},
        )
    return str(found)


def prompt_check(catalog: Catalog, job_key: str) -> tuple[str, int] | None:
    """(fingerprint, segments) of the last time every prompt of the job was current."""
    with catalog.connect() as con:
        found = con.execute(
            "SELECT fingerprint, segments FROM prompt_checks WHERE job_key = ?", [job_key]
        ).fetchone()
    return (str(found[0]), int(found[1])) if found else None


def save_prompt_check(catalog: Catalog, job_key: str, fingerprint: str, segments: int) -> None:
    """Record that every prompt of the job was current at `fingerprint`."""
    with catalog.transaction() as con:
        con.execute(
            "INSERT INTO prompt_checks (job_key, fingerprint, segments) VALUES (?, ?, ?) "
            "ON CONFLICT (job_key) DO UPDATE SET fingerprint = excluded.fingerprint, "
            "segments = excluded.segments, checked_at = now()",
            [job_key, fingerprint, segments],
        )


def cached_prompts(catalog: Catalog, input_keys: Sequence[str]) -> dict[str, str]:
    """input key -> the answer a writer gave for it before, for the keys that have one."""
    if not input_keys:
        return {}
    with catalog.connect() as con:
        con.register("_wanted_keys", {"input_key": np.asarray(input_keys, dtype=str)})
        rows = con.execute(
            "SELECT c.input_key, c.text FROM prompt_cache c "
            "SEMI JOIN _wanted_keys w ON w.input_key = c.input_key"
        ).fetchall()
    return dict(rows)


def effective_prompts(
    catalog: Catalog, segment_ids: Sequence[str] | None = None, writer: str | None = None
) -> dict[str, str]:
    """segment id -> the prompt training uses: a curator's edit wins over any writer's.

    Among model prompts the newest wins, or only `writer`'s ("name", any version) if given.
    """
    return {
        segment_id: row.text
        for segment_id, row in prompts_in_use(catalog, segment_ids, writer).items()
    }


def prompts_in_use(
    catalog: Catalog, segment_ids: Sequence[str] | None = None, writer: str | None = None
) -> dict[str, PromptRow]:
    """segment id -> the prompt in use with who wrote it (as effective_prompts chooses)."""
    where = "true"
    with catalog.connect() as con:
        if segment_ids is not None:
            register_segments(con, segment_ids)
            where = "segment_id IN (SELECT segment_id FROM _segments)"
        model_ok = "split_part(writer, '@', 1) = $writer" if writer else "true"
        rows = con.execute(
            "SELECT segment_id, arg_max(struct_pack(writer, text, run_id, input_key, actor, "
            "written_from), "
            f"{PROMPT_IN_USE_ORDER}) "
            f"FROM prompts WHERE {where} AND (source_kind = 'human' OR {model_ok}) "
            "GROUP BY segment_id",
            {"writer": writer} if writer else {},
        ).fetchall()
    return {
        segment_id: PromptRow(
            segment_id, **(chosen | {"written_from": read_written_from(chosen["written_from"])})
        )
        for segment_id, chosen in rows
    }


def read_written_from(stored: str | None) -> dict[str, list[str]] | None:
    """A prompt's `written_from` as stored (JSON text), read back."""
    return None if stored is None else dict(json.loads(stored))


def prompt_versions(catalog: Catalog, segment_id: str) -> list[dict[str, object]]:
    """Every prompt stored for one segment (each writer's and the curator's), newest first;
    `actor` names the curator of an edit."""
    with catalog.connect() as con:
        rows = con.execute(
            "SELECT writer, text, source_kind, run_id, actor, created_at FROM prompts "
            "WHERE segment_id = ? ORDER BY source_kind = 'human' DESC, created_at DESC",
            [segment_id],
        ).fetchall()
    names = ("writer", "text", "source_kind", "run_id", "actor", "created_at")
    return [dict(zip(names, row, strict=True)) for row in rows]


def delete_human_prompt(catalog: Catalog, segment_id: str) -> bool:
    """Drop a curator's edit so the writers' prompt is used again; False if there was none."""
    with catalog.transaction() as con:
        found = con.execute(
            "DELETE FROM prompts WHERE segment_id = ? AND writer = ? RETURNING segment_id",
            [segment_id, HUMAN],
        ).fetchall()
    return bool(found)
