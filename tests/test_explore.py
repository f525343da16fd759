"""The Explore page's map (projection, cache, colours, figure) and saved queues, on a real
catalogue of real audio tagged by a tagger that keeps band-energy embeddings."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from tests_support import Plugin, brightness

from curator import app as app_package
from curator.api import Tagger, TagResult
from curator.catalogue.ingest import ingest
from curator.charts.explore import hover_texts, segment_map_figure
from curator.curation.queues import load_queue, save_queue
from curator.curation.review import ReviewFilter, bulk_relabel, review_page, set_labels
from curator.errors import CuratorError
from curator.explore import map as explore_map
from curator.explore.map import map_path, segment_map
from curator.explore.points import (
    NO_GROUP,
    MapPoints,
    by_duplicate_group,
    by_label_source,
    by_suspicion,
    by_tag,
    by_tag_score,
    map_points,
)
from curator.project import Project, init_project
from curator.search import search_text, similar_to
from curator.storage import HumanLabel
from curator.storage.duplicates import DuplicateGroup, replace_duplicate_groups
from curator.storage.suspects import SuspectRow, save_suspects
from curator.tagging.runs import run_tagger
from curator.testing import registry_of

MODEL = "bands:energy"
PAGE = Path(app_package.__file__).parent / "pages" / "10_Explore.py"


class BandTagger(Tagger):
    """Scores "hi-hat" by brightness and "808" by its opposite; keeps each segment's log
    energy in four frequency bands as its embedding."""

    name, version, facets, sample_rate = "bands", "1", ("instruments",), 8000
    embedding_model = MODEL

    def tag_order(self):
        return [("instruments", "hi-hat"), ("instruments", "808")]

    def tag(self, batch):
        return [self._result(s.audio, s.sample_rate) for s in batch]

    def _result(self, audio: np.ndarray, rate: int) -> TagResult:
        bright = brightness(audio, rate)
        spectrum = np.abs(np.fft.rfft(audio[:, 0])) ** 2
        bands = [part.sum() for part in np.array_split(spectrum, 4)]
        return TagResult(
            {"instruments": {"hi-hat": bright, "808": 1 - bright}},
            embedding=np.log10(np.asarray(bands) + 1e-9).astype(np.float32),
        )


def band_project(root: Path, audio: Path, tracks: int | None = None) -> Project:
    """`audio` (its first `tracks` files, two segments each) ingested and tagged by bands."""
    if tracks is not None:
        chosen = root.parent / f"{root.name}-audio"
        chosen.mkdir()
        for path in sorted(audio.glob("*.wav"))[:tracks]:
            shutil.copy(path, chosen / path.name)
        audio = chosen
    project = init_project(root)
    ingest(project, [audio])
    run_tagger(project, "bands", registry=registry_of(Plugin(BandTagger())))
    return project


@pytest.fixture
def small(tmp_path: Path, loud_and_quiet: Path) -> Project:
    """8 segments: too few for UMAP, so the map is drawn with PCA."""
    return band_project(tmp_path / "small", loud_and_quiet, tracks=4)


@pytest.fixture
def twelve(tmp_path: Path, loud_and_quiet: Path) -> Project:
    return band_project(tmp_path / "twelve", loud_and_quiet)


def numpy_pca(vectors: np.ndarray) -> np.ndarray:
    centred = vectors - vectors.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    return u[:, :2] * s[:2]


# -- the projection and its cache --------------------------------------------------------------


def test_few_segments_are_drawn_with_pca_equal_to_numpy_pca(small: Project) -> None:
    ids, vectors = small.catalog.embeddings(MODEL)
    drawn = segment_map(small, MODEL)
    assert drawn.method == "pca" and len(ids) == 8
    assert drawn.segment_ids == tuple(ids)
    expected = numpy_pca(vectors.astype(np.float64))
    # A principal axis has no sign of its own: compare each axis up to its sign.
    for axis in range(2):
        got, want = drawn.coordinates[:, axis], expected[:, axis]
        sign = np.sign(got @ want)
        np.testing.assert_allclose(sign * got, want, rtol=1e-4, atol=1e-4)


def test_the_map_is_read_from_the_cache_until_new_embeddings_arrive(
    tmp_path: Path, loud_and_quiet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = band_project(tmp_path / "project", loud_and_quiet, tracks=4)
    first = segment_map(project, MODEL, "pca")
    assert not first.from_cache and map_path(project, MODEL, "pca").is_file()

    def no_drawing(vectors: np.ndarray) -> np.ndarray:
        raise AssertionError("the map was drawn again instead of read from the cache")

    monkeypatch.setattr(explore_map, "pca_2d", no_drawing)
    again = segment_map(project, MODEL, "pca")
    assert again.from_cache
    np.testing.assert_array_equal(again.coordinates, first.coordinates)

    monkeypatch.undo()
    # Two more tracks arrive and are tagged: their embeddings make a new map.
    ingest(project, [loud_and_quiet])
    run_tagger(project, "bands", registry=registry_of(Plugin(BandTagger())))
    grown = segment_map(project, MODEL, "pca")
    assert not grown.from_cache and len(grown.segment_ids) == 12
    assert set(first.segment_ids) < set(grown.segment_ids)
    assert segment_map(project, MODEL, "pca").from_cache


@pytest.mark.slow  # umap-learn compiles its numba code on first use: 0.5 to 2 min
def test_umap_is_seeded_and_cached(twelve: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = segment_map(twelve, MODEL)
    assert drawn.method == "umap" and drawn.coordinates.shape == (12, 2)
    assert np.isfinite(drawn.coordinates).all()
    map_path(twelve, MODEL, "umap").unlink()
    redrawn = segment_map(twelve, MODEL)
    assert not redrawn.from_cache
    np.testing.assert_array_equal(redrawn.coordinates, drawn.coordinates)

    def no_drawing(vectors: np.ndarray, seed: int) -> np.ndarray:
        raise AssertionError("the map was drawn again instead of read from the cache")

    monkeypatch.setattr(explore_map, "umap_2d", no_drawing)
    cached = segment_map(twelve, MODEL)
    assert cached.from_cache and cached.method == "umap"
    np.testing.assert_array_equal(cached.coordinates, drawn.coordinates)


def test_a_map_needs_embeddings_and_a_known_method(project: Project) -> None:
    with pytest.raises(CuratorError, match="no usable segment has a cached embedding"):
        segment_map(project, MODEL)
    with pytest.raises(CuratorError, match="map method must be one of"):
        segment_map(project, MODEL, "tsne")


# -- what the points say and how they are coloured ---------------------------------------------


def test_points_carry_their_segment_file_and_tags(small: Project) -> None:
    drawn = segment_map(small, MODEL)
    points = map_points(small, drawn)
    assert points.segment_ids.tolist() == list(drawn.segment_ids)
    np.testing.assert_array_equal(points.x, drawn.coordinates[:, 0])
    rows = {r["id"]: r for r in small.catalog.segment_rows()}
    for i, segment in enumerate(points.segment_ids.tolist()):
        assert points.files[i] == Path(rows[segment]["source"]).name
        assert points.starts[i] == pytest.approx(rows[segment]["start"])
        # The band tagger labels hi-hat or 808 on every segment, the better score first.
        assert points.tags[i] in ("hi-hat, 808", "808, hi-hat", "hi-hat", "808"), points.tags[i]
    figure = segment_map_figure(points, by_label_source(points), "map")
    shown = [segment for trace in figure.data for segment in trace.customdata]
    assert sorted(shown) == sorted(drawn.segment_ids)


def test_hover_text_shows_file_names_as_text() -> None:
    points = MapPoints(
        *(np.array([v], dtype=object) for v in ("a-0", 0.0, 1.0, '<a href="x">evil</a>.wav')),
        np.array([2.0]),
        np.array(["<b>808</b>"], dtype=object),
        np.array(["model"], dtype=object),
    )
    (said,) = hover_texts(points, by_label_source(points))
    assert "<a" not in said and "<b>808" not in said
    assert "&lt;a href=&quot;x&quot;&gt;evil&lt;" in said and "at 2.0 s" in said


def test_colours_follow_labels_scores_suspects_and_duplicate_groups(small: Project) -> None:
    points = map_points(small, segment_map(small, MODEL))
    first, second, third, fourth = points.segment_ids[:4].tolist()
    set_labels(small, [HumanLabel(first, "instruments", "snare")], actor="ana")
    bulk_relabel(small, ReviewFilter(text=second), "add", "instruments", "snare", actor="ana")
    save_suspects(
        small.catalog,
        [("instruments", "hi-hat")],
        [SuspectRow(third, "instruments", "hi-hat", True, 0.8, 0.1, "probe disagrees", MODEL)],
    )
    replace_duplicate_groups(
        small.catalog, "same", [DuplicateGroup("same", second, (second, fourth))]
    )
    points = map_points(small, segment_map(small, MODEL))
    at = {segment: i for i, segment in enumerate(points.segment_ids.tolist())}

    sources = by_label_source(points).values
    assert sources[at[first]] == "verified by a person"
    assert sources[at[second]] == "a person (bulk relabel or import)"
    assert sources[at[third]] == "models only"

    snare = by_tag(small, points, "instruments", "snare").values
    assert [s == "has it" for s in snare] == [s in (first, second) for s in points.segment_ids]

    (run,) = [r for r in small.catalog.runs() if r["plugin"] == "bands"]
    ids, stored = small.catalog.scores(run["id"])
    hi_hat = dict(zip(ids, stored[:, 0].tolist(), strict=True))
    scores = by_tag_score(small, points, "instruments", "hi-hat").values
    assert scores.tolist() == pytest.approx([hi_hat[s] for s in points.segment_ids])
    unscored = by_tag_score(small, points, "instruments", "snare").values
    assert all(math.isnan(float(s)) for s in unscored)

    suspicion = by_suspicion(small, points).values
    assert float(suspicion[at[third]]) == pytest.approx(0.8)
    assert sum(not math.isnan(float(s)) for s in suspicion) == 1

    groups = by_duplicate_group(small, points).values
    assert groups[at[second]] == groups[at[fourth]] == min(second, fourth)
    assert sum(g != NO_GROUP for g in groups) == 2


# -- saved queues: a selection opened on the Review and Bulk relabel pages ---------------------


def test_a_saved_queue_reviews_exactly_its_segments(small: Project) -> None:
    ids = [r["id"] for r in small.catalog.segment_rows()]
    chosen = [ids[5], ids[1], ids[2]]
    queue = save_queue(small, chosen, "a selection on the Explore map", "ana")
    assert save_queue(small, chosen, "again", "bo").queue_id == queue.queue_id
    assert len(list((small.root / "queues").iterdir())) == 1
    loaded = load_queue(small, queue.queue_id)
    assert loaded.segments == tuple(chosen) and loaded.actor == "ana"

    shown = review_page(small, ReviewFilter(segments=loaded.segments), 1, 50)
    assert shown.total == 3 and sorted(r["id"] for r in shown.segments) == sorted(chosen)
    # The queue narrows the filter rather than replacing it.
    within = review_page(small, ReviewFilter(segments=loaded.segments, text=ids[5]), 1, 50)
    assert [r["id"] for r in within.segments] == [ids[5]]

    _, changed = bulk_relabel(
        small, ReviewFilter(segments=loaded.segments), "add", "instruments", "snare", actor="ana"
    )
    assert changed == 3
    snared = review_page(small, ReviewFilter(facet="instruments", tag="snare"), 1, 50)
    assert sorted(r["id"] for r in snared.segments) == sorted(chosen)


@pytest.mark.parametrize("queue_id", ["0123456789ab", "../../etc/passwd", ""])
def test_an_unknown_queue_is_refused_in_one_line(small: Project, queue_id: str) -> None:
    with pytest.raises(CuratorError, match="no saved queue") as refused:
        load_queue(small, queue_id)
    assert "\n" not in str(refused.value)


def test_an_empty_queue_is_refused(small: Project) -> None:
    with pytest.raises(CuratorError, match="at least one segment"):
        save_queue(small, [], "nothing", "ana")


# -- the pages ----------------------------------------------------------------------------------


def open_page(path: Path, project: Project, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """An app page on `project`, signed in as ana, not yet run."""
    monkeypatch.setenv("CURATOR_PROJECT", str(project.root))
    monkeypatch.setenv("CURATOR_USER", "ana")
    return AppTest.from_file(str(path), default_timeout=60)


def test_the_explore_page_draws_the_map_in_every_colouring(
    small: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = open_page(PAGE, small, monkeypatch).run()
    assert not page.exception, page.exception
    assert [c.key for c in page.get("plotly_chart")] == ["explore-map"]
    for colour in ("tag", "label source", "suspicion", "duplicate group"):
        page.selectbox(key="map-colour").select(colour).run()
        assert not page.exception, (colour, page.exception)
    page.radio(key="map-projection").set_value("PCA").run()
    assert not page.exception, page.exception


def drawn_traces(page: AppTest) -> dict[str, list[str]]:
    """The map the page sent to the browser: each legend entry's segment ids."""
    (chart,) = page.get("plotly_chart")
    figure = json.loads(chart.proto.spec)
    return {trace["name"]: list(trace["customdata"]) for trace in figure["data"]}


