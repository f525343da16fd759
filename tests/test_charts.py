"""The Charts feature: numbers behind each figure, the tag map, and the page, on real catalogues."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import curator.app
import curator.registry
from curator import hookimpl
from curator.api import Embedder, PluginContext
from curator.charts import catalogue as charts
from curator.charts.jobs import loss_figure
from curator.curation.review import set_labels
from curator.jobs.manage import Job
from curator.plugins import minilm
from curator.project import Project, init_project
from curator.storage import HumanLabel
from curator.testing import registry_of
from curator.training.jobfiles import Progress

PAGE = str(Path(curator.app.__file__).parent / "pages" / "3_Charts.py")
TAG_FACETS = ("instruments", "genres", "moods")


class Labels:
    """What the test put in the catalogue, and what each segment's labels should now be."""

    def __init__(self) -> None:
        self.model: dict[str, dict[str, set[str]]] = {}  # segment -> facet -> tags
        self.values: dict[str, dict[str, str]] = {}  # segment -> tempo/key/scale -> value
        self.human: dict[tuple[str, str, str], bool] = {}  # (segment, facet, tag) -> present

    def present(self, segment: str, facet: str) -> set[str]:
        said = {t for (s, f, t), yes in self.human.items() if (s, f) == (segment, facet) and yes}
        overruled = {t for (s, f, t) in self.human if (s, f) == (segment, facet)}
        return (self.model[segment].get(facet, set()) - overruled) | said

    def counts(self, facet: str) -> dict[str, tuple[int, int]]:
        """tag -> (model only, human-confirmed), as the frequency chart should stack them."""
        found: dict[str, list[int]] = {}
        for segment in self.model:
            for tag in self.present(segment, facet):
                human = (segment, facet, tag) in self.human
                found.setdefault(tag, [0, 0])[int(human)] += 1
        return {tag: (model, human) for tag, (model, human) in found.items()}

    def both(self, facet: str, tag: str, other: str, other_tag: str) -> int:
        return sum(
            tag in self.present(s, facet) and other_tag in self.present(s, other)
            for s in self.model
        )


@pytest.fixture
def labelled(ingested_project: Project, beats_truth: dict[str, Any]) -> tuple[Project, Labels]:
    """The demo beats with their truth as one model's labels, then a curator's corrections."""
    labels = Labels()
    segments = ingested_project.catalog.segment_rows()
    model = [
        label
        for row in segments
        for label in truth_labels(row["id"], beats_truth[Path(row["source"]).name], labels)
    ]
    ingested_project.catalog.import_model_labels(
        model, [row["id"] for row in segments], source="truth", settings={}
    )
    first, second = segments[0]["id"], segments[1]["id"]
    changes = [
        HumanLabel(first, "instruments", "kick", present=False),
        HumanLabel(first, "instruments", "snare"),
        HumanLabel(first, "instruments", "flute"),
        HumanLabel(second, "tempo", "tempo", value="141"),
        HumanLabel(second, "key", "key", value="D"),
        HumanLabel(second, "scale", "scale", value="major"),
    ]
    set_labels(ingested_project, changes, actor="ana")
    labels.human = {(c.segment_id, c.facet, c.tag): c.present for c in changes[:3]}
    labels.values[second] |= {"tempo": "141", "key": "D", "scale": "major"}
    return ingested_project, labels


def truth_labels(segment: str, truth: dict[str, Any], labels: Labels) -> list[HumanLabel]:
    tags = {"instruments": set(truth["instruments"]), "genres": {truth["genre"]}}
    tags["moods"] = {truth["mood"]}
    values = {"tempo": f"{truth['tempo']:g}", "key": truth["key"], "scale": truth["scale"]}
    labels.model[segment], labels.values[segment] = tags, values
    return [HumanLabel(segment, f, t) for f, ts in tags.items() for t in ts] + [
        HumanLabel(segment, name, name, value=value) for name, value in values.items()
    ]


@pytest.fixture(scope="module")
def embedder() -> minilm.MiniLMEmbedder:
    found = minilm.MiniLMEmbedder()
    found.setup(PluginContext())
    return found


def bars(figure: Any) -> dict[str, dict[str, int]]:
    """Trace name -> x -> bar height."""
    return {trace.name: dict(zip(trace.x, trace.y, strict=True)) for trace in figure.data}


def says_no_data(figure: Any) -> bool:
    return any("No data yet" in note.text for note in figure.layout.annotations)


# -- numbers behind the figures -------------------------------------------------------------------


