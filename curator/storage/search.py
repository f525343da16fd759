"""What search reads from the catalogue: embedding versions, tag evidence, hit details.

The ranking itself lives in `curator.search`; this module only reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curator.storage import Catalog
from curator.storage.sql import USABLE, USABLE_IDS, effective_labels_sql, ids_and_matrix


def embedding_versions(catalog: Catalog, model: str) -> tuple[list[str], np.ndarray]:
    """Segment ids with a cached embedding of `model`, by id, and the run that wrote each.

    A merge deletes and re-inserts a segment's row with its run's id, so a vector can only
    have changed where the run id did: the index cache compares these, not the vectors.
    """
    with catalog.connect() as con:
        found = con.execute(
            "SELECT e.segment_id, coalesce(e.run_id, -1) AS run_id FROM embeddings e "
            "JOIN segments s ON s.id = e.segment_id WHERE e.model = ? ORDER BY e.segment_id",
            [model],
        ).fetchnumpy()
    return [str(s) for s in found["segment_id"]], np.asarray(found["run_id"], dtype=np.int64)


def embeddings_of(
    catalog: Catalog, model: str, segment_ids: Sequence[str]
) -> tuple[list[str], np.ndarray]:
    """The cached embeddings of `model` for these segments only, by id."""
    rows = (
        "SELECT segment_id, vector FROM embeddings WHERE model = ? "
        "AND list_contains(?, segment_id) ORDER BY segment_id"
    )
    with catalog.connect() as con:
        return ids_and_matrix(con, rows, "vector", [model, list(segment_ids)])


def usable_segment_ids(catalog: Catalog) -> set[str]:
    """Segments that go into training: track present, neither silent nor excluded."""
    with catalog.connect() as con:
        return {str(s) for s in con.execute(USABLE_IDS).fetchnumpy()["id"]}


def segment_track(catalog: Catalog, segment_id: str) -> tuple[str, list[str]] | None:
    """The track of `segment_id` and all its segments (None: no such segment)."""
    with catalog.connect() as con:
        row = con.execute("SELECT track_id FROM segments WHERE id = ?", [segment_id]).fetchone()
        if row is None:
            return None
        ids = con.execute(
            "SELECT id FROM segments WHERE track_id = ? ORDER BY id", [row[0]]
        ).fetchall()
    return str(row[0]), [str(i[0]) for i in ids]


def models_with_embedding(catalog: Catalog, segment_id: str) -> list[str]:
    """Embedding models caching `segment_id`, the most cached over the catalogue first."""
    with catalog.connect() as con:
        return [
            str(r[0])
            for r in con.execute(
                "SELECT model FROM embeddings WHERE model IN (SELECT model FROM embeddings "
                "WHERE segment_id = ?) GROUP BY model ORDER BY count(*) DESC, model",
                [segment_id],
            ).fetchall()
        ]


@dataclass
class TagEvidence:
    """What the catalogue knows of one (facet, tag) on usable segments.

    plugin: the tagger of the newest run that scores the tag (None: no run does);
    scores: each segment's newest score from that tagger's runs;
    human: each segment's label from a person (present or not), which wins over scores.
    """

    plugin: str | None
    scores: dict[str, float] = field(default_factory=dict)
    human: dict[str, bool] = field(default_factory=dict)


# Tag runs scoring (facet, tag) = $pair, each with the tag's position in its score lists
# (runs store one list per segment in runs.tags order).
_SCORING_RUNS = (
    "SELECT id, plugin, list_position(CAST(tags AS VARCHAR[][]), $pair) AS k FROM runs "
    "WHERE kind = 'tag' AND list_position(CAST(tags AS VARCHAR[][]), $pair) IS NOT NULL"
)

_SCORING_PLUGIN = f"SELECT plugin FROM ({_SCORING_RUNS}) ORDER BY id DESC LIMIT 1"

# Per usable segment, its newest score among the runs of the tagger whose newest run scores
# the tag: one tagger per tag, so scores on different scales never mix.
_TAG_SCORES = f"""
SELECT sc.segment_id, arg_max(sc.scores[r.k], r.id) AS score
FROM scores sc JOIN ({_SCORING_RUNS}) r ON r.id = sc.run_id
JOIN segments s ON s.id = sc.segment_id JOIN tracks t ON t.id = s.track_id
WHERE r.plugin = ({_SCORING_PLUGIN}) AND sc.scores[r.k] IS NOT NULL AND {USABLE}
GROUP BY sc.segment_id
"""

_HUMAN_LABELS = (
    f"SELECT segment_id, present FROM ({effective_labels_sql('facet = $facet AND tag = $tag')}) "
    f"WHERE source_kind = 'human' AND segment_id IN ({USABLE_IDS})"
)


def tag_evidence(catalog: Catalog, facet: str, tag: str) -> TagEvidence:
    """Scores and people's labels of `tag` (in `facet`) on usable segments."""
    pair = [facet, tag]
    with catalog.connect() as con:
        plugin = con.execute(_SCORING_PLUGIN, {"pair": pair}).fetchone()
        scores = con.execute(_TAG_SCORES, {"pair": pair}).fetchall()
        human = con.execute(_HUMAN_LABELS, {"facet": facet, "tag": tag}).fetchall()
    return TagEvidence(
        str(plugin[0]) if plugin else None,
        {str(s): float(v) for s, v in scores},
        {str(s): bool(p) for s, p in human},
    )


def hit_details(catalog: Catalog, segment_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per segment: its track's file, start, duration and present tags (a person's first,
    then by score)."""
    if not segment_ids:
        return {}
    where = "list_contains($ids, segment_id) AND present"
    with catalog.connect() as con:
        rows = con.execute(
            "SELECT s.id, t.path, s.start, s.duration FROM segments s "
            "JOIN tracks t ON t.id = s.track_id WHERE list_contains($ids, s.id)",
            {"ids": list(segment_ids)},
        ).fetchall()
        tags = con.execute(
            f"SELECT e.segment_id, list(e.tag ORDER BY e.source_kind = 'human' DESC, "
            f"l.score DESC NULLS LAST, e.tag) FROM ({effective_labels_sql(where)}) e "
            "LEFT JOIN (SELECT segment_id, facet, tag, max(score) AS score FROM labels "
            "GROUP BY ALL) l USING (segment_id, facet, tag) "
            "WHERE e.facet NOT IN ('tempo', 'key', 'scale') GROUP BY e.segment_id",
            {"ids": list(segment_ids)},
        ).fetchall()
    found = {
        str(i): {"source": p, "start": float(s), "duration": float(d), "tags": []}
        for i, p, s, d in rows
    }
    for segment_id, names in tags:
        if segment_id in found:
            found[segment_id]["tags"] = list(names)
    return found
