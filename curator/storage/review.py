"""The review queue's queries, segment flags, bulk relabels and undo."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from curator.errors import CuratorError
from curator.storage.catalog import CatalogBase
from curator.storage.labels import HumanLabel, apply_changes, register_changes
from curator.storage.sql import (
    EFFECTIVE_LABELS,
    LABEL_PIVOT,
    PROMPT_IN_USE_ORDER,
    USABLE,
    count,
    dicts,
    page,
    scalar,
)


@dataclass(frozen=True)
class ReviewQuery:
    """A review filter in storage terms (see curator.curation.review.ReviewFilter)."""

    facet: str | None = None
    tag: str | None = None
    source: str | None = None
    score_min: float | None = None
    score_max: float | None = None
    threshold: float | None = None  # set: order by closeness of the score to it
    state: str | None = "usable"
    confidence_below: float | None = None  # latest tempo or key confidence under this
    text: str | None = None  # in the segment id, file path, note or any of its prompts
    segments: tuple[str, ...] | None = None  # only these (a saved queue, curation.queues)


_STATE_SQL = {
    "usable": USABLE,
    "silent": "s.silent",
    "excluded": "s.excluded",
    "missing": "t.status <> 'ingested'",
}


_SOURCE_SQL = {
    None: "coalesce(human, model, false)",
    "model": "human IS NULL AND model",
    "human": "human",
    "both": "human AND model",
    "disagree": "human IS NOT NULL AND human <> coalesce(model, false)",
    "unverified": "coalesce(human, model, false) AND NOT coalesce(verified, false)",
}


# Segments where the curator's search text appears: id, file path, note, any prompt.
_TEXT_MATCH = (
    "(contains(lower(s.id), $text) OR contains(lower(t.path), $text) OR "
    "contains(lower(coalesce(s.note, '')), $text) OR s.id IN (SELECT segment_id FROM prompts "
    "WHERE contains(lower(text), $text)))"
)


def review_sql(query: ReviewQuery) -> tuple[str, dict[str, Any]]:
    """The SELECT of the segments a review query matches, in queue order, and its params.

    Every value is a parameter; the state and source only pick fixed fragments from
    _STATE_SQL and _SOURCE_SQL (an unknown one is a KeyError, never SQL).
    """
    conditions = [_STATE_SQL[query.state]] if query.state else []
    params: dict[str, Any] = {}
    if (query.facet or query.tag) and not (query.threshold is not None and query.source is None):
        params |= {"facet": query.facet, "tag": query.tag}
        conditions.append(
            f"s.id IN (SELECT segment_id FROM ({LABEL_PIVOT}) WHERE {_SOURCE_SQL[query.source]})"
        )
    score, join = "NULL::FLOAT", ""
    if (
        query.tag
        and query.facet
        and (
            query.score_min is not None
            or query.score_max is not None
            or query.threshold is not None
        )
    ):
        score, join = _score_column(query, params)
    conditions += _score_bounds(query, score, params)
    if query.confidence_below is not None:
        conditions.append(_UNSURE_VALUES)
        params["confidence_below"] = query.confidence_below
    if query.text:
        conditions.append(_TEXT_MATCH)
        params["text"] = query.text.lower()
    if query.segments is not None:
        conditions.append("list_contains($segments, s.id)")
        params["segments"] = list(query.segments)
    order = f"abs({score} - $threshold) NULLS LAST, s.id" if query.threshold is not None else "s.id"
    if query.threshold is not None:
        params["threshold"] = query.threshold
    where = " AND ".join(conditions) or "true"
    return (
        f"SELECT s.id, t.path AS source, s.start, s.duration, t.status AS track_status, "
        f"s.silent, s.excluded, s.note, {score} AS score, count(*) OVER () AS total, "
        f"row_number() OVER (ORDER BY {order}) - 1 AS position "
        f"FROM segments s JOIN tracks t ON t.id = s.track_id {join} WHERE {where} "
        f"ORDER BY {order}",
        params,
    )


# Segments whose latest tempo or key estimate is less confident than the curator asked for.
_UNSURE_VALUES = (
    "s.id IN (SELECT segment_id FROM (SELECT segment_id, confidence, row_number() OVER "
    "(PARTITION BY segment_id, name ORDER BY run_id DESC) AS k FROM measurements "
    "WHERE name IN ('tempo', 'key')) WHERE k = 1 AND confidence < $confidence_below)"
)


def _score_column(query: ReviewQuery, params: dict[str, Any]) -> tuple[str, str]:
    # The tag's score from the latest run of a tagger that scores it: runs store one list
    # per segment in the order of runs.tags, so the list position is found first.
    params["pair"] = [query.facet, query.tag]
    join = (
        "JOIN (SELECT id AS run_id, list_position(CAST(tags AS VARCHAR[][]), $pair) AS k "
        "FROM runs WHERE kind = 'tag' AND list_position(CAST(tags AS VARCHAR[][]), $pair) "
        "IS NOT NULL ORDER BY id DESC LIMIT 1) r ON true "
        "LEFT JOIN scores sc ON sc.segment_id = s.id AND sc.run_id = r.run_id"
    )
    return "sc.scores[r.k]", join


def _score_bounds(query: ReviewQuery, score: str, params: dict[str, Any]) -> list[str]:
    bounds = []
    if query.score_min is not None:
        bounds.append(f"{score} >= $score_min")
        params["score_min"] = query.score_min
    if query.score_max is not None:
        bounds.append(f"{score} <= $score_max")
        params["score_max"] = query.score_max
    return bounds


def position_in(con: Any, sql: str, params: dict[str, Any], segment_id: str) -> int | None:
    """The `position` of `segment_id` in the rows of queue `sql` (None: not among them)."""
    found = con.execute(
        f"SELECT position FROM ({sql}) WHERE id = $segment_id",
        {**params, "segment_id": segment_id},
    ).fetchone()
    return None if found is None else int(found[0])


def attach_details(con: Any, rows: list[dict[str, Any]]) -> None:
    """Give each segment of a page its labels, latest measurements, prompt and the levels of
    its duplicate groups (so a card looks its duplicates up only when it has some)."""
    if not rows:
        return
    con.register("_page_ids", {"segment_id": np.array([r["id"] for r in rows], dtype=object)})
    page = "segment_id IN (SELECT segment_id::VARCHAR FROM _page_ids)"
    labels = dicts(
        con.execute(
            "SELECT segment_id, facet, tag, source, source_kind, present, value, score, actor, "
            f"origin FROM labels WHERE {page} ORDER BY facet, tag, source_kind DESC, source"
        )
    )
    measurements = dicts(
        con.execute(
            "SELECT m.segment_id, m.name, m.value, m.text, m.confidence, r.plugin FROM "
            "measurements m JOIN runs r ON r.id = m.run_id WHERE m."
            + page
            + " QUALIFY row_number() OVER (PARTITION BY m.segment_id, m.name ORDER BY m.run_id "
            "DESC) = 1 ORDER BY m.name"
        )
    )
    prompts = {
        segment_id: chosen
        for segment_id, chosen in con.execute(
            "SELECT segment_id, arg_max(struct_pack(text, writer, written_from), "
            f"{PROMPT_IN_USE_ORDER}) FROM prompts WHERE {page} GROUP BY segment_id"
        ).fetchall()
    }
    duplicated = dict(
        con.execute(
            "SELECT segment_id, list(level ORDER BY level) FROM duplicate_members "
            f"WHERE {page} GROUP BY segment_id"
        ).fetchall()
    )
    for row in rows:
        row["duplicate_levels"] = duplicated.get(row["id"], [])
        row["labels"] = [x for x in labels if x["segment_id"] == row["id"]]
        row["measurements"] = [x for x in measurements if x["segment_id"] == row["id"]]
        prompt = prompts.get(row["id"]) or {}
        row["prompt"] = prompt.get("text")
        row["prompt_writer"] = prompt.get("writer")
        row["prompt_written_from"] = prompt.get("written_from")


def _set_flags(
    con: Any, segment_id: str, actor: str, batch_id: str, note: str | None, excluded: bool | None
) -> int:
    """Catalog.set_segment_flags inside an open transaction; returns how many flags changed."""
    old = con.execute("SELECT note, excluded FROM segments WHERE id = ?", [segment_id]).fetchone()
    if old is None:
        raise CuratorError(f"no segment {segment_id!r}")
    # An empty note and no note are the same thing to a curator.
    wanted = {"note": note, "excluded": None if excluded is None else str(excluded).lower()}
    before = {"note": old[0] or "", "excluded": str(old[1]).lower()}
    changed = {k: v for k, v in wanted.items() if v is not None and v != before[k]}
    for flag, value in changed.items():
        _set_flag(con, segment_id, flag, value)
        con.execute(
            "INSERT INTO label_history (batch_id, segment_id, facet, tag, action, "
            "old_value, new_value, actor) VALUES (?, ?, '_segment', ?, ?, ?, ?, ?)",
            [batch_id, segment_id, flag, flag, before[flag], value, actor],
        )
    return len(changed)


def _set_flag(con: Any, segment_id: str, flag: str, value: str | None) -> None:
    if flag == "note":
        con.execute("UPDATE segments SET note = ? WHERE id = ?", [value or None, segment_id])
    else:
        con.execute("UPDATE segments SET excluded = ? WHERE id = ?", [value == "true", segment_id])


def _undo_flags(con: Any, actor: str, undo_batch_id: str) -> int:
    """Put back the segment flags (note, excluded) in _undo; returns how many."""
    rows = con.execute(
        "SELECT u.segment_id, u.tag, u.value, CASE u.tag WHEN 'note' THEN s.note "
        "ELSE lower(s.excluded::VARCHAR) END FROM _undo u JOIN segments s "
        "ON s.id = u.segment_id WHERE u.facet = '_segment'"
    ).fetchall()
    for segment_id, flag, old_value, current in rows:
        _set_flag(con, segment_id, flag, old_value)
        con.execute(
            "INSERT INTO label_history (batch_id, segment_id, facet, tag, action, old_value, "
            "new_value, actor) VALUES (?, ?, '_segment', ?, 'undo', ?, ?, ?)",
            [undo_batch_id, segment_id, flag, current, old_value, actor],
        )
    return len(rows)


# The human labels each bulk action writes for the segments in _matched.
_HAS_TAG = (
    "SELECT segment_id FROM ({eff}) WHERE facet = $facet AND tag = $tag AND present "
    "AND segment_id IN (SELECT id FROM _matched)"
).replace("{eff}", EFFECTIVE_LABELS)


_BULK_CHANGES = {
    "add": "CREATE OR REPLACE TEMP TABLE _changes AS SELECT id AS segment_id, $facet AS facet, "
    "$tag AS tag, true AS present, NULL::VARCHAR AS value, 'bulk' AS origin FROM _matched",
    "remove": "CREATE OR REPLACE TEMP TABLE _changes AS SELECT segment_id, $facet AS facet, "
    "$tag AS tag, false AS present, NULL::VARCHAR AS value, 'bulk' AS origin FROM ("
    + _HAS_TAG
    + ")",
    "rename": "CREATE OR REPLACE TEMP TABLE _changes AS SELECT segment_id, $facet AS facet, "
    "t.tag, t.tag = $new_tag AS present, NULL::VARCHAR AS value, 'bulk' AS origin FROM ("
    + _HAS_TAG
    + ") CROSS JOIN (SELECT unnest([$tag, $new_tag]) AS tag) t",
}


class ReviewStore(CatalogBase):
    """Catalog methods for this area (combined into `Catalog`)."""

    def save_review(
        self,
        segment_id: str,
        changes: Sequence[HumanLabel],
        actor: str,
        batch_id: str,
        note: str | None = None,
        excluded: bool | None = None,
    ) -> int:
        """One segment's review: its labels, note and exclusion, in one transaction.

        Either all of it is recorded or none (a failure midway leaves the segment as it
        was). Returns how many labels and flags changed.
        """
        with self.transaction() as con:
            register_changes(con, changes)
            changed = apply_changes(con, actor, batch_id, "review")
            return changed + _set_flags(con, segment_id, actor, batch_id, note, excluded)

    def bulk_relabel(
        self,
        query: ReviewQuery,
        action: str,
        facet: str,
        tag: str,
        new_tag: str | None,
        actor: str,
        batch_id: str,
    ) -> int:
        """Add, remove or rename a tag on every segment `query` matches, in one transaction."""
        with self.transaction() as con:
            sql, params = review_sql(query)
            con.execute(f"CREATE OR REPLACE TEMP TABLE _matched AS SELECT id FROM ({sql})", params)
            sql = _BULK_CHANGES[action]
            values = {"facet": facet, "tag": tag, "new_tag": new_tag or ""}
            con.execute(sql, {k: v for k, v in values.items() if f"${k}" in sql})
            return apply_changes(con, actor, batch_id, action)

    def set_segment_flags(
        self,
        segment_id: str,
        actor: str,
        batch_id: str,
        note: str | None = None,
        excluded: bool | None = None,
    ) -> int:
        """A curator's note and whether the segment is excluded from training, with history.

        None leaves a flag as it is. History rows use facet '_segment' and the flag's name
        as tag, with the old and new values, so undo can restore them.
        """
        with self.transaction() as con:
            return _set_flags(con, segment_id, actor, batch_id, note, excluded)

    def set_exclusions(self, excluded: Mapping[str, bool], actor: str, batch_id: str) -> int:
        """Exclude or include several segments as one batch (undone together), in one
        transaction, with history like set_segment_flags; returns how many flags changed."""
        with self.transaction() as con:
            return sum(
                _set_flags(con, segment, actor, batch_id, None, value)
                for segment, value in excluded.items()
            )

    def undo_batch(self, batch_id: str, actor: str, undo_batch_id: str) -> int:
        """Restore every label and flag batch `batch_id` changed; the undo is in the history."""
        with self.transaction() as con:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _undo AS SELECT segment_id, facet, tag, "
                "arg_min(old_present, id) AS present, arg_min(old_value, id) AS value, "
                # a change recorded before origins were kept restored a reviewed label
                "CASE WHEN arg_min(old_present, id) IS NOT NULL THEN "
                "coalesce(arg_min(old_origin, id), 'review') END AS origin "
                "FROM label_history WHERE batch_id = ? AND undone_by IS NULL GROUP BY ALL",
                [batch_id],
            )
            if not scalar(con, "SELECT count(*) FROM _undo"):
                raise CuratorError(f"nothing to undo in batch {batch_id} (unknown or undone)")
            flags = _undo_flags(con, actor, undo_batch_id)
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _changes AS SELECT * FROM _undo "
                "WHERE facet <> '_segment'"
            )
            restored = apply_changes(con, actor, undo_batch_id, "undo")
            con.execute(
                "UPDATE label_history SET undone_by = ? WHERE batch_id = ? AND undone_by IS NULL",
                [undo_batch_id, batch_id],
            )
            return restored + flags

    def batches(
        self,
        limit: int = 50,
        actor: str | None = None,
        segment_id: str | None = None,
        batch_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """The latest change batches (by `actor`, touching `segment_id`, or just `batch_id`,
        if given): who, when, what, how many labels and segments (the first few named),
        whether undone."""
        with self.connect() as con:
            return dicts(
                con.execute(
                    "SELECT batch_id, any_value(action) AS action, any_value(actor) AS actor, "
                    "min(changed_at) AS changed_at, count(*) AS labels, "
                    "count(DISTINCT segment_id) AS segments, "
                    "list(DISTINCT segment_id ORDER BY segment_id)[1:5] AS segment_ids, "
                    "any_value(undone_by) AS undone_by FROM label_history "
                    "WHERE ($actor IS NULL OR actor = $actor) AND ($batch IS NULL OR "
                    "batch_id = $batch) GROUP BY batch_id "
                    "HAVING ($segment IS NULL OR bool_or(segment_id = $segment)) "
                    "ORDER BY min(id) DESC LIMIT $limit",
                    {"limit": limit, "actor": actor, "segment": segment_id, "batch": batch_id},
                )
            )

    def batch_changes(self, batch_ids: Sequence[str]) -> list[dict[str, Any]]:
        """What each batch changed, per tag: `change` is added, rejected, cleared (the
        person's label removed) or set (a value, note or exclusion), with its segment count."""
        with self.connect() as con:
            return dicts(
                con.execute(
                    "SELECT batch_id, facet, tag, change, count(DISTINCT segment_id) AS segments "
                    "FROM (SELECT *, CASE WHEN facet = '_segment' OR new_value IS NOT NULL THEN "
                    "'set' WHEN new_present THEN 'added' WHEN NOT new_present THEN 'rejected' "
                    "ELSE 'cleared' END AS change FROM label_history WHERE list_contains("
                    "$batches, batch_id)) GROUP BY batch_id, facet, tag, change ORDER BY "
                    "batch_id, list_position(['added', 'rejected', 'cleared', 'set'], "
                    "any_value(change)), facet = '_segment', facet, tag",
                    {"batches": list(batch_ids)},
                )
            )

    def curators(self) -> list[str]:
        """Everyone who has changed a label, note or exclusion, by name."""
        with self.connect() as con:
            rows = con.execute("SELECT DISTINCT actor FROM label_history ORDER BY 1").fetchall()
        return [str(r[0]) for r in rows]

    def curator_activity(self, now: Any = None) -> list[dict[str, Any]]:
        """Per curator, the labels and flags changed and the segments touched in the day and
        the week before `now` (default: now), most active this week first."""
        with self.connect() as con:
            return dicts(
                con.execute(
                    "WITH recent AS (SELECT actor, segment_id, changed_at >= t - INTERVAL 1 DAY "
                    "AS today FROM label_history, (SELECT coalesce($now::TIMESTAMP, "
                    "current_timestamp::TIMESTAMP) AS t) WHERE changed_at >= t - INTERVAL 7 DAY "
                    "AND changed_at <= t) SELECT actor, count(*) FILTER (WHERE today) AS "
                    "changes_day, count(DISTINCT segment_id) FILTER (WHERE today) AS "
                    "segments_day, count(*) AS changes_week, count(DISTINCT segment_id) AS "
                    "segments_week FROM recent GROUP BY actor ORDER BY changes_week DESC, actor",
                    {"now": now},
                )
            )

    def queue_position(self, query: ReviewQuery, segment_id: str) -> int | None:
        """Where `segment_id` stands in the queue review_segments pages (None: not in it)."""
        sql, params = review_sql(query)
        with self.connect() as con:
            return position_in(con, sql, params, segment_id)

    def review_segments(
        self, query: ReviewQuery, offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """How many segments `query` matches, and one page of them with their details."""
        sql, params = review_sql(query)
        # One pass: the query's window count covers every match before the page is cut.
        with self.connect() as con:
            rows = dicts(con.execute(*page(sql, params, offset, limit)))
            total = rows[0]["total"] if rows else count(con, sql, params)
            attach_details(con, rows)
        return total, rows
