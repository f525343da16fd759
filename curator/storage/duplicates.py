"""Fingerprints and duplicate groups in the catalogue (migration 014).

The finding lives in `curator.duplicates`; this module only stores and reads what it found.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curator.storage import Catalog
from curator.storage.sql import (
    EFFECTIVE_LABELS,
    USABLE,
    VERIFIED_LABEL,
    dicts,
    insert_columns,
)

LEVELS = ("same", "near")  # the same recording; the same loop or sample under other beats


@dataclass(frozen=True)
class DuplicateGroup:
    """Segments that are the same music more than once, at one level, with why."""

    level: str
    group_id: str  # the smallest member id, so a group keeps its name across runs
    members: tuple[str, ...]
    evidence: Mapping[str, Any] = field(default_factory=dict)


def save_fingerprints(
    catalog: Catalog,
    method: str,
    track_ids: Sequence[str],
    durations: Sequence[float],
    codes: Sequence[np.ndarray],
) -> None:
    """Store (or replace) the fingerprints of these tracks, made by `method`."""
    if not track_ids:
        return
    with catalog.transaction() as con:
        insert_columns(
            con,
            "fingerprints",
            {
                "track_id": list(track_ids),
                "method": [method] * len(track_ids),
                "duration": np.asarray(durations, dtype=np.float64),
                "codes": [np.asarray(c, dtype=np.uint32).tolist() for c in codes],
            },
            conflict="ON CONFLICT (track_id) DO UPDATE SET method = excluded.method, "
            "duration = excluded.duration, codes = excluded.codes, made_at = now()",
        )


def fingerprints(catalog: Catalog, method: str) -> dict[str, tuple[float, np.ndarray]]:
    """Each track fingerprinted by `method`: its duration and codes (uint32)."""
    with catalog.connect() as con:
        rows = con.execute(
            "SELECT track_id, duration, codes FROM fingerprints WHERE method = ? ORDER BY track_id",
            [method],
        ).fetchall()
    return {str(t): (float(d), np.asarray(c, dtype=np.uint32)) for t, d, c in rows}


def tracks_to_fingerprint(catalog: Catalog, method: str) -> list[tuple[str, str]]:
    """(track id, path) of each present track with no fingerprint made by `method`, by id."""
    with catalog.connect() as con:
        rows = con.execute(
            "SELECT t.id, t.path FROM tracks t LEFT JOIN fingerprints f ON f.track_id = t.id "
            "AND f.method = ? WHERE t.status = 'ingested' AND f.track_id IS NULL ORDER BY t.id",
            [method],
        ).fetchall()
    return [(str(t), str(p)) for t, p in rows]


def track_segments(catalog: Catalog) -> dict[str, list[str]]:
    """Each present track -> its segment ids in order (excluded and silent ones too: a
    duplicate is a fact about the audio, whatever a curator decided about the segment)."""
    with catalog.connect() as con:
        rows = con.execute(
            "SELECT s.track_id, list(s.id ORDER BY s.idx) FROM segments s JOIN tracks t "
            "ON t.id = s.track_id WHERE t.status = 'ingested' GROUP BY s.track_id"
        ).fetchall()
    return {str(t): [str(s) for s in ids] for t, ids in rows}


def replace_duplicate_groups(
    catalog: Catalog, level: str, groups: Sequence[DuplicateGroup]
) -> None:
    """Make `groups` the level's groups, in one transaction (the last finding wins whole)."""
    _check_level(level)
    if any(g.level != level for g in groups):
        raise ValueError(f"every group given must be at level {level!r}")
    with catalog.transaction() as con:
        con.execute("DELETE FROM duplicate_members WHERE level = ?", [level])
        con.execute("DELETE FROM duplicate_groups WHERE level = ?", [level])
        if not groups:
            return
        insert_columns(
            con,
            "duplicate_groups",
            {
                "level": [level] * len(groups),
                "group_id": [g.group_id for g in groups],
                "evidence": [json.dumps(dict(g.evidence), sort_keys=True) for g in groups],
            },
        )
        members = [(g.group_id, m) for g in groups for m in g.members]
        insert_columns(
            con,
            "duplicate_members",
            {
                "level": [level] * len(members),
                "segment_id": [m for _, m in members],
                "group_id": [g for g, _ in members],
            },
        )


def duplicate_groups(catalog: Catalog, level: str | None = None) -> list[DuplicateGroup]:
    """The groups found, at one level or both, largest first, members in id order."""
    if level is not None:
        _check_level(level)
    with catalog.connect() as con:
        rows = dicts(
            con.execute(
                "SELECT g.level, g.group_id, g.evidence, list(m.segment_id ORDER BY "
                "m.segment_id) AS members FROM duplicate_groups g JOIN duplicate_members m "
                "ON m.level = g.level AND m.group_id = g.group_id "
                "WHERE ?::VARCHAR IS NULL OR g.level = ? "
                "GROUP BY g.level, g.group_id, g.evidence "
                "ORDER BY count(*) DESC, g.level, g.group_id",
                [level, level],
            )
        )
    return [
        DuplicateGroup(
            r["level"], r["group_id"], tuple(r["members"]), json.loads(r["evidence"] or "{}")
        )
        for r in rows
    ]


def groups_of(catalog: Catalog, segment_id: str) -> list[DuplicateGroup]:
    """The groups (at most one per level) that hold `segment_id`."""
    with catalog.connect() as con:
        found = con.execute(
            "SELECT level, group_id FROM duplicate_members WHERE segment_id = ?", [segment_id]
        ).fetchall()
    wanted = set(found)
    return [
        g
        for level in sorted({lv for lv, _ in found})
        for g in duplicate_groups(catalog, level)
        if (g.level, g.group_id) in wanted
    ]


def member_details(catalog: Catalog) -> list[dict[str, Any]]:
    """Every segment in a duplicate group, with what choosing one per unit weighs: its
    track, file, window, whether it is usable or excluded, its labels a person verified and
    its present effective tags. A member no longer in the catalogue is left out."""
    with catalog.connect() as con:
        return dicts(
            con.execute(
                "WITH m AS (SELECT DISTINCT segment_id FROM duplicate_members), "
                "verified AS (SELECT segment_id, count(*) AS n FROM labels "
                f"WHERE {VERIFIED_LABEL} AND segment_id IN (SELECT segment_id FROM m) "
                "GROUP BY segment_id), "
                f"tags AS (SELECT segment_id, count(*) AS n FROM ({EFFECTIVE_LABELS}) "
                "WHERE present AND segment_id IN (SELECT segment_id FROM m) GROUP BY segment_id) "
                "SELECT s.id AS segment_id, s.track_id, t.path AS source, s.start, s.duration, "
                f"({USABLE}) AS usable, s.excluded, coalesce(v.n, 0) AS verified, "
                "coalesce(g.n, 0) AS tags FROM m JOIN segments s ON s.id = m.segment_id "
                "JOIN tracks t ON t.id = s.track_id LEFT JOIN verified v ON v.segment_id = s.id "
                "LEFT JOIN tags g ON g.segment_id = s.id ORDER BY s.id"
            )
        )


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"unknown duplicate level {level!r}; choose from {', '.join(LEVELS)}")
