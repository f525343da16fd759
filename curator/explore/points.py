"""What each point of the map says: its segment's file, start and top tags, and the colour
a curator chose (a tag, the label source, the suspicion score or the duplicate group)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from curator.duplicates.groups import linked_segments
from curator.explore.map import SegmentMap
from curator.music import VALUE_FACETS
from curator.project import Project
from curator.storage.explore import map_details, tag_presence, tag_scores
from curator.storage.suspects import stored_suspects

TOP_TAGS = 5
COLOURINGS = ("label source", "tag", "suspicion", "duplicate group")
# Label sources in the order the legend lists them, with the words it uses.
LABEL_SOURCES = {
    "verified": "verified by a person",
    "human": "a person (bulk relabel or import)",
    "model": "models only",
    "none": "no tags",
}
NO_GROUP = "in no duplicate group"
HAS_IT, HAS_NOT = "has it", "has not"


@dataclass(frozen=True)
class MapPoint:
    """One segment on the map."""

    segment_id: str
    x: float
    y: float
    file: str
    start: float
    duration: float
    tags: tuple[str, ...]  # its tags, best model score first (a person's first of all)
    label_source: str  # a key of LABEL_SOURCES


@dataclass(frozen=True)
class Colouring:
    """Each point's colour value, in the map's order.

    kind "category": values are names from `categories` (a legend entry each, in order);
    "scale": values are numbers from 0 to 1, NaN for none; "group": values are group names
    (too many for a legend) or `NO_GROUP`.
    """

    title: str
    kind: str
    values: tuple[str | float, ...]
    categories: tuple[str, ...] = ()


def map_points(project: Project, drawn: SegmentMap) -> list[MapPoint]:
    """The map's segments with what their points show, in the map's order; a segment that
    stopped being usable since the map was read is left out."""
    details = {row["id"]: row for row in map_details(project.catalog, VALUE_FACETS)}
    return [
        MapPoint(
            segment,
            float(x),
            float(y),
            Path(row["source"]).name,
            float(row["start"]),
            float(row["duration"]),
            tuple(row["tags"]),
            row["label_source"],
        )
        for segment, (x, y) in zip(drawn.segment_ids, drawn.coordinates, strict=True)
        if (row := details.get(segment)) is not None
    ]


def top_tags(point: MapPoint) -> str:
    return ", ".join(point.tags[:TOP_TAGS]) or "no tags"


def by_label_source(points: list[MapPoint]) -> Colouring:
    """Who labelled each segment's tags: a person who verified them, a person by bulk or
    import, models only, or nobody."""
    values = tuple(LABEL_SOURCES[p.label_source] for p in points)
    return Colouring("label source", "category", values, tuple(LABEL_SOURCES.values()))


def by_tag(project: Project, points: list[MapPoint], facet: str, tag: str) -> Colouring:
    """Whether each segment has the tag (a person's label over the models')."""
    present = tag_presence(project.catalog, facet, tag)
    values = tuple(HAS_IT if present.get(p.segment_id) else HAS_NOT for p in points)
    return Colouring(f"{facet}/{tag}", "category", values, (HAS_IT, HAS_NOT))


def by_tag_score(project: Project, points: list[MapPoint], facet: str, tag: str) -> Colouring:
    """The latest tagger's score for the tag (NaN where no tagger scored the segment)."""
    scores = tag_scores(project.catalog, facet, tag)
    values = tuple(scores.get(p.segment_id, math.nan) for p in points)
    return Colouring(f"{facet}/{tag} score", "scale", values)


def by_suspicion(project: Project, points: list[MapPoint]) -> Colouring:
    """Each segment's worst open item of the suspicion queue (`curator suspects`): how
    likely one of its labels is wrong; NaN where none is suspected or nothing was computed."""
    worst: dict[str, float] = {}
    for item in stored_suspects(project.catalog):
        segment = str(item["segment_id"])
        worst[segment] = max(worst.get(segment, 0.0), float(item["score"]))
    values = tuple(worst.get(p.segment_id, math.nan) for p in points)
    return Colouring("suspicion", "scale", values)


def by_duplicate_group(project: Project, points: list[MapPoint]) -> Colouring:
    """The duplicate unit each segment belongs to (groups of both levels joined, named by
    their smallest segment id, as `curator duplicates` found them)."""
    unit = linked_segments(project.catalog)
    values = tuple(unit.get(p.segment_id, NO_GROUP) for p in points)
    return Colouring("duplicate group", "group", values)
