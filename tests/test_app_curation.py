"""The app's pages as a curator finds them: safe bulk relabels, queues in the URL, History
rows that name what changed, curators by name, stale prompts, live run progress."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_suspects import add_catalogue
from tests_support import hats_review_project

from curator import app as app_package
from curator.curation import review
from curator.curation.review import ReviewFilter, review_page, set_labels
from curator.project import Project
from curator.prompts.writing import write_prompts
from curator.status import run_lines, run_progress
from curator.storage import HumanLabel, RunRecord
from curator.tagging.runs import host_id

APP = Path(app_package.__file__).parent
PAGES = APP / "pages"


@pytest.fixture
def tagged(tmp_path: Path, loud_and_quiet: Path, monkeypatch) -> Project:
    """12 segments of real audio: 6 tagged hi-hat by the model, 6 not."""
    return hats_review_project(tmp_path / "project", loud_and_quiet, monkeypatch)


def opened(path: Path, query: dict[str, str] | None = None) -> AppTest:
    page = AppTest.from_file(str(path), default_timeout=60)
    page.query_params.update(query or {})
    page.run()
    assert not page.exception, page.exception
    return page


def list_view(page: AppTest) -> AppTest:
    page.sidebar.radio(key="review-view").set_value("List").run()
    assert not page.exception, page.exception
    return page


def markdown(page: AppTest) -> list[str]:
    return [m.value for m in page.markdown]


def hats(project: Project) -> int:
    return review_page(project, ReviewFilter("instruments", "hi-hat")).total


# ---------------------------------------------------------------- bulk relabel


def choose_hats(page: AppTest) -> None:
    page.selectbox(key="bulk-filter-facet").select("instruments").run()
    page.selectbox(key="bulk-filter-tag").select("hi-hat").run()


def test_bulk_relabel_has_no_default_action_and_plays_its_sample(tagged: Project) -> None:
    page = opened(PAGES / "4_Bulk_relabel.py")
    assert page.selectbox(key="bulk-action").value is None
    assert page.selectbox(key="bulk-tag").value is None
    assert page.button(key="bulk-apply").disabled, "nothing to apply until a change is chosen"
    assert "12 segment(s) match the filter." in markdown(page)
    assert len(page.get("audio")) == 3, "the sample can be heard"


def test_the_count_is_right_after_apply_and_a_rename_counts_segments(tagged: Project) -> None:
    page = opened(PAGES / "4_Bulk_relabel.py")
    choose_hats(page)
    assert "6 segment(s) match the filter." in markdown(page)
    page.selectbox(key="bulk-action").select("rename").run()
    page.selectbox(key="bulk-facet").select("instruments").run()
    page.selectbox(key="bulk-tag").select("hi-hat").run()
    page.selectbox(key="bulk-new-tag").select("hi-hat rolls").run()
    page.button(key="bulk-apply").click().run()
    assert not page.exception, page.exception
    assert "0 segment(s) match the filter." in markdown(page), "counted after the change"
    (said,) = [s.value.replace("\\", "") for s in page.success]  # as_text escapes
    assert "6 segment(s) changed" in said
    assert "+instruments/hi-hat rolls on 6 segments, -instruments/hi-hat on 6 segments" in said
    assert hats(tagged) == 0
    page.button(key="bulk-undo").click().run()
    assert not page.exception, page.exception
    assert hats(tagged) == 6 and "6 segment(s) match the filter." in markdown(page)


def test_a_large_change_asks_for_its_count_to_be_typed(tagged: Project, monkeypatch) -> None:
    monkeypatch.setattr(review, "BULK_CONFIRM_ABOVE", 5)
    page = opened(PAGES / "4_Bulk_relabel.py")
    page.selectbox(key="bulk-action").select("add").run()
    page.selectbox(key="bulk-facet").select("moods").run()
    page.selectbox(key="bulk-tag").select("dark").run()
    assert page.button(key="bulk-apply").disabled
    page.text_input(key="bulk-confirm").input("11").run()
    assert page.button(key="bulk-apply").disabled, "the wrong count"
    page.text_input(key="bulk-confirm").input("12").run()
    page.button(key="bulk-apply").click().run()
    assert not page.exception, page.exception
    assert review_page(tagged, ReviewFilter("moods", "dark")).total == 12


def test_without_sign_in_the_curator_s_name_is_asked_and_recorded(
    tagged: Project, monkeypatch
) -> None:
    monkeypatch.delenv("CURATOR_USER")
    page = opened(PAGES / "4_Bulk_relabel.py")
    assert any("Type your name" in w.value for w in page.sidebar.warning)
    page.sidebar.text_input(key="curator-name").input("zoe").run()
    choose_hats(page)
    page.selectbox(key="bulk-action").select("remove").run()
    page.selectbox(key="bulk-facet").select("instruments").run()
    page.selectbox(key="bulk-tag").select("hi-hat").run()
    page.button(key="bulk-apply").click().run()
    assert not page.exception, page.exception
    assert [b["actor"] for b in tagged.catalog.batches()] == ["zoe"]


# ---------------------------------------------------------------- the queue in the URL


def test_a_link_opens_the_same_queue_and_the_url_follows_the_filters(tagged: Project) -> None:
    query = {"facet": "instruments", "tag": "hi-hat", "source": "model", "state": "usable"}
    page = list_view(opened(PAGES / "1_Review.py", query))
    assert page.sidebar.selectbox(key="filter-facet").value == "instruments"
    assert page.sidebar.selectbox(key="filter-tag").value == "hi-hat"
    assert page.sidebar.selectbox(key="filter-source").value == "model"
    assert "6 segment(s) match." in markdown(page)
    page.sidebar.text_input(key="filter-text").input("track1").run()
    assert page.query_params["q"] == ["track1"] or page.query_params["q"] == "track1"
    assert "2 segment(s) match." in markdown(page)
    page.sidebar.selectbox(key="filter-facet").select("any").run()
    assert "facet" not in page.query_params and "tag" not in page.query_params


def test_a_link_to_a_segment_opens_its_page_of_the_queue(tagged: Project) -> None:
    last = review_page(tagged, ReviewFilter(), 2, 10).segments[-1]["id"]
    page = opened(PAGES / "1_Review.py", {"segment": last})
    page = list_view(page)
    assert page.number_input(key="review-page").value == 2
    assert any("the link points at" in i.value for i in page.info)
    shown = [m for m in markdown(page) if m.startswith("**")]
    assert any(m.startswith(f"**{last}**") for m in shown)


def test_an_unknown_value_in_a_link_falls_back_to_the_default(tagged: Project) -> None:
    page = list_view(opened(PAGES / "1_Review.py", {"facet": "colours", "order": "nonsense"}))
    assert page.sidebar.selectbox(key="filter-facet").value == "any"
    assert page.sidebar.selectbox(key="queue-order").value == "id"
    assert "12 segment(s) match." in markdown(page)


# ---------------------------------------------------------------- ranked queues


@pytest.fixture
def catalogue(project: Project, monkeypatch):
    monkeypatch.setenv("CURATOR_PROJECT", str(project.root))
    monkeypatch.setenv("CURATOR_USER", "ana")
    return add_catalogue(project)


def test_the_suspicion_queue_is_computed_on_first_open(catalogue) -> None:
    page = list_view(opened(PAGES / "1_Review.py"))
    page.sidebar.selectbox(key="queue-order").select("suspects").run()
    assert not page.exception, page.exception
    assert "0 segment(s) match." not in markdown(page)
    assert any("judged" in s.value for s in page.sidebar.success)
    assert any("may be wrong" in w.value for w in page.warning)


def test_most_informative_is_offered_only_with_a_learned_tagger(catalogue) -> None:
    page = list_view(opened(PAGES / "1_Review.py"))
    assert "informative" not in page.sidebar.selectbox(key="queue-order").options
    assert any("curator learn" in c.value for c in page.sidebar.caption)
    assert not page.error


# ---------------------------------------------------------------- history and home


def test_history_names_segments_and_tags_filters_by_curator_and_opens_them(
    tagged: Project,
) -> None:
    first, second = (r["id"] for r in tagged.catalog.segment_rows()[:2])
    set_labels(tagged, [HumanLabel(first, "instruments", "snare")], actor="ana")
    set_labels(tagged, [HumanLabel(second, "instruments", "808", present=False)], actor="bo")
    page = opened(PAGES / "2_History.py")
    rows = [m for m in markdown(page) if m.startswith("`")]
    assert len(rows) == 2
    assert f"segment {first}" in rows[1] and "+instruments/snare" in rows[1]
    assert f"segment {second}" in rows[0] and "-instruments/808" in rows[0]
    page.selectbox(key="history-curator").select("bo").run()
    rows = [m for m in markdown(page) if m.startswith("`")]
    assert len(rows) == 1 and "by bo" in rows[0]
    links = [e.proto.url for e in page.get("link_button")]
    assert links == [f"Review?segment={second}"]


def test_home_counts_curators_and_links_each_segment(tagged: Project) -> None:
    ids = [r["id"] for r in tagged.catalog.segment_rows()[:3]]
    set_labels(tagged, [HumanLabel(s, "instruments", "snare") for s in ids], actor="ana")
    set_labels(tagged, [HumanLabel(ids[0], "moods", "dark")], actor="bo")
    page = opened(APP / "Home.py")
    tables = [t.value for t in page.dataframe]
    (curators,) = [t for t in tables if "curator" in t.columns]
    assert curators.to_dict("records") == [
        {"curator": "ana", "changes, last day": 3, "segments, last day": 3,
         "changes, last week": 3, "segments, last week": 3},
        {"curator": "bo", "changes, last day": 1, "segments, last day": 1,
         "changes, last week": 1, "segments, last week": 1},
    ]  # fmt: skip
    (segments,) = [t for t in tables if "open" in t.columns]
    first = segments.iloc[0]
    assert first["open"] == f"Review?segment={first['id']}"


# ---------------------------------------------------------------- stale prompts


def test_a_prompt_written_before_a_relabel_is_flagged_and_rewritten(tagged: Project) -> None:
    segment = review_page(tagged, ReviewFilter("instruments", "hi-hat")).segments[0]["id"]
    write_prompts(tagged, [segment], "template")
    page = opened(PAGES / "6_Prompts.py")
    assert not page.warning, "fresh prompts are not stale"
    set_labels(tagged, [HumanLabel(segment, "instruments", "hi-hat", present=False)])
    page = opened(PAGES / "6_Prompts.py")
    (warning,) = [w.value for w in page.warning]
    assert "Stale" in warning and "-instruments/hi-hat" in warning
    review_list = list_view(opened(PAGES / "1_Review.py", {"q": segment}))
    assert any("Stale prompt" in w.value for w in review_list.warning)
    page.button(key=f"rewrite-{segment}").click().run()
    assert not page.exception, page.exception
    assert not page.warning
    (row,) = review_page(tagged, ReviewFilter(text=segment)).segments
    assert "hi-hat" not in row["prompt"]


# ---------------------------------------------------------------- run progress


def test_a_tag_run_records_its_total_and_progress(tagged: Project) -> None:
    (run,) = tagged.catalog.runs()
    assert (run["total"], run["done"], run["done_before"]) == (12, 12, 0)
    (line,) = run_lines(tagged)
    assert (line["progress"]["done"], line["progress"]["total"]) == (12, 12)


def test_home_shows_a_live_run_s_done_total_rate_and_eta(tagged: Project) -> None:
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        record = RunRecord("tag", "slow", "1", {}, "slow-hash", None, [], False, host_id(),
                           worker.pid)  # fmt: skip
        catalog = tagged.catalog
        run_id = catalog.start_run(record)
        catalog.start_progress(run_id, 40)
        segments = [r["id"] for r in catalog.segment_rows()[:10]]
        items = {"run_id": [run_id] * 10, "segment_id": segments, "status": ["done"] * 10}
        catalog.merge_columns(run_id, "slow", {"items": items}, segments)
        (live,) = [r for r in catalog.runs() if r["id"] == run_id]
        later = live["resumed_at"] + timedelta(seconds=20)
        progress = run_progress(live, now=later)
        assert progress is not None
        assert (progress["done"], progress["total"]) == (10, 40)
        assert progress["rate"] == pytest.approx(10 / 20)
        assert progress["eta_seconds"] == pytest.approx(30 / progress["rate"])
        page = opened(APP / "Home.py")
        (bar,) = page.get("progress")
        assert "10 / 40 segments" in bar.proto.text and "segments/s" in bar.proto.text
    finally:
        worker.kill()
        worker.wait()
