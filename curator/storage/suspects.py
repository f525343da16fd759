"""What the suspicion queue and the learned tagger read and keep: label cells, queue items."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from curator.storage import Catalog
from curator.storage.review import ReviewQuery, attach_details, position_in, review_sql
from curator.storage.sql import USABLE, VERIFIED_LABEL, count, dicts, page, scalar


@dataclass(frozen=True)
class LabelCells:
    """Every tag label of some facets, one entry per (segment, facet, tag) that has one.

    human: the person's decision (1 present, 0 rejected, -1 none), of any origin.
    verified: whether a person verified the cell (sql.VERIFIED_LABEL: they decided this tag
      on this segment; a bulk relabel or an import does not verify).
    model: whether any model says present; sources: the plugins that say so, "a,b".
    """

    segment_id: np.ndarray
    facet: np.ndarray
    tag: np.ndarray
    human: np.ndarray
    verified: np.ndarray
    model: np.ndarray
    sources: np.ndarray


@dataclass(frozen=True)
class SuspectRow:
    """One stored queue item (see db/migrations/004_suspects.sql)."""

    segment_id: str
    facet: str
    tag: str
    present: bool
    score: float
    probability: float | None
    reason: str
    embedding: str


def embedding_models(catalog: Catalog) -> list[dict[str, Any]]:
    """Each embedding model with cached embeddings and how many usable segments have one."""
    with catalog.connect() as con:
        return dicts(
            con.execute(
                "SELECT e.model, count(*) AS segments FROM embeddings e JOIN segments s ON "
                f"s.id = e.segment_id JOIN tracks t ON t.id = s.track_id WHERE {USABLE} "
                "GROUP BY e.model ORDER BY segments DESC, e.model"
            )
        )


def segment_tracks(catalog: Catalog) -> dict[str, str]:
    """Segment id -> track id, for keeping a track's segments in one cross-validation fold."""
    with catalog.connect() as con:
        return dict(con.execute("SELECT id, track_id FROM segments").fetchall())


def label_cells(catalog: Catalog, facets: Sequence[str]) -> LabelCells:
    """The human and model labels of `facets` (tags only, not tempo/key/scale), as columns."""
    with catalog.connect() as con:
        found = con.execute(
            "SELECT segment_id, facet, tag, "
            "coalesce(bool_or(present) FILTER (WHERE source_kind = 'human')::INTEGER, -1) "
            f"AS human, coalesce(bool_or({VERIFIED_LABEL}), false) AS verified, "
            "coalesce(bool_or(present) FILTER (WHERE source_kind = 'model'), false) "
            "AS model, coalesce(string_agg(DISTINCT split_part(source, '@', 1), ',') FILTER "
            "(WHERE source_kind = 'model' AND present), '') AS sources "
            "FROM labels WHERE list_contains($facets, facet) GROUP BY ALL",
            {"facets": list(facets)},
        ).fetchnumpy()
    return LabelCells(
        np.asarray(found["segment_id"], dtype=object),
        np.asarray(found["facet"], dtype=object),
        np.asarray(found["tag"], dtype=object),
        np.asarray(found["human"], dtype=np.int8),
        np.asarray(found["verified"], dtype=bool),
        np.asarray(found["model"], dtype=bool),
        np.asarray(found["sources"], dtype=object),
    )


def save_suspects(
    catalog: Catalog, pairs: Sequence[tuple[str, str]], rows: Sequence[SuspectRow]
) -> None:
    """Replace the stored queue items of the tags in `pairs` with `rows`, in one transaction."""
    columns = {
        "segment_id": np.array([r.segment_id for r in rows], dtype=object),
        "facet": np.array([r.facet for r in rows], dtype=object),
        "tag": np.array([r.tag for r in rows], dtype=object),
        "present": np.array([r.present for r in rows], dtype=bool),
        "score": np.array([r.score for r in rows], dtype=float),
        "probability": np.array([r.probability for r in rows], dtype=float),
        "reason": np.array([r.reason for r in rows], dtype=object),
        "embedding": np.array([r.embedding for r in rows], dtype=object),
    }
    with catalog.transaction() as con:
        con.execute(
            "DELETE FROM suspects WHERE list_contains($pairs, [facet, tag])",
            {"pairs": [list(p) for p in pairs]},
        )
        if rows:
            con.register("_suspect_rows", columns)
            con.execute(
                "INSERT INTO suspects (segment_id, facet, tag, present, score, probability, "
                "reason, embedding) SELECT segment_id::VARCHAR, facet::VARCHAR, tag::VARCHAR, "
                "present, score, probability, reason::VARCHAR, embedding::VARCHAR "
                "FROM _suspect_rows"
            )


# Stored items still open: the segment is usable and no person has verified the cell since
# (a bulk relabel or import since leaves it open: it verifies nothing).
_OPEN_SUSPECTS = (
    "SELECT q.* FROM suspects q JOIN segments s ON s.id = q.segment_id JOIN tracks t ON "
    f"t.id = s.track_id WHERE {USABLE} AND ($facet IS NULL OR q.facet = $facet) AND "
    "($tag IS NULL OR q.tag = $tag) AND NOT EXISTS (SELECT 1 FROM labels h WHERE "
    f"{VERIFIED_LABEL} AND h.segment_id = q.segment_id AND h.facet = q.facet "
    "AND h.tag = q.tag)"
)


