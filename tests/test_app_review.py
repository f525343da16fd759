"""The Review and History pages, driven with Streamlit's AppTest on a tagged project."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from tests_support import Plugin, hats_review_project

from curator import app as app_package
from curator.api import Analyzer, Measurement
from curator.project import Project
from curator.storage import HumanLabel
from curator.tagging.runs import run_analyzer
from curator.testing import registry_of

PAGES = Path(app_package.__file__).parent / "pages"


@pytest.fixture
def tagged(tmp_path: Path, loud_and_quiet: Path, monkeypatch) -> Project:
    return hats_review_project(tmp_path / "project", loud_and_quiet, monkeypatch)


def open_page(name: str) -> AppTest:
    page = AppTest.from_file(str(PAGES / name), default_timeout=60).run()
    assert not page.exception, page.exception
    if name == "1_Review.py":  # these tests are about the list view (focus mode is the default)
        page.sidebar.radio(key="review-view").set_value("List").run()
        assert not page.exception, page.exception
    return page


def test_review_filters_and_shows_segments_with_players(tagged: Project) -> None:
    page = open_page("1_Review.py")
    assert "12 segment(s) match." in [m.value for m in page.markdown]
    page.sidebar.selectbox[0].select("instruments").run()
    page.sidebar.selectbox[1].select("hi-hat").run()
    assert "6 segment(s) match." in [m.value for m in page.markdown]
    assert len(page.get("audio")) == 6
    assert len(page.get("image")) == 6, "a spectrogram per segment"
    assert any("hi-hat" in c.value and "hats@1" in c.value for c in page.caption)


def test_review_pages_through_the_queue_and_back_when_the_filter_narrows(
    tagged: Project,
) -> None:
    page = open_page("1_Review.py")
    assert len(page.get("audio")) == 10, "the first page of 10"
    page.number_input(key="review-page").set_value(2).run()
    assert not page.exception, page.exception
    assert "12 segment(s) match." in [m.value for m in page.markdown]
    assert len(page.get("audio")) == 2, "the 2 segments after the first 10"
    page.sidebar.selectbox[0].select("instruments").run()
    page.sidebar.selectbox[1].select("hi-hat").run()
    assert not page.exception, page.exception
    assert page.number_input(key="review-page").value == 1, "6 segments make one page"
    assert len(page.get("audio")) == 6


def test_review_saves_a_rejection_and_an_addition(tagged: Project) -> None:
    page = open_page("1_Review.py")
    page.sidebar.selectbox[0].select("instruments").run()
    page.sidebar.selectbox[1].select("hi-hat").run()
    form_tags = page.multiselect(
        key=next(m.key for m in page.multiselect if m.key.endswith("-instruments"))
    )
    segment = form_tags.key.removesuffix("-instruments")
    form_tags.unselect("hi-hat").select("snare")
    page.button[0].click().run()  # the first form's Save
    assert not page.exception
    labels = {(x["tag"], x["source_kind"]): x for x in tagged.catalog.labels(segment)}
    assert labels[("hi-hat", "human")]["present"] is False
    assert labels[("snare", "human")]["present"] is True
    assert labels[("snare", "human")]["actor"] == "ana"
    assert "5 segment(s) match." in [m.value for m in page.markdown]


def test_history_lists_changes_and_undoes_them(tagged: Project) -> None:
    from curator.curation.review import set_labels
    from curator.storage import HumanLabel

    segment = tagged.catalog.segment_rows()[0]["id"]
    batch = set_labels(tagged, [HumanLabel(segment, "instruments", "flute")], actor="ana")
    page = open_page("2_History.py")
    assert any(batch in m.value and "ana" in m.value for m in page.markdown)
    page.button(key=f"undo-{batch}").click().run()
    assert not page.exception
    assert all(x["tag"] != "flute" for x in tagged.catalog.labels(segment))
    assert tagged.catalog.batches()[0]["action"] == "undo"


def test_bulk_relabel_page_previews_applies_and_undoes(tagged: Project) -> None:
    from curator.curation.review import ReviewFilter, review_page

    page = open_page("4_Bulk_relabel.py")
    page.selectbox(key="bulk-filter-facet").select("instruments").run()
    page.selectbox(key="bulk-filter-tag").select("hi-hat").run()
    assert "6 segment(s) match the filter." in [m.value for m in page.markdown]
    page.selectbox(key="bulk-action").select("add").run()  # no action is preset
    page.selectbox(key="bulk-facet").select("instruments").run()
    page.selectbox(key="bulk-tag").select("hi-hat rolls").run()
    page.button(key="bulk-apply").click().run()
    assert not page.exception
    rolls = ReviewFilter("instruments", "hi-hat rolls", source="human")
    assert review_page(tagged, rolls).total == 6
    page.button(key="bulk-undo").click().run()
    assert review_page(tagged, rolls).total == 0
    assert [b["action"] for b in tagged.catalog.batches()] == ["undo", "add"]


def test_review_corrects_tempo_and_key_notes_excludes_and_adds_a_new_tag(
    tagged: Project,
) -> None:
    from curator.curation.review import undo

    page = open_page("1_Review.py")
    segment = next(m.key for m in page.multiselect if m.key.endswith("-instruments"))
    segment = segment.removesuffix("-instruments")
    page.text_input(key=f"{segment}-tempo").input("109")
    page.selectbox(key=f"{segment}-key").select("G")
    page.selectbox(key=f"{segment}-scale").select("minor")
    page.selectbox(key=f"{segment}-new-facet").select("instruments")
    page.text_input(key=f"{segment}-new-tag").input("kalimba")
    page.text_input(key=f"{segment}-note").input("808 is really a sub")
    page.checkbox(key=f"{segment}-excluded").check()
    page.button[0].click().run()
    assert not page.exception
    values = {
        x["facet"]: x["value"]
        for x in tagged.catalog.labels(segment)
        if x["source_kind"] == "human"
    }
    assert (values["tempo"], values["key"], values["scale"]) == ("109", "G", "minor")
    assert values["instruments"] is None and tagged.vocabulary().facet("instruments").tag("kalimba")
    (row,) = [r for r in tagged.catalog.segment_rows(include_unusable=True) if r["id"] == segment]
    assert row["excluded"]
    assert "11 segment(s) match." in [m.value for m in page.markdown], "excluded leaves the queue"
    batch = tagged.catalog.batches()[0]["batch_id"]
    undo(tagged, batch)
    (row,) = [r for r in tagged.catalog.segment_rows(include_unusable=True) if r["id"] == segment]
    assert not row["excluded"]
    assert all(x["source_kind"] != "human" for x in tagged.catalog.labels(segment))


def test_review_refuses_a_bad_value_with_a_message_and_saves_nothing(tagged: Project) -> None:
    page = open_page("1_Review.py")
    segment = next(m.key for m in page.multiselect if m.key.endswith("-instruments"))
    segment = segment.removesuffix("-instruments")
    page.text_input(key=f"{segment}-tempo").input("1000")
    page.text_input(key=f"{segment}-new-tag").input("x" * 65)
    page.text_input(key=f"{segment}-note").input("kept only if all of it is valid")
    page.button[0].click().run()
    assert not page.exception
    assert any("at most 64 characters" in e.value for e in page.error)
    page.text_input(key=f"{segment}-new-tag").input("")
    page.button[0].click().run()
    assert not page.exception
    assert any("must be 20-400 BPM" in e.value for e in page.error)
    assert tagged.catalog.label_history() == [], "neither the labels nor the note were saved"
    assert tagged.vocabulary().facet("instruments").tag("x" * 65) is None


class FlatKeys(Analyzer):
    """Keys spelt with flats and a capitalised scale, as Essentia and older plugins give them."""

    name, version, measures, sample_rate = "flats", "1", ("key", "scale"), 8000

    def analyze(self, batch):
        return [[Measurement("key", text="Eb", confidence=0.9), _minor()] for _ in batch]


def _minor() -> Measurement:
    return Measurement("scale", text="Minor", confidence=0.9)


def first_segment_on_page(page: AppTest) -> str:
    key = next(m.key for m in page.multiselect if m.key.endswith("-instruments"))
    return key.removesuffix("-instruments")


def human_values(project: Project, segment: str) -> dict[str, str]:
    labels = project.catalog.labels(segment)
    return {x["facet"]: x["value"] for x in labels if x["source_kind"] == "human" and x["value"]}


def test_review_shows_a_stored_flat_key_in_sharps_and_saving_leaves_it_alone(
    tagged: Project,
) -> None:
    # A catalogue written before keys were normalised on the way in holds "Eb" and "Minor";
    # the page's key list has sharps only and KEYS.index("Eb") took the whole page down.
    segment = first_segment_on_page(open_page("1_Review.py"))
    stored = [HumanLabel(segment, "key", "key", value="Eb")]
    stored.append(HumanLabel(segment, "scale", "scale", value="Minor"))
    tagged.catalog.import_model_labels(stored, [segment], "essentia@old", {})
    page = open_page("1_Review.py")
    assert page.selectbox(key=f"{segment}-key").value == "D#"
    assert page.selectbox(key=f"{segment}-scale").value == "minor"
    page.button[0].click().run()
    assert not page.exception, page.exception
    assert human_values(tagged, segment) == {}, "showing D# for Eb is no correction"


def test_an_analyzer_s_flat_key_is_stored_in_sharps_and_shown(tagged: Project) -> None:
    run_analyzer(tagged, "flats", registry=registry_of(Plugin(FlatKeys())))
    values = {(x["facet"], x["value"]) for x in tagged.catalog.labels() if x["source"] == "flats@1"}
    assert values == {("key", "D#"), ("scale", "minor")}
    page = open_page("1_Review.py")
    segment = first_segment_on_page(page)
    assert (
        page.selectbox(key=f"{segment}-key").value,
        page.selectbox(key=f"{segment}-scale").value,
    ) == ("D#", "minor")