def test_the_map_follows_a_label_change_on_the_next_run(
    small: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = open_page(PAGE, small, monkeypatch).run()
    before = drawn_traces(page)
    assert sorted(before["models only"]) == sorted(small.catalog.embeddings(MODEL)[0])
    segment = before["models only"][0]
    set_labels(small, [HumanLabel(segment, "instruments", "snare")], actor="ana")
    after = drawn_traces(page.run())
    assert after["verified by a person"] == [segment]
    assert segment not in after["models only"]


def test_the_explore_page_says_what_the_map_needs(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = open_page(PAGE, project, monkeypatch).run()
    assert not page.exception, page.exception
    assert any("No cached embeddings yet" in i.value for i in page.info)


def test_the_search_box_lists_playable_results_and_more_like_them(
    small: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = open_page(PAGE, small, monkeypatch).run()
    page.text_input(key="explore-search").input("hi-hat").run()
    assert not page.exception, page.exception
    expected = search_text(small, "hi-hat", limit=10)
    assert expected.hits
    assert any(c.value.startswith("Ranked by") for c in page.caption)
    likes = [b for b in page.button if b.label == "More like this"]
    assert [b.key for b in likes] == [f"like-{hit.segment_id}" for hit in expected.hits]
    assert len(page.get("audio")) == len(expected.hits)

    first = expected.hits[0].segment_id
    likes[0].click().run()
    assert not page.exception, page.exception
    alike = similar_to(small, first, limit=10)
    shown = [b.key for b in page.button if b.label == "More like this"]
    assert shown == [f"like-{hit.segment_id}" for hit in alike.hits]
    assert any(f"More like {first}" in m.value for m in page.markdown)


@pytest.mark.parametrize("name", ["1_Review.py", "4_Bulk_relabel.py"])
def test_review_and_bulk_relabel_open_a_saved_queue_from_the_url(
    small: Project, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    ids = [r["id"] for r in small.catalog.segment_rows()]
    queue = save_queue(small, ids[:2], "a selection on the Explore map", "ana")
    page = open_page(PAGE.with_name(name), small, monkeypatch)
    page.query_params["queue"] = queue.queue_id
    if name == "1_Review.py":
        page.session_state["review-view"] = "List"
    page.run()
    assert not page.exception, page.exception
    assert any("Only the 2 segment(s) of a queue" in i.value for i in page.info)
    shown = " ".join(m.value for m in page.markdown)
    assert "2 segment(s) match" in shown, shown