def test_tag_frequency_stacks_model_only_and_human_confirmed(labelled) -> None:
    project, labels = labelled
    chart = charts.tag_frequency_figure(project, "instruments")
    expected = labels.counts("instruments")
    drawn = bars(chart.figure)
    assert chart.figure.layout.barmode == "stack"
    for tag, (model, human) in expected.items():
        assert (drawn["model only"][tag], drawn["human-confirmed"][tag]) == (model, human), tag
    totals = [row["total"] for row in chart.rows]
    assert totals == sorted(totals, reverse=True)
    assert chart.rows[-1]["total"] == 0  # unused vocabulary tags stay visible, last
    assert drawn["human-confirmed"]["flute"] == 1


def test_the_busiest_facet_is_the_one_with_most_tags_on_segments(labelled, tmp_path) -> None:
    tagged, _ = labelled
    names = list(tagged.vocabulary().facet_names)
    assert names.index("instruments") > 0  # not first by accident
    assert charts.busiest_facet(tagged, names) == "instruments"
    assert charts.busiest_facet(tagged, ["moods", "genres"]) == "moods"  # a tie: the first
    untagged = init_project(tmp_path / "untagged")
    assert charts.busiest_facet(untagged, names) == names[0]  # nothing tagged yet
    assert charts.busiest_facet(untagged, []) is None


def test_tempo_histogram_counts_every_effective_tempo_in_5_bpm_bins(labelled) -> None:
    project, labels = labelled
    chart = charts.tempo_histogram(project)
    tempos = [float(v["tempo"]) for v in labels.values.values()]
    (trace,) = chart.figure.data
    assert sum(trace.y) == len(tempos) == len(labels.model)
    expected = Counter(math.floor(t / 5) * 5 for t in tempos)
    assert {row["bpm_from"]: row["segments"] for row in chart.rows if row["segments"]} == expected
    assert all(row["bpm_to"] - row["bpm_from"] == 5 for row in chart.rows)
    assert 140 in [row["bpm_from"] for row in chart.rows if row["segments"]]  # the person's 141


def test_key_chart_counts_key_and_scale_together(labelled) -> None:
    project, labels = labelled
    chart = charts.key_figure(project)
    expected = Counter(f"{v['key']} {v['scale']}" for v in labels.values.values())
    (trace,) = chart.figure.data
    assert dict(zip(trace.x, trace.y, strict=True)) == expected
    assert list(trace.x) == sorted(expected, key=charts.fifths_position)
    by_count = charts.key_figure(project, order="count").rows
    assert [r["segments"] for r in by_count] == sorted(expected.values(), reverse=True)


def test_count_axes_tick_whole_segments(labelled) -> None:
    project, _ = labelled
    charts_drawn = [
        charts.tag_frequency_figure(project, "genres"),
        charts.tempo_histogram(project),
        charts.key_figure(project),
    ]
    for chart in charts_drawn:
        axis = chart.figure.layout.yaxis
        heights: Counter[Any] = Counter()  # stacked bars add up
        for trace in chart.figure.data:
            heights.update(dict(zip(trace.x, trace.y, strict=True)))
        assert axis.tickformat == ",d"
        # Few segments a bar: one tick each; more: plotly's own whole-number ticks.
        tallest = max(heights.values())
        assert axis.dtick == (1 if tallest <= 5 else None), (tallest, axis.dtick)


def test_keys_follow_the_circle_of_fifths_with_relative_minors() -> None:
    keys = ["E minor", "F# major", "Bb minor", "G major", "C major", "A minor", "weird"]
    assert sorted(keys, key=charts.fifths_position) == [
        "C major", "A minor", "G major", "E minor", "F# major", "Bb minor", "weird",
    ]  # fmt: skip


def test_cooccurrence_diagonal_is_the_tag_counts(labelled) -> None:
    project, labels = labelled
    heatmap = charts.cooccurrence_figure(project, "instruments")
    totals = {tag: sum(pair) for tag, pair in labels.counts("instruments").items()}
    assert dict(zip(heatmap.tags, np.diag(heatmap.counts), strict=True)) == totals
    assert (heatmap.counts == heatmap.counts.T).all()
    kick, snare = heatmap.tags.index("kick"), heatmap.tags.index("snare")
    both = labels.both("instruments", "kick", "instruments", "snare")
    assert heatmap.counts[kick, snare] == both
    (trace,) = heatmap.figure.data
    assert np.array_equal(np.asarray(trace.z), heatmap.counts)


