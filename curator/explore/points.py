"""What each point of the map says: its segment's file, start and top tags, and the colour
a curator chose (a tag, the label source, the suspicion score or the duplicate group).

Points are columns (numpy arrays, one row per segment in the map's order), not objects: a
map holds up to 40,000 of them and the page builds them on every run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from curator.duplicates.groups import linked_segments
from curator.explore.map import SegmentMap
from curator.music import VALUE_FACETS
from curator.project import Project
from curator.storage.explore import labels_stamp, map_details, tag_presence, tag_scores
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
class MapPoints:
    """The map's segments, one row each, in the map's order.

    files: the track file's name; tags: its top tags, a person's first, then the models'
    best scores ("" for none); label_sources: keys of LABEL_SOURCES.
    """

    segment_ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    files: np.ndarray
    starts: np.ndarray
    tags: np.ndarray
    label_sources: np.ndarray

    def __len__(self) -> int:
        return len(self.segment_ids)


@dataclass(frozen=True)
class Colouring:
    """Each point's colour value, in the map's order.

    kind "category": values are names from `categories` (a legend entry each, in order);
    "scale": values are numbers, NaN for none; "group": values are group names (too many
    for a legend) or `NO_GROUP`.
    """

    title: str
    kind: str
    values: np.ndarray
    categories: tuple[str, ...] = ()


def map_points(project: Project, drawn: SegmentMap) -> MapPoints:
    """The map's segments with what their points show, in the map's order; a segment that
    stopped being usable since the map was drawn is left out."""
    details = map_details(project.catalog, VALUE_FACETS, TOP_TAGS)
    row_of = {segment: i for i, segment in enumerate(details["id"].tolist())}
    rows = np.array([row_of.get(s, -1) for s in drawn.segment_ids], dtype=int)
    kept = rows >= 0
    rows = rows[kept]
    sources = details["source"][rows].tolist()
    return MapPoints(
        np.asarray(drawn.segment_ids, dtype=object)[kept],
        drawn.coordinates[kept, 0],
        drawn.coordinates[kept, 1],
        np.array([os.path.basename(path) for path in sources], dtype=object),
        np.asarray(details["start"], dtype=float)[rows],
        np.asarray(details["tags"], dtype=object)[rows],
        np.asarray(details["label_source"], dtype=object)[rows],
    )


def points_stamp(project: Project) -> tuple[int, str]:
    """Changes whenever what map_points reads of the labels may have (for in-memory caches;
    the map's own stamp covers which segments are on it)."""
    return labels_stamp(project.catalog)


def by_label_source(points: MapPoints) -> Colouring:
    """Who labelled each segment's tags: a person who verified them, a person by bulk or
    import, models only, or nobody."""
    words = np.array([LABEL_SOURCES[s] for s in points.label_sources.tolist()], dtype=object)
    return Colouring("label source", "category", words, tuple(LABEL_SOURCES.values()))


def by_tag(project: Project, points: MapPoints, facet: str, tag: str) -> Colouring:
    """Whether each segment has the tag (a person's label over the models')."""
    present = tag_presence(project.catalog, facet, tag)
    values = np.array(
        [HAS_IT if present.get(s) else HAS_NOT for s in points.segment_ids.tolist()],
        dtype=object,
    )
    return Colouring(f"{facet}/{tag}", "category", values, (HAS_IT, HAS_NOT))


def by_tag_score(project: Project, points: MapPoints, facet: str, tag: str) -> Colouring:
    """The latest tagger's score for the tag (NaN where no tagger scored the segment)."""
    scores = tag_scores(project.catalog, facet, tag)
    return Colouring(f"{facet}/{tag} score", "scale", _numbers(points, scores))


def by_suspicion(project: Project, points: MapPoints) -> Colouring:
    """Each segment's worst open item of the suspicion queue (`curator suspects`): how
    likely one of its labels is wrong; NaN where none is suspected or nothing was computed."""
    worst: dict[str, float] = {}
    for item in stored_suspects(project.catalog):
        segment = str(item["segment_id"])
        worst[segment] = max(worst.get(segment, 0.0), float(item["score"]))
    return Colouring("suspicion", "scale", _numbers(points, worst))


def by_duplicate_group(project: Project, points: MapPoints) -> Colouring:
    """The duplicate unit each segment belongs to (groups of both levels joined, named by
    their smallest segment id, as `curator duplicates` found them)."""
    unit = linked_segments(project.catalog)
    values = np.array([unit.get(s, NO_GROUP) for s in points.segment_ids.tolist()], dtype=object)
    return Colouring("duplicate group", "group", values)


def _numbers(points: MapPoints, found: dict[str, float]) -> np.ndarray:
    return np.array([found.get(s, np.nan) for s in points.segment_ids.tolist()], dtype=float)
