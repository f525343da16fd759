"""Labels: model and human, the effective label of each tag, history, frequencies."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from curator.errors import CuratorError
from curator.storage.catalog import CatalogBase
from curator.storage.sql import (
    EFFECTIVE_LABELS,
    LABEL_PIVOT,
    USABLE,
    USABLE_IDS,
    dicts,
    effective_labels_sql,
    insert,
    scalar,
)

# How a person's label came to be, by the history action that wrote it (see
# db/migrations/011_label_origin.sql). Only REVIEWED labels count as verified: a person saw
# that tag on that segment and decided it. Bulk relabels and imports still win over models.
REVIEWED = "review"
ORIGIN_OF_ACTION = {
    "review": REVIEWED,
    "set": REVIEWED,
    "add": "bulk",
    "remove": "bulk",
    "rename": "bulk",
    "import": "import",
}


# XOR of a hash per row: any row added, removed or changed changes it (rows are unique by
# their keys, so none cancels another).
_METADATA_VERSION = (
    "SELECT (SELECT bit_xor(hash(segment_id, facet, tag, source, source_kind, present, value, "
    "score)) FROM labels), (SELECT bit_xor(hash(id, track_id, start, duration, silent, "
    "excluded)) FROM segments), (SELECT bit_xor(hash(id, path, status)) FROM tracks)"
)


@dataclass(frozen=True)
class HumanLabel:
    """A person's decision on one tag (present or rejected) or value (tempo, key, scale)."""

    segment_id: str
    facet: str
    tag: str
    present: bool = True
    value: str | None = None


def register_changes(con: Any, changes: Sequence[HumanLabel], origin: str = REVIEWED) -> None:
    con.register(
        "_change_rows",
        {
            "segment_id": np.array([c.segment_id for c in changes], dtype=object),
            "facet": np.array([c.facet for c in changes], dtype=object),
            "tag": np.array([c.tag for c in changes], dtype=object),
            "present": np.array([c.present for c in changes], dtype=bool),
            "value": np.array([c.value for c in changes], dtype=object),
        },
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _changes AS SELECT segment_id::VARCHAR AS "
        "segment_id, facet::VARCHAR AS facet, tag::VARCHAR AS tag, present, "
        "value::VARCHAR AS value, $origin::VARCHAR AS origin FROM _change_rows",
        {"origin": origin},
    )
    unknown = con.execute(
        "SELECT DISTINCT segment_id FROM _changes WHERE segment_id NOT IN "
        "(SELECT id FROM segments) ORDER BY 1 LIMIT 3"
    ).fetchall()
    if unknown:
        named = ", ".join(repr(r[0][:40]) for r in unknown)  # a pasted id may be any length
        raise CuratorError(f"no segment {named} in the catalogue")


# When a change of origin alone (same present, same value) is applied: undo restores any
# origin; otherwise only a change that verifies (a person confirming a bulk or imported tag).
_ORIGIN_CHANGES = {True: "true", False: f"c.origin = '{REVIEWED}'"}


def apply_changes(con: Any, actor: str, batch_id: str, action: str) -> int:
    """Apply the rows of temp table _changes as human labels, set-based, with history.

    A change whose label is already so is dropped, unless it verifies a label that was not
    verified (a person confirming a bulk-added tag); a bulk action or import never turns a
    verified label into an unverified one. Undo restores the origin too. The history gets
    the old and new state of every change, so undo can restore it (no old state: there was
    no human label).
    """
    undoing = action == "undo"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _effective_changes AS SELECT c.*, h.present AS "
        "old_present, h.value AS old_value, h.origin AS old_origin FROM _changes c LEFT JOIN "
        "labels h ON h.segment_id = c.segment_id AND h.facet = c.facet AND h.tag = c.tag "
        "AND h.source = 'human' WHERE h.present IS DISTINCT FROM c.present "
        "OR h.value IS DISTINCT FROM c.value OR (h.origin IS DISTINCT FROM c.origin AND "
        f"{_ORIGIN_CHANGES[undoing]})"
    )
    con.execute(
        "INSERT INTO label_history (batch_id, segment_id, facet, tag, action, old_present, "
        "new_present, old_value, new_value, old_origin, origin, actor) SELECT ?, segment_id, "
        "facet, tag, ?, old_present, present, old_value, value, old_origin, origin, ? "
        "FROM _effective_changes",
        [batch_id, action, actor],
    )
    con.execute(
        "DELETE FROM labels WHERE source = 'human' AND (segment_id, facet, tag) IN (SELECT "
        "(segment_id, facet, tag) FROM _effective_changes WHERE present IS NULL)"
    )
    con.execute(
        "INSERT INTO labels (segment_id, facet, tag, source, source_kind, present, value, "
        "actor, origin) SELECT segment_id, facet, tag, 'human', 'human', present, value, ?, "
        "origin FROM _effective_changes WHERE present IS NOT NULL ON CONFLICT DO UPDATE SET "
        "present = excluded.present, value = excluded.value, actor = excluded.actor, "
        "origin = excluded.origin, updated_at = now()",
        [actor],
    )
    return int(scalar(con, "SELECT count(*) FROM _effective_changes"))


