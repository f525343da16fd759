"""Duplicates respected: one member per unit, tracks joined through units, and leaks.

A unit is the segments linked through duplicate groups of either level (groups.py). What
rebalance counts, export writes and review keeps is one member per unit, chosen here by one
rule; the split keeps every track linked through a unit on one side, and a selection made
before the groups were found is checked for units split across its sides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from curator.duplicates.groups import components, unit_of
from curator.storage import Catalog
from curator.storage.duplicates import DuplicateGroup, duplicate_groups, member_details
from curator.storage.selections import SelectionItem

# How a level's link reads in a sentence: "<segment> is <words> <other>".
LEVEL_WORDS = {
    "same": "the same recording as",
    "near": "the same loop or sample as",
}


@dataclass(frozen=True)
class Member:
    """A segment in a duplicate group, with what the choice of one per unit weighs."""

    segment_id: str
    track_id: str
    source: str
    start: float
    duration: float
    usable: bool
    excluded: bool
    verified: int  # labels a person verified by listening
    tags: int  # present effective tags

    def preference(self) -> tuple[Any, ...]:
        """Sorts the member to keep first: a usable one, one no curator excluded (so the one
        a curator kept with "keep this one"), the most verified labels, the most tags, then
        the smallest id (so the choice is the same on every run)."""
        return (not self.usable, self.excluded, -self.verified, -self.tags, self.segment_id)


@dataclass(frozen=True)
class Folded:
    """Candidates reduced to one per unit: those kept, and each left out -> the one kept."""

    kept: list[str]
    left_out: dict[str, str] = field(default_factory=dict)

    @property
    def units(self) -> int:
        """How many units lost members to the fold."""
        return len(set(self.left_out.values()))


@dataclass(frozen=True)
class Leak:
    """A unit with members on both sides of a selection's split."""

    unit: str
    train: tuple[str, ...]
    validation: tuple[str, ...]
    levels: tuple[str, ...]

    def line(self) -> str:
        """One line a curator reads: which unit, at which levels, on which side."""
        return (
            f"unit {self.unit} ({' and '.join(self.levels)}): train has "
            f"{', '.join(self.train)}; validation has {', '.join(self.validation)}"
        )


@dataclass(frozen=True)
class Units:
    """The catalogue's duplicate groups joined into units, with their members' details."""

    groups: list[DuplicateGroup]
    unit: dict[str, str]  # segment -> unit id (its smallest linked segment id)
    members: dict[str, Member]

    def __bool__(self) -> bool:
        return bool(self.unit)

    def fold(self, candidates: Iterable[str]) -> Folded:
        """One candidate per unit (the preferred among the candidates in it); segments in no
        unit are all kept. Order of `candidates` is kept."""
        ordered = list(candidates)
        best: dict[str, str] = {}
        for segment in ordered:
            unit = self.unit.get(segment)
            if unit is None:
                continue
            if unit not in best or self._key(segment) < self._key(best[unit]):
                best[unit] = segment
        left_out = {s: best[self.unit[s]] for s in ordered if s in self.unit}
        left_out = {s: k for s, k in left_out.items() if s != k}
        return Folded([s for s in ordered if s not in left_out], left_out)

    def _key(self, segment: str) -> tuple[Any, ...]:
        member = self.members.get(segment)
        # A member the catalogue lost sorts last among its unit.
        return member.preference() if member else (True, True, 0, 0, segment)

    def link_words(self, segment: str, other: str) -> str:
        """How `segment` is linked to `other`: "the same recording as X", or through the
        unit when no one group holds both."""
        for group in self._groups_of.get(segment, []):
            if other in group.members:
                return f"{LEVEL_WORDS.get(group.level, group.level)} {other}"
        return f"linked through duplicate groups to {other}"

    def joined_tracks(self, tracks: Iterable[str]) -> dict[str, str]:
        """Each of `tracks` -> the smallest track it is linked to through any unit (itself if
        none), so a split can deal linked tracks as one."""
        pairs = []
        for members in self._unit_members.values():
            linked = sorted({self.members[m].track_id for m in members if m in self.members})
            pairs += [(linked[0], t) for t in linked[1:]]
        joined = {t: comp[0] for comp in components(pairs) for t in comp}
        return {t: joined.get(t, t) for t in tracks}

    def leaks(self, items: Sequence[SelectionItem]) -> list[Leak]:
        """Units with selected members on both sides of the split, by unit id."""
        sides: dict[str, dict[str, list[str]]] = {}
        for item in items:
            unit = self.unit.get(item.segment_id)
            if unit is not None:
                sides.setdefault(unit, {}).setdefault(item.split, []).append(item.segment_id)
        return [
            Leak(
                unit,
                tuple(sorted(found["train"])),
                tuple(sorted(found["validation"])),
                self._unit_levels[unit],
            )
            for unit, found in sorted(sides.items())
            if found.get("train") and found.get("validation")
        ]

    def others(self, segment: str) -> list[str]:
        """The other segments of `segment`'s unit, by id."""
        unit = self.unit.get(segment)
        if unit is None:
            return []
        return sorted(s for s in self._unit_members[unit] if s != segment)

    # Indexes built on first use: a catalogue may hold thousands of groups, and a fold or a
    # leak check asks about each member.
    @cached_property
    def _unit_members(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for segment, unit in self.unit.items():
            found.setdefault(unit, []).append(segment)
        return found

    @cached_property
    def _groups_of(self) -> dict[str, list[DuplicateGroup]]:
        found: dict[str, list[DuplicateGroup]] = {}
        for group in self.groups:
            for member in group.members:
                found.setdefault(member, []).append(group)
        return found

    @cached_property
    def _unit_levels(self) -> dict[str, tuple[str, ...]]:
        found: dict[str, set[str]] = {}
        for group in self.groups:
            unit = self.unit.get(group.members[0])  # None: a group of one links nothing
            if unit is not None:
                found.setdefault(unit, set()).add(group.level)
        return {unit: tuple(sorted(levels)) for unit, levels in found.items()}


def read_units(catalog: Catalog) -> Units:
    """The catalogue's duplicate groups as units (empty when none were found)."""
    groups = duplicate_groups(catalog)
    if not groups:
        return Units([], {}, {})
    members = {row["segment_id"]: _member(row) for row in member_details(catalog)}
    return Units(groups, unit_of(g.members for g in groups), members)


def _member(row: Mapping[str, Any]) -> Member:
    return Member(
        segment_id=str(row["segment_id"]),
        track_id=str(row["track_id"]),
        source=str(row["source"]),
        start=float(row["start"]),
        duration=float(row["duration"]),
        usable=bool(row["usable"]),
        excluded=bool(row["excluded"]),
        verified=int(row["verified"]),
        tags=int(row["tags"]),
    )
