"""What curators review: a filtered, paginated queue of segments, bulk relabels, and undo."""

from __future__ import annotations

import getpass
import os
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any

from curator.curation.probes import current_version, informative_ranking
from curator.errors import CuratorError, InvalidInput
from curator.music import VALUE_FACETS, value_text
from curator.project import Project
from curator.storage import HumanLabel, ReviewQuery
from curator.storage.labels import REVIEWED
from curator.storage.suspects import (
    in_order_position,
    review_in_order,
    review_suspects,
    suspects_computed,
    suspects_position,
)
from curator.validation import (
    checked_labels,
    known_facet,
    note_text,
    tag_name,
    vocabulary_tag,
)

SOURCES = ("model", "human", "both", "disagree", "unverified")
STATES = ("usable", "silent", "excluded", "missing")
# Queue orders besides by id: the stored suspicion queue (`curator suspects`), and the
# segments whose label would teach the learned tagger most (uncertainty sampling).
ORDERS = {
    "id": "by segment id",
    "suspects": "likely wrong first",
    "informative": "most informative for the learned tagger",
}


def current_curator() -> str:
    """Who is making a change: CURATOR_USER, else the login name."""
    return os.environ.get("CURATOR_USER") or getpass.getuser()


@dataclass(frozen=True)
class ReviewFilter:
    """Which segments a curator wants to see.

    facet / tag: segments whose effective labels include this tag (or any tag of the facet).
    source: "model" (only models say so), "human" (a person said so), "both" (a person
      confirmed a model), "disagree" (a person rejected what a model said), "unverified"
      (the segment has the tag but no person verified it: see `verified` in docs/review.md).
    score_min / score_max: the model's score for the tag.
    uncertain_first: order by how close the model's score is to the tag's threshold.
    state: "usable", "silent", "excluded" or "missing" (track gone); None for all.
    confidence_below: segments whose latest tempo or key estimate has a lower confidence.
    order: "id"; "suspects" (segments with open suspicion-queue items, worst first, each
      row's `suspects` listing them with their reasons); "informative" (segments the learned
      tagger is least sure of for a tag no person verified there; `informativeness`).
    text: segments whose id, file path, note or any prompt contains this (any case).
    segments: only these segments (a saved queue: curator.curation.queues), None for all.
    """

    facet: str | None = None
    tag: str | None = None
    source: str | None = None
    score_min: float | None = None
    score_max: float | None = None
    uncertain_first: bool = False
    state: str | None = "usable"
    confidence_below: float | None = None
    order: str = "id"
    text: str | None = None
    segments: tuple[str, ...] | None = None

    def check(self) -> None:
        if self.order not in ORDERS:
            raise CuratorError(f"order must be one of {', '.join(ORDERS)}, not {self.order!r}")
        if self.source is not None and self.source not in SOURCES:
            raise CuratorError(f"source must be one of {', '.join(SOURCES)}, not {self.source!r}")
        if self.state is not None and self.state not in STATES:
            raise CuratorError(f"state must be one of {', '.join(STATES)}, not {self.state!r}")
        if self.source and not self.tag and not self.facet:
            raise CuratorError("filtering by label source needs a facet or a tag")


@dataclass
class ReviewPage:
    """One page of the queue and the number of segments the filter matches in all."""

    total: int
    segments: list[dict[str, Any]] = field(default_factory=list)


def review_page(
    project: Project,
    where: ReviewFilter,
    page: int = 1,
    page_size: int = 50,
    *,
    offset: int | None = None,
) -> ReviewPage:
    """Segments matching `where`, with their labels, scores and measurements.

    `offset` (a queue position) replaces `page` where a reader keeps its own place in the
    queue, as focus mode does.
    """
    where.check()
    query = _query(project, where)
    offset = (page - 1) * page_size if offset is None else offset
    # In the ranked orders the facet and tag choose the queue's items (a suspect may be a
    # tag the segment lacks), not segments carrying the tag.
    segments = replace(query, facet=None, tag=None, source=None, threshold=None)
    if where.order == "suspects":
        total, rows = review_suspects(
            project.catalog, segments, where.facet, where.tag, offset, page_size
        )
    elif where.order == "informative":
        ranking = informative_ranking(project, where.facet, where.tag)
        total, rows = review_in_order(project.catalog, segments, ranking, offset, page_size)
        for row in rows:
            row["informativeness"] = row.pop("rank_value")
    else:
        total, rows = project.catalog.review_segments(query, offset, page_size)
    return ReviewPage(total, rows)


def queue_position(project: Project, where: ReviewFilter, segment_id: str) -> int | None:
    """Where `segment_id` stands in the queue `where` gives (0 first; None: not in it), so a
    link to a segment opens its queue at it: page (position // page size + 1), or the
    `offset` focus mode reads from."""
    where.check()
    query = _query(project, where)
    segments = replace(query, facet=None, tag=None, source=None, threshold=None)
    if where.order == "suspects":
        return suspects_position(project.catalog, segments, where.facet, where.tag, segment_id)
    if where.order == "informative":
        ranking = informative_ranking(project, where.facet, where.tag)
        return in_order_position(project.catalog, segments, ranking, segment_id)
    return project.catalog.queue_position(query, segment_id)


