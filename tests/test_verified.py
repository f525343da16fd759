"""What counts as verified (a person decided that tag on that segment), how bulk relabels and
imports are recorded, and finding segments: search, queue positions, who changed what."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from test_suspects import TAGS, Catalogue, add_catalogue

from curator.catalogue.metadata import import_metadata
from curator.curation.probes import LearnOptions, learn, load_dataset, verified
from curator.curation.review import (
    ReviewFilter,
    bulk_relabel,
    describe_batches,
    effective_tags,
    find_segment,
    queue_position,
    review_page,
    save_segment,
    set_labels,
    tag_changes,
    undo,
    unverified_tags,
)
from curator.curation.suspects import SuspectOptions, find_suspects, open_suspects
from curator.errors import CuratorError
from curator.project import Project
from curator.storage import HumanLabel
from curator.storage.prompts import PromptRow, save_prompts

OPTIONS = LearnOptions(facet="instruments", tags=TAGS, min_labels=4, folds=3)


@pytest.fixture
def catalogue(project: Project) -> Catalogue:
    return add_catalogue(project)


def origins(project: Project, segment: str) -> dict[str, str | None]:
    return {
        x["tag"]: x["origin"] for x in project.catalog.labels(segment) if x["source"] == "human"
    }


def cells(project: Project) -> dict[tuple[str, str], bool]:
    """(segment, tag) -> verified, over the instruments facet."""
    data = load_dataset(project, "fake-audio", [("instruments", t) for t in TAGS])
    known = verified(data)
    return {
        (segment, tag): bool(known[i, j])
        for i, segment in enumerate(data.segment_ids)
        for j, tag in enumerate(TAGS)
    }


# ---------------------------------------------------------------- the one definition


def test_an_untouched_model_tag_stays_unverified_when_its_segment_is_saved(
    catalogue: Catalogue,
) -> None:
    # The segment's model tags are kept as they are; the curator rejects one other tag.
    project, segment = catalogue.project, catalogue.ids[0]
    row = find_segment(project, segment)
    assert row is not None
    before = effective_tags(row).get("instruments", [])
    rejected = next(t for t in TAGS if t not in before)
    changes = tag_changes(segment, "instruments", before, before)  # nothing confirmed
    changes.append(HumanLabel(segment, "instruments", rejected, present=False))
    save_segment(project, segment, changes, actor="ana")
    known = cells(project)
    assert known[(segment, rejected)], "the tag the curator decided is verified"
    assert not any(known[(segment, t)] for t in before), "the tags left alone are not"
    assert origins(project, segment) == {rejected: "review"}


def test_a_bulk_relabel_is_recorded_as_bulk_and_verifies_nothing(catalogue: Catalogue) -> None:
    project = catalogue.project
    batch, changed = bulk_relabel(project, ReviewFilter(), "add", "instruments", "piano")
    assert changed > 0
    assert {h["origin"] for h in project.catalog.label_history() if h["batch_id"] == batch} == {
        "bulk"
    }
    assert {origins(project, s).get("piano") for s in catalogue.ids} == {"bulk"}
    assert not any(cells(project).values()), "a bulk add verifies no cell"
    with pytest.raises(CuratorError, match="no tag has 4 verified"):
        learn(project, OPTIONS)  # every cell is labelled by a person, none verified


def test_metadata_import_human_is_recorded_as_import(catalogue: Catalogue, tmp_path: Path) -> None:
    project, segment = catalogue.project, catalogue.ids[0]
    records = tmp_path / "seed.jsonl"
    records.write_text(json.dumps({"id": segment, "instruments_tags": ["808"]}) + "\n")
    summary = import_metadata(project, records, "seed-file", human=True)
    assert summary.labels == 1
    assert origins(project, segment) == {"808": "import"}
    assert not cells(project)[(segment, "808")]


def test_verifying_a_bulk_label_upgrades_it_and_a_bulk_action_never_downgrades(
    catalogue: Catalogue,
) -> None:
    project, segment = catalogue.project, catalogue.ids[0]
    bulk_relabel(project, ReviewFilter(), "add", "instruments", "piano")
    row = find_segment(project, segment)
    assert row is not None and ("instruments", "piano") in unverified_tags(row)
    batch = set_labels(project, [HumanLabel(segment, "instruments", "piano")], actor="ana")
    assert origins(project, segment)["piano"] == "review", "same value, now verified"
    bulk_relabel(project, ReviewFilter(), "add", "instruments", "piano")
    assert origins(project, segment)["piano"] == "review", "a bulk add leaves it verified"
    undo(project, batch)
    assert origins(project, segment)["piano"] == "bulk", "undo puts the origin back"


def test_suspects_judge_bulk_labels_and_skip_verified_ones(catalogue: Catalogue) -> None:
    project = catalogue.project
    options = SuspectOptions(facet="instruments", tags=TAGS)
    # A tagger's wrong "present", restated by a bulk add, is still a suspect; a person's
    # decision is not.
    segment, tag = next(
        (s, t)
        for s, t in sorted(catalogue.flipped)
        if catalogue.labels[catalogue.ids.index(s), TAGS.index(t)]
    )
    bulk_relabel(project, ReviewFilter(text=segment), "add", "instruments", tag)
    assert origins(project, segment) == {tag: "bulk"}
    ranked = {(s, t) for s, _, t in find_suspects(project, options).ranking}
    assert (segment, tag) in ranked
    set_labels(project, [HumanLabel(segment, "instruments", tag, present=True)])
    assert (segment, tag) not in {(s, t) for s, _, t in find_suspects(project, options).ranking}
    open_items = {(r["segment_id"], r["tag"]) for r in open_suspects(project)}
    assert (segment, tag) not in open_items


def test_a_bulk_relabel_after_judging_leaves_the_item_open(catalogue: Catalogue) -> None:
    project = catalogue.project
    find_suspects(project, SuspectOptions(facet="instruments", tags=TAGS))
    first = open_suspects(project, limit=1)[0]
    bulk_relabel(project, ReviewFilter(text=first["segment_id"]), "add", "instruments",
                 first["tag"])  # fmt: skip
    still = {(r["segment_id"], r["tag"]) for r in open_suspects(project)}
    assert (first["segment_id"], first["tag"]) in still


def test_unverified_source_filter(catalogue: Catalogue) -> None:
    project = catalogue.project
    pianos = review_page(project, ReviewFilter("instruments", "piano"), 1, 100)
    unverified = ReviewFilter("instruments", "piano", source="unverified")
    assert review_page(project, unverified).total == pianos.total > 0
    first = pianos.segments[0]["id"]
    set_labels(project, [HumanLabel(first, "instruments", "piano")])
    assert review_page(project, unverified).total == pianos.total - 1


def test_learned_tagger_trains_on_verified_cells_only(catalogue: Catalogue) -> None:
    project = catalogue.project
    # Before: one reviewed tag of a facet counted every tag of that facet as verified.
    changes = [
        HumanLabel(catalogue.ids[i], "instruments", "snare", bool(catalogue.truth[i, 0]))
        for i in range(40)
    ]
    set_labels(project, changes, actor="ana")
    model = learn(project, OPTIONS)
    report = {r.tag: r for r in model.report}
    assert report["snare"].trained and report["snare"].positives + report["snare"].negatives == 40
    assert (report["808"].positives, report["808"].negatives) == (0, 0)
    assert not report["808"].trained and not report["piano"].trained


# ---------------------------------------------------------------- bulk counts and history


def test_a_rename_of_5_segments_says_5_segments(catalogue: Catalogue) -> None:
    project = catalogue.project
    five = catalogue.ids[:5]
    set_labels(project, [HumanLabel(s, "instruments", "snare") for s in five])
    where = ReviewFilter("instruments", "snare", source="human")
    batch, changed = bulk_relabel(project, where, "rename", "instruments", "snare", "808")
    assert changed == 10, "5 rejected and 5 added"
    (summary,) = project.catalog.batches(limit=1)
    assert summary["batch_id"] == batch and summary["segments"] == 5
    words = describe_batches(project, [batch])[batch]
    assert words == "+instruments/808 on 5 segments, -instruments/snare on 5 segments"


def test_history_names_the_segment_and_its_tags_and_filters_by_curator(
    catalogue: Catalogue,
) -> None:
    project, segment = catalogue.project, catalogue.ids[3]
    changes = [
        HumanLabel(segment, "instruments", "piano"),
        HumanLabel(segment, "instruments", "snare", present=False),
    ]
    batch, _ = save_segment(project, segment, changes, note="sub is off", actor="ana")
    set_labels(project, [HumanLabel(catalogue.ids[4], "instruments", "808")], actor="bo")
    (row,) = project.catalog.batches(actor="ana")
    assert row["batch_id"] == batch and row["segment_ids"] == [segment]
    assert describe_batches(project, [batch])[batch] == (
        "+instruments/piano, -instruments/snare, note"
    )
    assert [b["actor"] for b in project.catalog.batches(segment_id=catalogue.ids[4])] == ["bo"]
    assert project.catalog.curators() == ["ana", "bo"]


def test_per_curator_counts_of_the_last_day_and_week(catalogue: Catalogue) -> None:
    project = catalogue.project
    three = [HumanLabel(s, "instruments", "808") for s in catalogue.ids[:3]]
    set_labels(project, three, actor="ana")
    set_labels(project, [HumanLabel(catalogue.ids[9], "instruments", "piano")], actor="bo")
    now = project.catalog.curator_activity()
    assert [(r["actor"], r["changes_day"], r["segments_week"]) for r in now] == [
        ("ana", 3, 3),
        ("bo", 1, 1),
    ]
    later = datetime.now() + timedelta(days=3)
    assert [(r["actor"], r["changes_day"], r["changes_week"]) for r in
            project.catalog.curator_activity(later)] == [("ana", 0, 3), ("bo", 0, 1)]  # fmt: skip
    assert project.catalog.curator_activity(datetime.now() + timedelta(days=8)) == []


# ---------------------------------------------------------------- finding segments


def test_search_by_id_file_name_note_and_prompt(catalogue: Catalogue) -> None:
    project = catalogue.project
    ids = catalogue.ids
    found = lambda text: [r["id"] for r in review_page(project, ReviewFilter(text=text)).segments]  # noqa: E731
    assert found(ids[7]) == [ids[7]]
    assert found("/NOWHERE/3.WAV") == [ids[6], ids[7]], "a file's segments, any case"
    save_segment(project, ids[11], [], note="Kick drowns the 808", actor="ana")
    assert found("drowns") == [ids[11]]
    save_prompts(project.catalog, [PromptRow(ids[20], "template@1", "A dusty boom bap loop.")])
    assert found("boom bap") == [ids[20]]
    assert found("no such thing anywhere") == []


def test_a_segment_s_place_in_its_queue(catalogue: Catalogue) -> None:
    project = catalogue.project
    assert queue_position(project, ReviewFilter(), catalogue.ids[13]) == 13
    pianos = review_page(project, ReviewFilter("instruments", "piano"), 1, 100).segments
    assert queue_position(project, ReviewFilter("instruments", "piano"), pianos[2]["id"]) == 2
    absent = next(s for s in catalogue.ids if s not in {r["id"] for r in pianos})
    assert queue_position(project, ReviewFilter("instruments", "piano"), absent) is None
    find_suspects(project, SuspectOptions(facet="instruments", tags=TAGS))
    worst = review_page(project, ReviewFilter(order="suspects"), 2, 5).segments[1]["id"]
    assert queue_position(project, ReviewFilter(order="suspects"), worst) == 6


def test_positions_match_the_rows_of_every_page(catalogue: Catalogue) -> None:
    rows = review_page(catalogue.project, ReviewFilter(), 3, 7).segments
    assert [r["position"] for r in rows] == list(range(14, 21))
    assert np.all(np.diff([r["position"] for r in rows]) == 1)
