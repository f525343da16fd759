"""What the Explore page's map reads: usable segments' embeddings, and per segment its file,
tags, who labelled it and one tag's state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from curator.storage import Catalog
from curator.storage.review import ReviewQuery, _score_column
from curator.storage.sql import (
    LABEL_PIVOT,
    USABLE,
    VERIFIED_LABEL,
    effective_labels_sql,
    ids_and_matrix,
)

_USABLE_EMBEDDINGS = (
    "FROM embeddings e JOIN segments s ON s.id = e.segment_id JOIN tracks t "
    f"ON t.id = s.track_id WHERE e.model = ? AND {USABLE}"
)


# Tags, not tempo, key or scale ($values: the value facets).
_TAGS_ONLY = "NOT list_contains($values, facet)"


def usable_embeddings(catalog: Catalog, model: str) -> tuple[list[str], np.ndarray]:
    """Usable segments' ids and cached embeddings of `model`, in id order."""
    with catalog.connect() as con:
        return ids_and_matrix(
            con,
            f"SELECT e.segment_id, e.vector {_USABLE_EMBEDDINGS} ORDER BY e.segment_id",
            "vector",
            [model],
        )


def embeddings_stamp(catalog: Catalog, model: str) -> tuple[int, int, int]:
    """A cheap stamp of `model`'s usable embeddings (how many, latest run, which segments):
    it changes when a run adds or replaces them or a segment stops being usable."""
    with catalog.connect() as con:
        found = con.execute(
            "SELECT count(*), coalesce(max(e.run_id), 0), coalesce(bit_xor(hash(e.segment_id)), 0)"
            f" {_USABLE_EMBEDDINGS}",
            [model],
        ).fetchone()
    return (int(found[0]), int(found[1]), int(found[2])) if found else (0, 0, 0)


def labels_stamp(catalog: Catalog) -> tuple[int, str]:
    """A cheap stamp of the labels (how many, the latest change): it changes when a tagger
    run, a curator or an undo changes any."""
    with catalog.connect() as con:
        found = con.execute("SELECT count(*), max(updated_at)::VARCHAR FROM labels").fetchone()
    return (int(found[0]), str(found[1])) if found else (0, "")


def map_details(catalog: Catalog, value_facets: Sequence[str], top: int) -> dict[str, np.ndarray]:
    """Per usable segment, in id order, as columns: `id`, `source` (track path), `start`,
    `tags` (its first `top` effective tags, a person's first, then the best model scores,
    joined by ", ") and `label_source`: "verified" (a person verified a tag on it), "human"
    (a person's labels from a bulk relabel or an import only), "model" or "none". Tempo, key
    and scale (`value_facets`) are not tags."""
    sql = f"""
WITH effective AS ({effective_labels_sql(_TAGS_ONLY)}),
best AS (SELECT segment_id, facet, tag, max(score) AS score FROM labels
         WHERE source_kind = 'model' AND {_TAGS_ONLY} GROUP BY ALL),
tags AS (SELECT e.segment_id,
                array_to_string(list(e.tag ORDER BY b.score DESC NULLS FIRST, e.tag)[1:$top], ', ')
                AS tags
         FROM effective e LEFT JOIN best b USING (segment_id, facet, tag)
         WHERE e.present GROUP BY e.segment_id),
sources AS (SELECT segment_id, CASE WHEN bool_or({VERIFIED_LABEL}) THEN 'verified'
                WHEN bool_or(source_kind = 'human') THEN 'human' ELSE 'model' END AS label_source
            FROM labels WHERE {_TAGS_ONLY} GROUP BY segment_id)
SELECT s.id, t.path AS source, s.start, coalesce(g.tags, '') AS tags,
       coalesce(w.label_source, 'none') AS label_source
FROM segments s JOIN tracks t ON t.id = s.track_id
LEFT JOIN tags g ON g.segment_id = s.id LEFT JOIN sources w ON w.segment_id = s.id
WHERE {USABLE} ORDER BY s.id"""
    with catalog.connect() as con:
        found = con.execute(sql, {"values": list(value_facets), "top": top}).fetchnumpy()
    return {name: np.asarray(column) for name, column in found.items()}


def tag_presence(catalog: Catalog, facet: str, tag: str) -> dict[str, bool]:
    """Usable segment -> whether it has `facet`/`tag` (a person's label over the models')."""
    with catalog.connect() as con:
        found = con.execute(
            f"SELECT s.id, coalesce(p.human, p.model, false) FROM segments s JOIN tracks t "
            f"ON t.id = s.track_id LEFT JOIN ({LABEL_PIVOT}) p ON p.segment_id = s.id "
            f"WHERE {USABLE}",
            {"facet": facet, "tag": tag},
        ).fetchall()
    return {str(segment): bool(present) for segment, present in found}


def tag_scores(catalog: Catalog, facet: str, tag: str) -> dict[str, float]:
    """Segment -> its score for `facet`/`tag` in the latest run of a tagger that scores it
    (the score the review filters use); empty when no tagger scores the tag."""
    params: dict[str, Any] = {}
    score, join = _score_column(ReviewQuery(facet, tag), params)
    with catalog.connect() as con:
        found = con.execute(
            f"SELECT s.id, {score} FROM segments s {join} WHERE {score} IS NOT NULL", params
        ).fetchall()
    return {str(segment): float(value) for segment, value in found}