def find_segment(project: Project, segment_id: str) -> dict[str, Any] | None:
    """One segment with the details a review card shows, whatever its state (None: no such
    segment)."""
    found = review_page(project, ReviewFilter(state=None, text=segment_id), 1, 50).segments
    return next((row for row in found if row["id"] == segment_id), None)


def unavailable_orders(project: Project) -> dict[str, str]:
    """Queue orders this project cannot give yet, each with what to do about it."""
    missing = {}
    if current_version(project) is None:
        missing["informative"] = (
            "Most informative needs a learned tagger: train one on the Learned tagger page "
            "or with `curator learn`."
        )
    return missing


def suspects_ready(project: Project, where: ReviewFilter) -> bool:
    """Whether the suspicion queue was computed for the filter's facet and tag."""
    return suspects_computed(project.catalog, where.facet, where.tag)


def _query(project: Project, where: ReviewFilter) -> ReviewQuery:
    threshold = None
    if where.uncertain_first and where.tag and where.facet:
        facet = project.vocabulary().facet(where.facet)
        known = facet.tag(where.tag)
        threshold = known.threshold if known else facet.threshold
    return ReviewQuery(
        where.facet,
        where.tag,
        where.source,
        where.score_min,
        where.score_max,
        threshold,
        where.state,
        where.confidence_below,
        where.text.strip() if where.text and where.text.strip() else None,
        where.segments,
    )


# -- changing labels -------------------------------------------------------------------------


def new_batch_id() -> str:
    return uuid.uuid4().hex[:12]


def set_labels(
    project: Project, changes: list[HumanLabel], action: str = "set", actor: str | None = None
) -> str:
    """Record a curator's decisions as one batch (undone together); returns the batch id.

    Every change is checked first (tags in the vocabulary, valid tempo, key and scale,
    segments that exist); one bad change refuses the batch with InvalidInput.
    """
    batch = new_batch_id()
    checked = checked_labels(project.vocabulary(), changes)
    project.catalog.apply_human_labels(checked, actor or current_curator(), batch, action)
    return batch


# Above this many segments, the Bulk relabel page asks for the count to be typed before it
# applies a change: one slip must not relabel the catalogue.
BULK_CONFIRM_ABOVE = 300


@dataclass
class BulkPreview:
    count: int
    sample: list[str]


def bulk_preview(project: Project, where: ReviewFilter, sample: int = 10) -> BulkPreview:
    """How many segments a bulk change would touch, and a few of them."""
    page = review_page(project, where, 1, sample)
    return BulkPreview(page.total, [row["id"] for row in page.segments])


def bulk_relabel(
    project: Project,
    where: ReviewFilter,
    action: str,
    facet: str,
    tag: str,
    new_tag: str | None = None,
    actor: str | None = None,
) -> tuple[str, int]:
    """Add, remove or rename `tag` on every segment `where` matches, in one transaction.

    A tag added (or renamed to) must be in the facet's vocabulary; a tag removed or renamed
    away need only be a well-formed name, so a tag dropped from the vocabulary can still be
    cleared. Returns the batch id (for undo) and how many labels changed.
    """
    if action not in ("add", "remove", "rename"):
        raise CuratorError(f"bulk action must be add, remove or rename, not {action!r}")
    if action == "rename" and not new_tag:
        raise CuratorError("rename needs the new tag's name")
    where.check()
    tag, new_tag = _bulk_tags(project, action, facet, tag, new_tag)
    batch = new_batch_id()
    changed = project.catalog.bulk_relabel(
        _query(project, where), action, facet, tag, new_tag, actor or current_curator(), batch
    )
    return batch, changed


def _bulk_tags(
    project: Project, action: str, facet: str, tag: str, new_tag: str | None
) -> tuple[str, str | None]:
    """The change's tags, checked: what it marks present must be in the vocabulary."""
    vocabulary = project.vocabulary()
    try:
        if action == "add":
            return vocabulary_tag(vocabulary, facet, tag), None
        known_facet(vocabulary, facet)
        name = tag_name(tag)
        return name, vocabulary_tag(vocabulary, facet, new_tag) if action == "rename" else None
    except ValueError as exc:
        raise InvalidInput(f"bulk {action}: {exc}") from None


def describe_batches(project: Project, batch_ids: list[str]) -> dict[str, str]:
    """Per batch, what it changed in words: "+instruments/snare, -instruments/hi-hat on 5
    segment(s), note" (a count only where more than one segment changed)."""
    said: dict[str, list[str]] = {}
    for change in project.catalog.batch_changes(batch_ids):
        said.setdefault(change["batch_id"], []).append(_change_words(change))
    return {batch: ", ".join(words) for batch, words in said.items()}


_CHANGE_MARK = {"added": "+", "rejected": "-", "cleared": "cleared ", "set": ""}