class LabelStore(CatalogBase):
    """Catalog methods for this area (combined into `Catalog`)."""

    def effective_labels(self) -> list[tuple[str, str, str, bool, str | None, str]]:
        """(segment, facet, tag, present, value, source kind), a person's label winning.

        Without a human label, a tag is present when any model says so, and a value
        (tempo, key, scale) is the one given with the highest score.
        """
        with self.connect() as con:
            return con.execute(EFFECTIVE_LABELS + " ORDER BY segment_id, facet, tag").fetchall()

    def metadata_table(
        self,
        tag_facets: Sequence[str],
        value_facets: Sequence[str],
        include_unusable: bool = False,
    ) -> pa.Table:
        """Per segment, by id: id, source, start, duration, then per tag facet its present
        effective tags sorted (columns t0, t1, ...) and per value facet its value (v0, ...).

        One grouped pass in DuckDB, several times quicker than grouping the effective labels in
        Python, and columnar, so the connection closes before anyone reads the rows.
        """
        tag_columns = [f"t{i}" for i in range(len(tag_facets))]
        value_columns = [f"v{i}" for i in range(len(value_facets))]
        columns = [
            f"coalesce(list(e.tag ORDER BY e.tag) FILTER (WHERE e.facet = ${column}), []) "
            f"AS {column}"
            for column in tag_columns
        ] + [
            # The last in tag order, as a value facet has one tag (its own name) anyway.
            f"arg_max(e.value, e.tag) FILTER (WHERE e.facet = ${column}) AS {column}"
            for column in value_columns
        ]
        params: dict[str, Any] = dict(zip(tag_columns, tag_facets, strict=True))
        params |= dict(zip(value_columns, value_facets, strict=True))
        params["facets"] = [*tag_facets, *value_facets]
        where = "true" if include_unusable else USABLE
        query = (
            f"SELECT s.id, t.path AS source, s.start, s.duration, {', '.join(columns)} "
            "FROM segments s JOIN tracks t ON t.id = s.track_id LEFT JOIN ("
            f"{effective_labels_sql('list_contains($facets, facet)')}) e "
            f"ON e.segment_id = s.id AND e.present WHERE {where} GROUP BY ALL ORDER BY s.id"
        )
        with self.connect() as con:
            return con.sql(query, params=params).to_arrow_table()

    def metadata_version(self) -> str:
        """A fingerprint of everything metadata_table reads (labels, segments, tracks), from
        their content rather than timestamps: equal fingerprints, equal metadata. About 30 ms
        at 40,000 segments, so a caller can tell cheaply whether its copy is still current."""
        with self.connect() as con:
            parts = con.execute(_METADATA_VERSION).fetchone()
        return ":".join(str(part) for part in parts or ())

    def labels(self, segment_id: str | None = None) -> list[dict[str, Any]]:
        """Every label row (all sources), for one segment or all."""
        where, params = ("WHERE segment_id = ?", [segment_id]) if segment_id else ("", [])
        with self.connect() as con:
            return dicts(
                con.execute(
                    "SELECT segment_id, facet, tag, source, source_kind, present, value, run_id, "
                    f"score, actor, origin FROM labels {where} "
                    "ORDER BY segment_id, facet, tag, source",
                    params,
                )
            )

    def apply_human_labels(
        self, changes: Sequence[HumanLabel], actor: str, batch_id: str, action: str = "set"
    ) -> int:
        """Record people's labels (they win over models') and append each to the history.

        All changes land in one transaction under one batch id, so a bulk change can be
        undone as one. A change that restates the current label is skipped. Returns how
        many labels changed.
        """
        if action not in ORIGIN_OF_ACTION:  # the origin decides what counts as verified
            raise ValueError(f"unknown label action {action!r}: one of {sorted(ORIGIN_OF_ACTION)}")
        with self.transaction() as con:
            register_changes(con, changes, ORIGIN_OF_ACTION[action])
            return apply_changes(con, actor, batch_id, action)

    def tag_frequencies(self, facet: str) -> list[dict[str, Any]]:
        """Per tag of `facet`, usable segments labelled by models only and by a person."""
        # One grouping pass over the facet's labels (a person's label decides when present).
        with self.connect() as con:
            return dicts(
                con.execute(
                    "SELECT tag, count(*) FILTER (WHERE human IS NULL AND model) AS model, "
                    f"count(*) FILTER (WHERE human) AS human FROM ({LABEL_PIVOT}) p "
                    "WHERE (human OR (human IS NULL AND model)) AND segment_id IN ("
                    + USABLE_IDS
                    + ") GROUP BY tag ORDER BY count(*) DESC, tag",
                    {"facet": facet, "tag": None},
                )
            )

    def effective_values(self, name: str) -> list[tuple[str, str]]:
        """(segment id, value) of `name` (tempo, key or scale) for usable segments."""
        with self.connect() as con:
            return con.execute(
                "SELECT e.segment_id, e.value FROM ("
                + effective_labels_sql("facet = $name")
                + ") e JOIN segments s ON s.id = e.segment_id JOIN tracks t ON "
                "t.id = s.track_id WHERE e.present AND e.value IS NOT NULL AND "
                + USABLE
                + " ORDER BY e.segment_id",
                {"name": name},
            ).fetchall()

    def cooccurrence(self, facet: str, other: str | None = None) -> list[tuple[str, str, int]]:
        """(tag, other tag, segments with both) over usable segments' effective labels."""
        facets = {"facet": facet, "other": other or facet}
        present = (
            "SELECT segment_id, facet, tag FROM ("
            + effective_labels_sql("facet IN ($facet, $other)")
            + ") WHERE present"
        )
        with self.connect() as con:
            return con.execute(
                f"SELECT a.tag, b.tag, count(*) FROM ({present}) a JOIN ({present}) b USING "
                "(segment_id) WHERE a.facet = $facet AND b.facet = $other AND segment_id IN ("
                + USABLE_IDS
                + ") GROUP BY ALL ORDER BY 3 DESC",
                facets,
            ).fetchall()

    def import_model_labels(
        self,
        labels: Sequence[HumanLabel],
        segment_ids: Sequence[str],
        source: str,
        settings: dict[str, Any],
    ) -> int:
        """Labels from another tool, recorded as model labels of an `import` run of `source`.

        They replace what an earlier import from the same source said about these segments.
        """
        with self.transaction() as con:
            run_id = int(
                scalar(
                    con,
                    "INSERT INTO runs (kind, plugin, plugin_version, settings, settings_hash, "
                    "status, finished_at) VALUES ('import', ?, 'import', ?, ?, 'finished', now()) "
                    "RETURNING id",
                    [source, json.dumps(settings), f"import:{source}"],
                )
            )
            con.register("_segment_ids", {"segment_id": np.asarray(segment_ids, dtype=str)})
            con.execute(
                "DELETE FROM labels WHERE source = ? AND segment_id IN "
                "(SELECT segment_id FROM _segment_ids)",
                [source],
            )
            insert(
                con,
                "labels",
                [
                    {
                        "segment_id": label.segment_id,
                        "facet": label.facet,
                        "tag": label.tag,
                        "source": source,
                        "source_kind": "model",
                        "present": label.present,
                        "value": label.value,
                        "run_id": run_id,
                        "score": 1.0,
                    }
                    for label in labels
                ],
                "ON CONFLICT DO NOTHING",
            )
            return len(labels)

    def label_history(self, segment_id: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE segment_id = ?", [segment_id]) if segment_id else ("", [])
        with self.connect() as con:
            return dicts(
                con.execute(
                    "SELECT id, batch_id, segment_id, facet, tag, action, old_present, "
                    "new_present, old_value, new_value, origin, actor, changed_at "
                    f"FROM label_history {where} ORDER BY id",
                    params,
                )
            )
