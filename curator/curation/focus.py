"""Focus mode's queue and decisions: one segment at a time, labels only for what was decided."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from curator.curation.review import ReviewFilter, label_is_tag, review_page
from curator.errors import InvalidInput
from curator.project import Project
from curator.storage import HumanLabel

WINDOW = 25  # segments read at a time: one queue read per 25 moves


@dataclass(frozen=True)
class ProposedTag:
    """A tag shown on a segment's card: what the models proposed, and what a person decided.

    score: the highest model score for it (None when only a person gave it).
    proposed: whether a model says the tag is present.
    decided: a person's present decision (True accepted, False rejected), None if nobody has.
    """

    facet: str
    tag: str
    score: float | None
    sources: tuple[str, ...]
    proposed: bool
    decided: bool | None


def proposed_tags(row: dict[str, Any]) -> list[ProposedTag]:
    """A segment's tags (never tempo, key or scale), the models' best guesses first."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for label in row["labels"]:
        if not label_is_tag(label["facet"]):
            continue
        item = found.setdefault(
            (label["facet"], label["tag"]),
            {"score": None, "sources": [], "proposed": False, "decided": None},
        )
        if label["source_kind"] == "human":
            item["decided"] = bool(label["present"])
            continue
        item["sources"].append(label["source"])
        item["proposed"] = item["proposed"] or bool(label["present"])
        if label["score"] is not None:
            item["score"] = max(item["score"] or 0.0, float(label["score"]))
    tags = [
        ProposedTag(facet, tag, v["score"], tuple(v["sources"]), v["proposed"], v["decided"])
        for (facet, tag), v in found.items()
    ]
    return sorted(tags, key=lambda t: (t.score is None, -(t.score or 0.0), t.facet, t.tag))


def decision_labels(
    segment_id: str, tags: Iterable[ProposedTag], decisions: Iterable[tuple[str, str, bool]]
) -> list[HumanLabel]:
    """The human labels for what a curator decided on a card: one per tag whose decision is
    new or changed. A tag left untouched gets none (verified means seen), and a decision equal
    to the one a person already recorded is not written again."""
    shown = {(t.facet, t.tag): t for t in tags}
    labels = []
    for facet, tag, present in decisions:
        known = shown.get((facet, tag))
        if known is None:
            raise InvalidInput(f"segment {segment_id!r}: {facet}/{tag} is not on its card")
        if known.decided is not bool(present):
            labels.append(HumanLabel(segment_id, facet, tag, present=bool(present)))
    return labels


def row_after_save(
    row: dict[str, Any], changes: list[HumanLabel], excluded: bool | None, actor: str
) -> dict[str, Any]:
    """The segment as the catalogue now holds it: its card shows the saved decisions without
    reading the queue again."""
    saved = copy.deepcopy(row)
    decided = {(c.facet, c.tag) for c in changes}
    saved["labels"] = [
        x
        for x in saved["labels"]
        if x["source_kind"] != "human" or (x["facet"], x["tag"]) not in decided
    ]
    saved["labels"] += [
        {
            "segment_id": c.segment_id,
            "facet": c.facet,
            "tag": c.tag,
            "present": c.present,
            "value": c.value,
            "source": "human",
            "source_kind": "human",
            "score": None,
            "actor": actor,
        }
        for c in changes
    ]
    if excluded is not None:
        saved["excluded"] = excluded
    return saved


@dataclass
class FocusQueue:
    """The segments a curator goes through one at a time, read from the review queue as needed.

    `rows` holds every segment read so far, in queue order, and `cursor` the one in focus, so
    going back shows a segment as it was saved. A saved segment may leave the queue (its tag
    rejected), moving every later one up a place: the next read starts early enough to cover
    that, and skips what it has already read.
    """

    where: ReviewFilter
    rows: list[dict[str, Any]] = field(default_factory=list)
    cursor: int = 0
    total: int = 0
    read_to: int = 0  # queue position just after the last segment read
    saved_since_read: int = 0
    finished: bool = False
    first: int = field(init=False)  # queue position of rows[0] (a link may start mid-queue)

    def __post_init__(self) -> None:
        self.first = self.read_to

    def current(self, project: Project) -> dict[str, Any] | None:
        """The segment in focus (reading more of the queue when the cursor reached its end)."""
        if self.cursor >= len(self.rows) and not self.finished:
            self.read_more(project)
        return self.rows[self.cursor] if self.cursor < len(self.rows) else None

    def read_ahead(self, project: Project, count: int) -> None:
        """Read the next part of the queue now if fewer than `count` segments are left to show
        (so that moving on never waits for a read)."""
        if len(self.rows) - self.cursor <= count and not self.finished:
            self.read_more(project)

    def upcoming(self, count: int) -> list[dict[str, Any]]:
        """The next `count` segments already read (whose audio can be prepared)."""
        return self.rows[self.cursor + 1 : self.cursor + 1 + count]

    def read_more(self, project: Project) -> None:
        slack = min(self.saved_since_read, self.read_to)
        start = self.read_to - slack
        page = review_page(project, self.where, 1, WINDOW + slack, offset=start)
        seen = {row["id"] for row in self.rows}
        fresh = [row for row in page.segments if row["id"] not in seen]
        self.total = page.total
        if fresh:
            self.read_to = start + page.segments.index(fresh[-1]) + 1
        self.saved_since_read = 0
        self.finished = len(page.segments) < WINDOW + slack or not fresh
        self.rows += fresh

    def move(self, step: int) -> None:
        """Go `step` segments on (negative: back); never before the first, nor past the end."""
        self.cursor = max(0, min(self.cursor + step, len(self.rows)))

    def saved(self, row: dict[str, Any]) -> None:
        """Put the saved segment `row` in place of the one in focus."""
        self.rows[self.cursor] = row
        self.saved_since_read += 1

    @property
    def position(self) -> int:
        """The focused segment's 1-based place in the queue (as it was read)."""
        return self.first + self.cursor + 1