def test_cooccurrence_across_facets_and_jaccard(labelled) -> None:
    project, labels = labelled
    heatmap = charts.cooccurrence_figure(project, "genres", "moods", normalise=True)
    for i, genre in enumerate(heatmap.tags):
        for j, mood in enumerate(heatmap.other_tags):
            both = labels.both("genres", genre, "moods", mood)
            either = (
                sum(genre in labels.present(s, "genres") for s in labels.model)
                + sum(mood in labels.present(s, "moods") for s in labels.model)
                - both
            )
            assert heatmap.counts[i, j] == both
            assert heatmap.values[i, j] == pytest.approx(both / either)
    same = charts.cooccurrence_figure(project, "instruments", normalise=True)
    np.testing.assert_allclose(np.diag(same.values), 1.0)


def test_an_empty_catalogue_says_no_data_yet(project: Project) -> None:
    assert says_no_data(charts.tag_frequency_figure(project, "moods").figure)
    assert says_no_data(charts.tempo_histogram(project).figure)
    assert says_no_data(charts.key_figure(project).figure)
    heatmap = charts.cooccurrence_figure(project, "moods", "genres", normalise=True)
    assert heatmap.counts.shape == (0, 0) and says_no_data(heatmap.figure)


# -- the tag map ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_map(tmp_path_factory, embedder) -> tuple[Project, charts.TagMap]:
    """The tag map of a new project's (default) vocabulary, drawn once for these tests."""
    project = init_project(tmp_path_factory.mktemp("tag-map") / "project")
    return project, charts.tag_map(project, embedder)


