"""The review queue, bulk relabels and undo, on a tagged catalogue of real audio."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests_support import HatTagger, LevelAnalyzer, Plugin

from curator.catalogue.ingest import ingest
from curator.curation.review import (
    ReviewFilter,
    bulk_preview,
    bulk_relabel,
    review_page,
    set_labels,
    undo,
)
from curator.errors import CuratorError
from curator.project import Project, init_project
from curator.storage import HumanLabel
from curator.storage.prompts import PromptRow, save_prompts
from curator.tagging.runs import run_analyzer, run_tagger
from curator.testing import registry_of


@pytest.fixture
def tagged(tmp_path: Path, loud_and_quiet: Path) -> Project:
    """12 segments: 6 of bright noise (tagged hi-hat by the model), 6 of low sines (808)."""
    project = init_project(tmp_path / "project")
    ingest(project, [loud_and_quiet])
    registry = registry_of(Plugin(HatTagger(), LevelAnalyzer()))
    run_tagger(project, "hats", registry=registry)
    run_analyzer(project, "level", registry=registry)
    return project


def ids(page) -> list[str]:
    return [row["id"] for row in page.segments]


def hats(project: Project) -> list[str]:
    return ids(review_page(project, ReviewFilter("instruments", "hi-hat")))


def test_the_queue_filters_by_tag_and_shows_details(tagged: Project) -> None:
    everything = review_page(tagged, ReviewFilter())
    assert everything.total == 12
    page = review_page(tagged, ReviewFilter("instruments", "hi-hat"))
    assert page.total == 6
    row = page.segments[0]
    assert row["source"].endswith(("track0.wav", "track1.wav", "track2.wav"))
    (label,) = [x for x in row["labels"] if x["tag"] == "hi-hat"]
    assert (label["source"], label["source_kind"], label["present"]) == ("hats@1", "model", True)
    assert {m["name"] for m in row["measurements"]} == {"loudness", "key"}
    assert row["prompt"] is None


def test_the_prompt_shown_is_the_curators_edit_even_when_a_writer_wrote_later(
    tagged: Project,
) -> None:
    segment = hats(tagged)[0]
    save_prompts(tagged.catalog, [PromptRow(segment, "human", "A crisp hi-hat loop.")])
    save_prompts(tagged.catalog, [PromptRow(segment, "template@1", "A beat with hi-hat.")])
    (row,) = [r for r in review_page(tagged, ReviewFilter()).segments if r["id"] == segment]
    assert row["prompt"] == "A crisp hi-hat loop."


def test_pages_do_not_overlap(tagged: Project) -> None:
    first = ids(review_page(tagged, ReviewFilter(), page=1, page_size=5))
    second = ids(review_page(tagged, ReviewFilter(), page=2, page_size=5))
    third = ids(review_page(tagged, ReviewFilter(), page=3, page_size=5))
    assert len(first) == 5 and len(third) == 2
    assert len(set(first + second + third)) == 12


def test_label_source_filters(tagged: Project) -> None:
    hat_segments = hats(tagged)
    set_labels(
        tagged,
        [
            HumanLabel(hat_segments[0], "instruments", "hi-hat", present=True),
            HumanLabel(hat_segments[1], "instruments", "hi-hat", present=False),
        ],
    )
    source = lambda s: ids(review_page(tagged, ReviewFilter("instruments", "hi-hat", s)))  # noqa: E731
    assert source("both") == [hat_segments[0]]
    assert source("human") == [hat_segments[0]]
    assert source("disagree") == [hat_segments[1]]
    assert set(source("model")) == set(hat_segments[2:])
    assert hat_segments[1] not in hats(tagged), "a rejected tag leaves the queue"


def test_score_range_and_uncertain_first(tagged: Project) -> None:
    bright = review_page(tagged, ReviewFilter("instruments", "hi-hat", score_min=0.5))
    assert bright.total == 6 and all(r["score"] >= 0.5 for r in bright.segments)
    unsure = review_page(tagged, ReviewFilter("instruments", "808", uncertain_first=True))
    threshold = tagged.vocabulary().facet("instruments").tag("808").threshold
    margins = [abs(r["score"] - threshold) for r in unsure.segments]
    assert unsure.total == 12 and margins == sorted(margins)


def test_bulk_add_then_undo_restores_everything(tagged: Project) -> None:
    where = ReviewFilter("instruments", "hi-hat")
    preview = bulk_preview(tagged, where, sample=3)
    assert preview.count == 6 and len(preview.sample) == 3
    batch, changed = bulk_relabel(tagged, where, "add", "instruments", "hi-hat rolls", actor="ana")
    assert changed == 6
    assert review_page(tagged, ReviewFilter("instruments", "hi-hat rolls")).total == 6
    assert undo(tagged, batch, actor="ana") == 6
    assert review_page(tagged, ReviewFilter("instruments", "hi-hat rolls")).total == 0
    history = tagged.catalog.label_history()
    assert [h["action"] for h in history] == ["add"] * 6 + ["undo"] * 6
    with pytest.raises(CuratorError, match="nothing to undo"):
        undo(tagged, batch)


def test_bulk_rename_and_remove(tagged: Project) -> None:
    where = ReviewFilter("instruments", "hi-hat")
    batch, changed = bulk_relabel(
        tagged, where, "rename", "instruments", "hi-hat", new_tag="open hat"
    )
    assert changed == 12  # each segment: hi-hat rejected, open hat added
    assert hats(tagged) == []
    assert review_page(tagged, ReviewFilter("instruments", "open hat")).total == 6
    undo(tagged, batch)
    assert len(hats(tagged)) == 6
    _, removed = bulk_relabel(
        tagged, ReviewFilter("instruments", "hi-hat"), "remove", "instruments", "hi-hat"
    )
    assert removed == 6 and hats(tagged) == []


def test_undo_puts_back_an_earlier_human_label(tagged: Project) -> None:
    segment = hats(tagged)[0]
    set_labels(tagged, [HumanLabel(segment, "instruments", "snare", present=False)])
    batch = set_labels(tagged, [HumanLabel(segment, "instruments", "snare", present=True)])
    undo(tagged, batch)
    (label,) = [x for x in tagged.catalog.labels(segment) if x["tag"] == "snare"]
    assert label["present"] is False


def test_bad_filters_are_explained(tagged: Project) -> None:
    with pytest.raises(CuratorError, match="source must be one of"):
        review_page(tagged, ReviewFilter("instruments", "hi-hat", source="robot"))
    with pytest.raises(CuratorError, match="needs a facet or a tag"):
        review_page(tagged, ReviewFilter(source="human"))
    with pytest.raises(CuratorError, match="add, remove or rename"):
        bulk_relabel(tagged, ReviewFilter(), "explode", "instruments", "x")


def test_tag_frequencies_split_model_and_human(tagged: Project) -> None:
    segment = hats(tagged)[0]
    set_labels(tagged, [HumanLabel(segment, "instruments", "hi-hat")])
    frequencies = tagged.catalog.tag_frequencies("instruments")
    counts = {r["tag"]: (r["model"], r["human"]) for r in frequencies}
    assert counts["hi-hat"] == (5, 1) and counts["808"] == (6, 0)


def test_filter_by_analyzer_confidence(tagged: Project) -> None:
    unsure = review_page(tagged, ReviewFilter(confidence_below=0.7))
    quiet = {
        m["segment_id"]
        for r in review_page(tagged, ReviewFilter(), 1, 50).segments
        for m in r["measurements"]
        if m["name"] == "key" and m["confidence"] < 0.7
    }
    assert unsure.total == len(quiet) == 6
    assert set(ids(unsure)) == quiet


def test_saving_a_review_confirms_the_model_tags_kept(tagged: Project) -> None:
    from curator.curation.review import effective_tags, model_only_tags, tag_changes

    row = review_page(tagged, ReviewFilter("instruments", "hi-hat"), 1, 1).segments[0]
    before = effective_tags(row)["instruments"]
    changes = tag_changes(
        row["id"], "instruments", before, [*before, "snare"], model_only_tags(row)
    )
    assert {(c.tag, c.present) for c in changes} == {("snare", True), ("hi-hat", True)}
    set_labels(tagged, changes)
    both = review_page(tagged, ReviewFilter("instruments", "hi-hat", source="both"))
    assert ids(both) == [row["id"]]