def stored_suspects(
    catalog: Catalog, facet: str | None = None, tag: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Open queue items, most suspicious first."""
    with catalog.connect() as con:
        return dicts(
            con.execute(
                f"{_OPEN_SUSPECTS} ORDER BY q.score DESC, q.segment_id, q.facet, q.tag "
                "LIMIT $limit",  # LIMIT NULL: every item
                {"facet": facet, "tag": tag, "limit": limit},
            )
        )


def _suspects_ranked(
    query: ReviewQuery, facet: str | None, tag: str | None
) -> tuple[str, dict[str, Any]]:
    """The segments `query` matches with open queue items, worst first, with positions."""
    sql, params = review_sql(query)
    params |= {"facet": facet, "tag": tag}
    worst = (
        "SELECT segment_id, max(score) AS suspicion FROM (" + _OPEN_SUSPECTS + ") "
        "GROUP BY segment_id"
    )
    order = "w.suspicion DESC, m.id"
    return (
        f"SELECT m.* REPLACE (row_number() OVER (ORDER BY {order}) - 1 AS position), "
        f"w.suspicion, count(*) OVER () AS queued FROM ({sql}) m JOIN ({worst}) w "
        f"ON w.segment_id = m.id ORDER BY {order}",
        params,
    )


def review_suspects(
    catalog: Catalog,
    query: ReviewQuery,
    facet: str | None,
    tag: str | None,
    offset: int,
    limit: int,
) -> tuple[int, list[dict[str, Any]]]:
    """Segments `query` matches with open queue items (of `facet`/`tag` if given), worst
    first, one page of them; each row has the review details plus `suspects`, worst first.
    """
    ranked, params = _suspects_ranked(query, facet, tag)
    with catalog.connect() as con:
        rows = dicts(con.execute(*page(ranked, params, offset, limit)))
        total = rows[0]["queued"] if rows else count(con, ranked, params)
        attach_details(con, rows)
        _attach_suspects(con, rows, facet, tag)
    return total, rows


def suspects_position(
    catalog: Catalog, query: ReviewQuery, facet: str | None, tag: str | None, segment_id: str
) -> int | None:
    """Where `segment_id` stands in the suspicion queue review_suspects pages (None: not in it)."""
    ranked, params = _suspects_ranked(query, facet, tag)
    with catalog.connect() as con:
        return position_in(con, ranked, params, segment_id)


def suspects_computed(catalog: Catalog, facet: str | None, tag: str | None) -> bool:
    """Whether the suspicion queue was ever computed for `facet`/`tag` (any, if None)."""
    with catalog.connect() as con:
        return bool(
            scalar(
                con,
                "SELECT count(*) FROM suspects WHERE ($facet IS NULL OR facet = $facet) "
                "AND ($tag IS NULL OR tag = $tag)",
                {"facet": facet, "tag": tag},
            )
        )


def _attach_suspects(
    con: Any, rows: list[dict[str, Any]], facet: str | None, tag: str | None
) -> None:
    if not rows:
        return
    items = dicts(
        con.execute(
            f"SELECT * FROM ({_OPEN_SUSPECTS}) WHERE list_contains($ids, segment_id) "
            "ORDER BY score DESC",
            {"facet": facet, "tag": tag, "ids": [r["id"] for r in rows]},
        )
    )
    for row in rows:
        row["suspects"] = [x for x in items if x["segment_id"] == row["id"]]


def _in_order(query: ReviewQuery) -> tuple[str, dict[str, Any]]:
    sql, params = review_sql(query)
    order = "r.rank_value DESC, m.id"
    return (
        f"SELECT m.* REPLACE (row_number() OVER (ORDER BY {order}) - 1 AS position), "
        f"r.rank_value, count(*) OVER () AS ranked FROM ({sql}) m JOIN _ranking r "
        f"ON r.segment_id::VARCHAR = m.id ORDER BY {order}",
        params,
    )


def _register_ranking(con: Any, ranking: dict[str, float]) -> None:
    con.register(
        "_ranking",
        {
            "segment_id": np.array(list(ranking), dtype=object),
            "rank_value": np.array(list(ranking.values()), dtype=float),
        },
    )


def review_in_order(
    catalog: Catalog, query: ReviewQuery, ranking: dict[str, float], offset: int, limit: int
) -> tuple[int, list[dict[str, Any]]]:
    """Segments `query` matches that `ranking` holds, highest rank value first, one page."""
    ranked, params = _in_order(query)
    with catalog.connect() as con:
        _register_ranking(con, ranking)
        rows = dicts(con.execute(*page(ranked, params, offset, limit)))
        total = rows[0]["ranked"] if rows else count(con, ranked, params)
        attach_details(con, rows)
    return total, rows


def in_order_position(
    catalog: Catalog, query: ReviewQuery, ranking: dict[str, float], segment_id: str
) -> int | None:
    """Where `segment_id` stands in the queue review_in_order pages (None: not in it)."""
    ranked, params = _in_order(query)
    with catalog.connect() as con:
        _register_ranking(con, ranking)
        return position_in(con, ranked, params, segment_id)


def embedding_plugin(catalog: Catalog, model: str) -> str | None:
    """The plugin whose latest run cached embeddings of `model`."""
    with catalog.connect() as con:
        row = con.execute(
            "SELECT r.plugin FROM embeddings e JOIN runs r ON r.id = e.run_id WHERE e.model = ? "
            "GROUP BY r.plugin ORDER BY max(r.id) DESC LIMIT 1",
            [model],
        ).fetchone()
    return str(row[0]) if row else None