def cosine_silhouette(vectors: np.ndarray, clusters: np.ndarray) -> float:
    """The mean silhouette under cosine distance, written out from its definition."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    distance = 1.0 - unit @ unit.T
    values = []
    for i, own in enumerate(clusters):
        mates = (clusters == own) & (np.arange(len(clusters)) != i)
        if not mates.any():
            values.append(0.0)  # a cluster of one scores 0 by definition
            continue
        a = distance[i, mates].mean()
        b = min(distance[i, clusters == other].mean() for other in set(clusters) - {own})
        values.append((b - a) / max(a, b))
    return float(np.mean(values))


def test_tag_map_places_and_clusters_every_tag(default_map, embedder) -> None:
    project, found = default_map
    tags = project.vocabulary().tags()
    assert found.labels == [t.name for t in tags]
    assert found.facets == [t.facet for t in tags]
    assert found.coordinates.shape == (len(tags), 2) and np.isfinite(found.coordinates).all()
    vectors = charts.embed_tags(embedder, tags)
    assert found.silhouette == pytest.approx(cosine_silhouette(vectors, found.clusters), abs=1e-5)
    assert 3 <= len(found.cluster_names) <= 8
    assert set(found.clusters) == set(range(len(found.cluster_names)))
    points = [t for t in found.figure.data if t.legendgroup != charts.FACET_LEGEND]
    assert sorted(x for t in points for x in t.text) == sorted(found.labels)
    at = found.labels.index
    assert found.clusters[at("hi-hat")] == found.clusters[at("hi-hat rolls")]


def test_tag_map_is_deterministic(default_map, embedder) -> None:
    project, first = default_map
    second = charts.tag_map(project, embedder)
    np.testing.assert_array_equal(first.coordinates, second.coordinates)
    np.testing.assert_array_equal(first.clusters, second.clusters)
    assert first.silhouette == second.silhouette


def write_vocabulary(project: Project, facets: dict[str, list[str]]) -> None:
    for old in project.vocabulary_dir.glob("*.toml"):
        old.unlink()
    for facet, tags in facets.items():
        lines = [f'facet = "{facet}"', "[tags]", *(f'"{tag}" = []' for tag in tags)]
        (project.vocabulary_dir / f"{facet}.toml").write_text("\n".join(lines) + "\n")


def test_few_tags_use_the_number_of_facets_or_no_score(project: Project, embedder) -> None:
    write_vocabulary(project, {"instruments": ["808", "snare"], "moods": ["cheerful"]})
    found = charts.tag_map(project, embedder)
    assert len(found.cluster_names) == 2 and found.silhouette is not None
    write_vocabulary(project, {"instruments": ["808"], "moods": ["cheerful"]})
    assert charts.tag_map(project, embedder).silhouette is None
    write_vocabulary(project, {"moods": []})
    empty = charts.tag_map(project, embedder)
    assert empty.labels == [] and empty.figure.layout.annotations


# -- the page -------------------------------------------------------------------------------------


class Embedders:
    """A plugin contributing already loaded embedders, so each page run reuses the model."""

    def __init__(self, *embedders: Any) -> None:
        self.embedders = embedders

    @hookimpl
    def register_embedders(self, register):
        for embedder in self.embedders:
            register(embedder)


def open_page(project: Project, monkeypatch, *embedders: Any) -> AppTest:
    monkeypatch.setenv("CURATOR_PROJECT", str(project.root))
    registry = registry_of(Embedders(*embedders))
    monkeypatch.setattr(curator.registry, "load_registry", lambda pm=None: registry)
    page = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not page.exception, page.exception
    return page


def figures(page: AppTest) -> dict[str, dict[str, Any]]:
    """Chart key -> its plotly figure as the browser gets it."""
    return {
        chart.key.removesuffix("-chart"): json.loads(chart.proto.spec)
        for chart in page.get("plotly_chart")
    }


def test_charts_page_draws_every_chart_and_the_tag_map(
    labelled, monkeypatch, embedder, default_map
) -> None:
    project, labels = labelled
    page = open_page(project, monkeypatch, embedder)
    assert set(figures(page)) == {"freq", "tempo", "key", "co"}
    # The busiest facet comes first: every beat has several instruments, one genre, one mood.
    assert page.selectbox(key="freq-facet").value == "instruments"
    assert page.selectbox(key="co-facet").value == "instruments"
    page.selectbox(key="freq-facet").select("genres").run()
    assert "genres" in json.dumps(figures(page)["freq"]["layout"]["title"])
    page.selectbox(key="freq-facet").select("instruments").run()
    drawn = figures(page)
    heights = {
        bar["name"]: dict(zip(bar["x"], bar["y"], strict=True)) for bar in drawn["freq"]["data"]
    }
    assert heights["human-confirmed"]["flute"] == 1
    assert sum(drawn["tempo"]["data"][0]["y"]) == len(labels.model)
    page.selectbox(key="co-other").select("moods").run()
    page.toggle(key="co-jaccard").set_value(True).run()
    assert not page.exception, page.exception
    assert page.selectbox(key="map-embedder").value == "minilm"
    page.button(key="map-draw").click().run()
    assert not page.exception, page.exception
    assert "map" in figures(page)
    # Both projects have the default vocabulary, so the map is the one drawn before.
    assert page.metric[0].value == f"{default_map[1].silhouette:.3f}"


def test_charts_page_on_an_empty_project_without_embedders(project: Project, monkeypatch) -> None:
    page = open_page(project, monkeypatch)
    drawn = figures(page)
    assert set(drawn) == {"freq", "tempo", "key", "co"}
    assert all("No data yet" in json.dumps(figure["layout"]) for figure in drawn.values())
    assert any("No embedder plugin" in info.value for info in page.info)


class Broken(Embedder):
    name = "broken"

    def setup(self, context: PluginContext) -> None:
        raise OSError("no model files here")


def test_an_embedder_that_fails_is_reported_on_the_page(project: Project, monkeypatch) -> None:
    page = open_page(project, monkeypatch, Broken())
    page.button(key="map-draw").click().run()
    assert not page.exception, page.exception
    assert any("'broken' could not draw" in e.value and "no model" in e.value for e in page.error)


def test_loss_chart_draws_training_and_validation_losses(tmp_path: Path) -> None:
    progress, validation = Progress(tmp_path), Progress(tmp_path, "validation.jsonl")
    for step, loss in [(1, 0.9), (2, 0.7), (3, None), (4, 0.5)]:
        progress.write(step=step, total_steps=4, loss=loss)
    validation.write(step=2, val_loss=0.8)
    validation.write(step=4, val_loss=0.6)
    with (tmp_path / "validation.jsonl").open("a") as half:
        half.write('{"step": 6, "val_l')  # a line still being written is not drawn
    job = Job(id="train-1", kind="train", status="running", folder=tmp_path, config={})
    training, held_out = loss_figure(job).data
    assert (list(training.x), list(training.y)) == ([1, 2, 4], [0.9, 0.7, 0.5])
    assert (list(held_out.x), list(held_out.y)) == ([2, 4], [0.8, 0.6])


def test_loss_chart_without_validation_has_one_line(tmp_path: Path) -> None:
    (tmp_path / "progress.jsonl").write_text('{"step": 1, "loss": 1.5}\n')
    job = Job(id="train-1", kind="train", status="running", folder=tmp_path, config={})
    assert [t.name for t in loss_figure(job).data] == ["training loss"]