def _change_words(change: dict[str, Any]) -> str:
    if change["facet"] == "_segment":
        name = str(change["tag"])  # note or excluded
    elif change["facet"] == change["tag"]:
        name = str(change["facet"])  # tempo, key, scale
    else:
        name = f"{change['facet']}/{change['tag']}"
    count = change["segments"]
    return _CHANGE_MARK[change["change"]] + name + (f" on {count} segments" if count > 1 else "")


def undo(project: Project, batch_id: str, actor: str | None = None) -> int:
    """Put back what batch `batch_id` changed; returns how many labels were restored."""
    return project.catalog.undo_batch(batch_id, actor or current_curator(), new_batch_id())


# -- what a review page shows and saves ------------------------------------------------------


def effective_tags(row: dict[str, Any]) -> dict[str, list[str]]:
    """Per facet, the tags a segment has now: a person's label, else any model's."""
    decided: dict[tuple[str, str], bool] = {}
    for label in sorted(row["labels"], key=lambda x: x["source_kind"] == "human"):
        key = (label["facet"], label["tag"])
        if label["source_kind"] == "human" or not decided.get(key):
            decided[key] = label["present"]
    tags: dict[str, list[str]] = {}
    for (facet, tag), present in sorted(decided.items()):
        if present and label_is_tag(facet):
            tags.setdefault(facet, []).append(tag)
    return tags


def label_is_tag(facet: str) -> bool:
    """Whether `facet`'s labels are tags: tempo, key and scale (music.VALUE_FACETS) are values."""
    return facet not in VALUE_FACETS


def tag_changes(
    segment_id: str,
    facet: str,
    before: list[str],
    after: list[str],
    confirm: Collection[tuple[str, str]] = (),
) -> list[HumanLabel]:
    """The human labels that turn a segment's tags `before` into `after`.

    Tags kept and listed in `confirm` (a model's tags the curator has checked) become
    human-confirmed, so they count as reviewed and survive any re-tagging.
    """
    kept = [t for t in after if t in before and (facet, t) in confirm]
    added = [HumanLabel(segment_id, facet, t, present=True) for t in after if t not in before]
    removed = [HumanLabel(segment_id, facet, t, present=False) for t in before if t not in after]
    return added + removed + [HumanLabel(segment_id, facet, t, present=True) for t in kept]


def unverified_tags(row: dict[str, Any]) -> set[tuple[str, str]]:
    """(facet, tag) the segment has now that no person verified (a model's, a bulk
    relabel's or an import's): what "confirm the tags I kept" turns into verified labels."""
    verified = {
        (x["facet"], x["tag"])
        for x in row["labels"]
        if x["source_kind"] == "human" and x.get("origin") == REVIEWED
    }
    return {
        (facet, tag)
        for facet, tags in effective_tags(row).items()
        for tag in tags
        if (facet, tag) not in verified
    }


def model_only_tags(row: dict[str, Any]) -> set[tuple[str, str]]:
    """(facet, tag) a model gave the segment that no person has decided on yet."""
    human = {(x["facet"], x["tag"]) for x in row["labels"] if x["source_kind"] == "human"}
    return {
        (x["facet"], x["tag"])
        for x in row["labels"]
        if x["source_kind"] == "model" and x["present"] and (x["facet"], x["tag"]) not in human
    }


def value_changes(
    segment_id: str, before: dict[str, str | None], after: dict[str, str | None]
) -> list[HumanLabel]:
    """Human labels for the tempo, key and scale a curator corrected (empty: unchanged)."""
    return [
        HumanLabel(segment_id, name, name, present=True, value=value)
        for name, value in after.items()
        if value and value != before.get(name)
    ]


def current_values(row: dict[str, Any]) -> dict[str, str | None]:
    """Tempo, key and scale as the segment's effective labels give them, in the one spelling.

    A model's "Eb" shows as "D#" (the review page offers sharps), and a value that cannot be
    read at all as None, so that showing a value never counts as correcting it.
    """
    values: dict[str, str | None] = {}
    for label in sorted(row["labels"], key=lambda x: x["source_kind"] == "human"):
        if not label_is_tag(label["facet"]) and label["present"]:
            values[label["facet"]] = value_text(label["facet"], label["value"])
    return values


def save_segment(
    project: Project,
    segment_id: str,
    changes: list[HumanLabel],
    note: str | None = None,
    excluded: bool | None = None,
    actor: str | None = None,
) -> tuple[str, int]:
    """Save one segment's review (labels, note, exclusion) as one batch; returns (batch, n).

    Checked like `set_labels`, and written in one transaction: all of it or nothing.
    """
    batch, actor = new_batch_id(), actor or current_curator()
    checked = checked_labels(project.vocabulary(), changes)
    if any(change.segment_id != segment_id for change in checked):
        raise InvalidInput(f"segment {segment_id!r}: a review saves only this segment's labels")
    try:
        note = None if note is None else note_text(note)
    except ValueError as exc:
        raise InvalidInput(f"segment {segment_id!r}: {exc}") from None
    if excluded is not None and not isinstance(excluded, bool):
        raise InvalidInput(f"segment {segment_id!r}: excluded must be true or false")
    changed = project.catalog.save_review(segment_id, checked, actor, batch, note, excluded)
    return batch, changed
