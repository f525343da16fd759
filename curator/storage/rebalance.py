"""What a rebalance reads: usable segments with their track and length, and their tags."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from curator.storage import Catalog
from curator.storage.sql import USABLE, effective_labels_sql

# Value facets become tags too, so that a rebalance can even out keys or tempos: the key or
# scale name itself, and tempo in bands of 10 BPM ("90-99 bpm").
_TAG_OF = (
    "CASE WHEN e.facet = 'tempo' THEN CAST(floor(TRY_CAST(e.value AS DOUBLE) / 10) * 10 AS INT)"
    " || '-' || CAST(floor(TRY_CAST(e.value AS DOUBLE) / 10) * 10 + 9 AS INT) || ' bpm' "
    "WHEN e.facet IN ('key', 'scale') THEN e.value ELSE e.tag END"
)


@dataclass(frozen=True)
class RebalancePool:
    """Usable segments by id (segment_ids, track_ids, durations) and their effective tags.

    Tags are (row, facet, tag) triples: `label_rows` indexes the segment arrays.
    """

    segment_ids: np.ndarray
    track_ids: np.ndarray
    durations: np.ndarray
    label_rows: np.ndarray
    label_facets: np.ndarray
    label_tags: np.ndarray


def rebalance_pool(catalog: Catalog, facets: Sequence[str]) -> RebalancePool:
    """Every usable segment and the present effective labels (human over model) of `facets`."""
    pool = (
        "SELECT s.id, s.track_id, s.duration, row_number() OVER (ORDER BY s.id) - 1 AS k "
        f"FROM segments s JOIN tracks t ON t.id = s.track_id WHERE {USABLE}"
    )
    with catalog.connect() as con:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _pool AS {pool}")
        segments = con.execute("SELECT id, track_id, duration FROM _pool ORDER BY k").fetchnumpy()
        labels = con.execute(
            f"SELECT p.k AS row, e.facet, {_TAG_OF} AS tag FROM ("
            + effective_labels_sql("list_contains($facets, facet)")
            + ") e JOIN _pool p ON p.id = e.segment_id WHERE e.present AND "
            f"{_TAG_OF} IS NOT NULL ORDER BY p.k, e.facet, tag",
            {"facets": list(facets)},
        ).fetchnumpy()
    return RebalancePool(
        np.asarray(segments["id"], dtype=object),
        np.asarray(segments["track_id"], dtype=object),
        np.asarray(segments["duration"], dtype=float),
        np.asarray(labels["row"], dtype=np.int64),
        np.asarray(labels["facet"], dtype=object),
        np.asarray(labels["tag"], dtype=object),
    )
