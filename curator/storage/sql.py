"""SQL fragments and helpers the storage modules share; values always go in as parameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# A segment goes into training when its track is present and it is neither silent nor
# excluded by a curator (s = segments, t = tracks).
USABLE = "t.status = 'ingested' AND NOT s.silent AND NOT s.excluded"


USABLE_IDS = f"SELECT s.id FROM segments s JOIN tracks t ON t.id = s.track_id WHERE {USABLE}"


def effective_labels_sql(where: str = "true") -> str:
    """Human over model: one row per (segment, facet, tag) with a label matching `where`.

    The filter goes into both branches so that a query about one facet reads only it.
    """
    return f"""
WITH human AS (
    SELECT segment_id, facet, tag, present, value, 'human' AS source_kind
    FROM labels WHERE source_kind = 'human' AND {where}),
model AS (
    SELECT segment_id, facet, tag, bool_or(present) AS present,
           arg_max(value, coalesce(score, 0)) AS value, 'model' AS source_kind
    FROM labels WHERE source_kind = 'model' AND {where} GROUP BY segment_id, facet, tag)
SELECT * FROM (
    SELECT * FROM human
    UNION ALL
    SELECT m.* FROM model m ANTI JOIN human h USING (segment_id, facet, tag))
"""


EFFECTIVE_LABELS = effective_labels_sql()


# Which of a segment's stored prompts training uses: a curator's edit, else the newest.
PROMPT_IN_USE_ORDER = "(source_kind = 'human', created_at)"


# A label a person verified: they saw that tag on that segment and accepted or rejected it
# (origin 'review'; bulk relabels and imports win over models but verify nothing). The one
# definition the review filters, the suspicion queue and the learned tagger share.
VERIFIED_LABEL = "(source_kind = 'human' AND origin = 'review')"


# Per (segment, facet, tag): the person's label, the models' (any says present), and whether
# a person verified it.
LABEL_PIVOT = (
    "SELECT segment_id, tag, bool_or(present) FILTER (WHERE source_kind = 'human') AS human, "
    "bool_or(present) FILTER (WHERE source_kind = 'model') AS model, "
    f"bool_or({VERIFIED_LABEL}) AS verified FROM labels "
    "WHERE ($facet IS NULL OR facet = $facet) AND ($tag IS NULL OR tag = $tag) "
    "GROUP BY segment_id, facet, tag"
)


def ids_and_matrix(
    con: Any, rows: str, column: str, params: Sequence[Any]
) -> tuple[list[str], np.ndarray]:
    # Unnesting the lists into one float column is ten times faster than fetching 40,000
    # Python lists and stacking them.
    found = con.execute(f"SELECT segment_id FROM ({rows})", params).fetchnumpy()
    ids = [str(i) for i in found["segment_id"]]
    flat = con.execute(f"SELECT unnest({column}) AS v FROM ({rows})", params).fetchnumpy()["v"]
    if not ids:
        return ids, np.zeros((0, 0), dtype=np.float32)
    # NULL elements (a tag the tagger could not score) arrive masked; NaN keeps "no score"
    # apart from "scored 0", which would read as confidently absent.
    values = np.ma.filled(np.ma.asarray(flat, dtype=np.float32), np.nan)
    return ids, values.reshape(len(ids), -1)


def page(
    sql: str, params: Mapping[str, Any], offset: int, limit: int
) -> tuple[str, dict[str, Any]]:
    """`sql` cut to one page, the bounds passed as parameters like every other value."""
    return f"{sql} LIMIT $limit OFFSET $offset", {**params, "limit": limit, "offset": offset}


def count(con: Any, sql: str, params: Mapping[str, Any]) -> int:
    return int(scalar(con, f"SELECT count(*) FROM ({sql})", params))


def dicts(cursor: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def register_segments(con: Any, segment_ids: Sequence[str]) -> None:
    con.register("_segment_ids", {"segment_id": np.asarray(segment_ids, dtype=str)})
    con.execute("CREATE OR REPLACE TEMP TABLE _segments AS SELECT * FROM _segment_ids")


def register_columns(con: Any, name: str, columns: Mapping[str, Any]) -> str:
    """Make numpy columns queryable as `name`; returns the SELECT that reads them.

    A 2-D array becomes a FLOAT[] column, one list per row (DuckDB scans 1-D arrays only).
    Column names go into the SELECT, so they must be the code's own (a table's columns),
    never a value read from a user or a file.
    """
    flat, selects = {}, []
    for column, values in columns.items():
        array = np.asarray(values)
        if array.ndim == 2:
            parts = [f"{column}__{i}" for i in range(array.shape[1])]
            flat.update({p: np.ascontiguousarray(array[:, i]) for i, p in enumerate(parts)})
            selects.append(f"[{', '.join(parts)}]::FLOAT[] AS {column}")
        else:
            flat[column] = array
            selects.append(column)
    con.register(name, flat)
    return f"SELECT {', '.join(selects)} FROM {name}"


def scalar(con: Any, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
    """The first column of the first row of a query that always returns one row."""
    row = con.execute(sql, params).fetchone()
    return row[0] if row else None


def insert_columns(con: Any, table: str, columns: Mapping[str, Any], conflict: str = "") -> None:
    """Insert rows given as columns (equal-length sequences; a 2-D array is a FLOAT[] column)
    in one INSERT ... SELECT over them.

    The one way rows go in, whatever their number. DuckDB scans registered numpy columns
    without pandas or pyarrow; measured here (2 cores), 2,000 rows take 4 ms where multi-row
    VALUES statements take 80 ms, 20,000 take 26 ms against 1 s, and under 50 rows VALUES
    would save about a millisecond. The table, the column names and `conflict` are the
    code's own; values travel in the columns, never in the SQL.
    """
    arrays = {name: _column(values) for name, values in columns.items()}
    if not arrays or not len(next(iter(arrays.values()))):
        return
    view = f"_{table}_rows"
    source = register_columns(con, view, arrays)
    try:
        con.execute(f"INSERT INTO {table} ({', '.join(columns)}) {source} {conflict}")
    finally:
        con.unregister(view)


def insert(con: Any, table: str, rows: Sequence[Mapping[str, Any]], conflict: str = "") -> None:
    """Insert rows given as dicts with the same keys; see `insert_columns`."""
    if rows:
        insert_columns(con, table, {key: [row[key] for row in rows] for key in rows[0]}, conflict)


def _column(values: Any) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values
    # Not np.array, which would turn a column of lists into a 2-D array.
    return np.fromiter(values, dtype=object, count=len(values))


def insert_temp(con: Any, name: str, rows: list[dict[str, Any]]) -> None:
    """A temporary table `name` of paths (rows {"path": ...}) to join against."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} (path VARCHAR)")
    insert(con, name, rows)
