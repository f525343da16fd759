"""A segment's duplicates as a curator reviews them, and keeping one of them in one action."""

from __future__ import annotations

from dataclasses import dataclass

from curator.curation.review import current_curator, new_batch_id
from curator.duplicates.evidence import evidence_words
from curator.duplicates.units import Member, Units, read_units
from curator.errors import CuratorError
from curator.project import Project
from curator.storage.duplicates import LEVELS, DuplicateGroup, groups_of


@dataclass(frozen=True)
class GroupView:
    """One duplicate group of a segment: its level, the evidence in words, the others."""

    level: str
    group_id: str
    evidence: str
    others: list[Member]


@dataclass(frozen=True)
class SegmentDuplicates:
    """What the Review page shows of a segment's duplicates.

    groups: the segment's groups (one per level at most). linked: the other members of its
    unit that no group of its own holds (linked through another member's group), which
    "keep this one" excludes too. to_exclude: every other member still included.
    """

    groups: list[GroupView]
    linked: list[Member]
    to_exclude: list[str]


def segment_duplicates(project: Project, segment_id: str) -> SegmentDuplicates | None:
    """The segment's duplicate groups with their members, or None when it has none."""
    if not groups_of(project.catalog, segment_id):
        return None  # the common case, answered without reading every group
    units = read_units(project.catalog)
    others = _others(units, segment_id)
    if not others:
        return None
    groups = [g for g in units.groups if segment_id in g.members]
    in_groups = {m for g in groups for m in g.members}
    return SegmentDuplicates(
        groups=[_view(units, g, segment_id) for g in sorted(groups, key=_level_order)],
        linked=[units.members[m] for m in others if m not in in_groups],
        to_exclude=[m for m in others if not units.members[m].excluded],
    )


def keep_only(project: Project, segment_id: str, actor: str | None = None) -> tuple[str, int]:
    """Keep `segment_id` and exclude the other members of its duplicate unit, as one batch
    of the review history (undone together); returns (batch id, flags changed)."""
    others = _others(read_units(project.catalog), segment_id)
    if not others:
        raise CuratorError(f"segment {segment_id!r} has no duplicates to exclude")
    batch = new_batch_id()
    flags = {segment_id: False, **dict.fromkeys(others, True)}
    changed = project.catalog.set_exclusions(flags, actor or current_curator(), batch)
    return batch, changed


def _level_order(group: DuplicateGroup) -> int:
    # The same recording first: it is the stronger claim.
    return LEVELS.index(group.level) if group.level in LEVELS else len(LEVELS)


def _others(units: Units, segment_id: str) -> list[str]:
    # Members the catalogue no longer holds cannot be shown or excluded.
    return [m for m in units.others(segment_id) if m in units.members]


def _view(units: Units, group: DuplicateGroup, segment_id: str) -> GroupView:
    others = [units.members[m] for m in group.members if m != segment_id and m in units.members]
    member = units.members.get(segment_id)
    about = {segment_id, member.track_id} if member else {segment_id}
    return GroupView(group.level, group.group_id, evidence_words(group, about), others)
