"""Training prompts per segment: written by prompt-writer plugins or by a person."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from curator.storage import Catalog, _insert, _register_segments

HUMAN = "human"


@dataclass(frozen=True)
class PromptRow:
    """One prompt; `writer` is "name@version" for a plugin, "human" for a curator's edit."""

    segment_id: str
    writer: str
    text: str
    run_id: int | None = None

    @property
    def source_kind(self) -> str:
        return "human" if self.writer == HUMAN else "model"


def save_prompts(catalog: Catalog, rows: Sequence[PromptRow]) -> None:
    """Store prompts, replacing any earlier one by the same writer for the same segment."""
    records = [
        {
            "segment_id": r.segment_id,
            "writer": r.writer,
            "text": r.text,
            "source_kind": r.source_kind,
            "run_id": r.run_id,
        }
        for r in rows
    ]
    with catalog.transaction() as con:
        _insert(
            con,
            "prompts",
            records,
            "ON CONFLICT (segment_id, writer) DO UPDATE SET text = excluded.text, "
            "run_id = excluded.run_id, created_at = now()",
        )


def effective_prompts(
    catalog: Catalog, segment_ids: Sequence[str] | None = None, writer: str | None = None
) -> dict[str, str]:
    """segment id -> the prompt training uses: a curator's edit wins over any writer's.

    Among model prompts the newest wins, or only `writer`'s ("name", any version) if given.
    """
    where = "true"
    with catalog.connect() as con:
        if segment_ids is not None:
            _register_segments(con, segment_ids)
            where = "segment_id IN (SELECT segment_id FROM _segments)"
        model_ok = "split_part(writer, '@', 1) = $writer" if writer else "true"
        rows = con.execute(
            f"SELECT segment_id, arg_max(text, (source_kind = 'human', created_at)) "
            f"FROM prompts WHERE {where} AND (source_kind = 'human' OR {model_ok}) "
            "GROUP BY segment_id",
            {"writer": writer} if writer else {},
        ).fetchall()
    return dict(rows)


def prompt_versions(catalog: Catalog, segment_id: str) -> list[dict[str, object]]:
    """Every prompt stored for one segment (each writer's and the curator's), newest first."""
    with catalog.connect() as con:
        rows = con.execute(
            "SELECT writer, text, source_kind, run_id, created_at FROM prompts "
            "WHERE segment_id = ? ORDER BY source_kind = 'human' DESC, created_at DESC",
            [segment_id],
        ).fetchall()
    names = ("writer", "text", "source_kind", "run_id", "created_at")
    return [dict(zip(names, row, strict=True)) for row in rows]
