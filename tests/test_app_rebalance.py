"""The Rebalance page, driven with Streamlit's AppTest on a project with skewed genres."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from curator import app as app_package
from curator.catalogue.metadata import import_metadata
from curator.project import Project
from curator.storage import SegmentRecord, TrackRecord
from curator.storage.selections import selection_items, selections

PAGE = str(Path(app_package.__file__).parent / "pages" / "5_Rebalance.py")


@pytest.fixture
def skewed(project: Project, monkeypatch) -> Project:
    """40 tracks: trap on all, boom bap on every fourth (both segments of a track alike)."""
    tracks = [
        TrackRecord(
            f"{i:016x}",
            f"{i:032x}",
            f"/beats/{i}.wav",
            90.0,
            44100,
            2,
            "WAV",
            "PCM_16",
            "ingested",
            None,
        )
        for i in range(40)
    ]
    segments = [
        SegmentRecord(f"{t.id}-{k}", t.id, k, 5.0 + 40 * k, 30.0, -18.0, -1.0, False)
        for t in tracks
        for k in range(2)
    ]
    project.catalog.save_ingest_batch([], tracks, segments)
    tags = {
        s.id: {"genres_tags": ["trap"] + (["boom bap"] if int(s.track_id, 16) % 4 == 0 else [])}
        for s in segments
    }
    path = project.root / "tags.json"
    path.write_text(json.dumps(tags))
    import_metadata(project, path, source="seed-clap", human=False)
    monkeypatch.setenv("CURATOR_PROJECT", str(project.root))
    return project


def open_page() -> AppTest:
    page = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not page.exception
    return page


def test_rebalance_page_runs_a_selection_and_charts_it(skewed: Project) -> None:
    page = open_page()
    assert "No selections yet" in page.info[0].value
    page.multiselect(key="rb-facets").set_value(["genres", "moods"]).run()
    page.text_input(key="rb-name").input("even").run()
    page.text_input(key="rb-budget").input("60").run()
    page.button(key="rb-run").click().run()
    assert not page.exception and not page.error
    assert "Saved selection 'even'" in page.success[0].value
    items = selection_items(skewed.catalog, "even")
    assert sum(i.repeats for i in items) == 60
    metrics = {m.label: m.value for m in page.metric}
    assert metrics["Copies"] == "60"
    report = selections(skewed.catalog)[0]["report"]
    assert metrics["genres: MeanIR"] == f"{report['facets']['genres']['after']['mean_ir']:.3f}"
    assert float(metrics["genres: MeanIR"]) < report["facets"]["genres"]["before"]["mean_ir"]
    chart = json.loads(page.get("plotly_chart")[0].proto.spec)
    assert [bar["name"] for bar in chart["data"]] == ["catalogue", "selection"]
    # No segment has a mood: one line says so, with no metrics and no empty chart.
    assert len(page.get("plotly_chart")) == 1 and "moods: MeanIR" not in metrics
    assert any("moods: no segment has a tag" in c.value for c in page.caption)
    assert page.dataframe[0].value["name"].tolist() == ["even"]


def test_rebalance_page_reports_bad_input_and_deletes(skewed: Project) -> None:
    page = open_page()
    page.text_input(key="rb-budget").input("lots").run()
    page.button(key="rb-run").click().run()
    assert "budget 'lots'" in page.error[0].value
    page.text_input(key="rb-budget").input("40").run()
    page.text_area(key="rb-caps").input("nosuchtag=3").run()
    page.button(key="rb-run").click().run()
    assert "nosuchtag" in page.error[0].value
    page.text_area(key="rb-caps").input("trap=30").run()
    page.button(key="rb-run").click().run()
    assert not page.error and selections(skewed.catalog)[0]["name"] == "balanced"
    page.button(key="rb-run").click().run()  # the same name again, not replacing
    assert "--replace" in page.error[0].value
    page.button(key="rb-delete").click().run()
    assert not page.exception and selections(skewed.catalog) == []
