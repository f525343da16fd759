"""Charts: tag frequencies, tempo and key, tag co-occurrence, and the tag map."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from curator.api import Embedder
from curator.app.session import as_text, open_page
from curator.charts.catalogue import (
    TagMap,
    busiest_facet,
    cooccurrence_figure,
    key_figure,
    load_embedder,
    tag_frequency_figure,
    tag_map,
    tempo_histogram,
)
from curator.project import Project, open_project
from curator.registry import Registry, load_registry
from curator.vocabulary import Vocabulary

DEFAULT_EMBEDDER = "minilm"
SAME_FACET = "the same facet"


def default_index(project: Project, names: list[str]) -> int:
    busiest = busiest_facet(project, names)
    return names.index(busiest) if busiest else 0


def frequency_section(project: Project, names: list[str], first: int) -> None:
    st.subheader("Tag frequency")
    facet = st.selectbox("Facet", names, index=first, key="freq-facet")
    st.plotly_chart(tag_frequency_figure(project, facet).figure, key="freq-chart")
    st.caption("Model only: no person has looked yet. Human-confirmed: a curator said so.")


def tempo_key_section(project: Project) -> None:
    st.subheader("Tempo and key")
    order = st.radio(
        "Keys in order of", ["circle of fifths", "count"], horizontal=True, key="key-order"
    )
    left, right = st.columns(2)
    left.plotly_chart(tempo_histogram(project).figure, key="tempo-chart")
    chart = key_figure(project, "count" if order == "count" else "fifths")
    right.plotly_chart(chart.figure, key="key-chart")


def cooccurrence_section(project: Project, names: list[str], first: int) -> None:
    st.subheader("Co-occurrence")
    columns = st.columns(3)
    facet = columns[0].selectbox("Facet", names, index=first, key="co-facet")
    other = columns[1].selectbox("Against", [SAME_FACET, *names], key="co-other")
    jaccard = columns[2].toggle("Jaccard (both / either)", key="co-jaccard")
    heatmap = cooccurrence_figure(
        project, facet, None if other == SAME_FACET else other, normalise=jaccard
    )
    st.plotly_chart(heatmap.figure, key="co-chart")


@st.cache_resource(show_spinner="Loading the embedder…")
def ready_embedder(root: str, name: str, settings: str, _registry: Registry) -> Embedder:
    """One loaded model per project, embedder and settings for the server's lifetime."""
    return load_embedder(open_project(Path(root)), name, _registry)


@st.cache_data(show_spinner="Embedding and clustering the tags…")
def cached_tag_map(
    root: str, name: str, settings: str, fingerprint: str, synonyms: bool, _embedder: Embedder
) -> TagMap:
    # `settings` and `fingerprint` are only cache keys: editing the plugin's table or the
    # vocabulary gives a new map, anything else reuses the one drawn.
    return tag_map(open_project(Path(root)), _embedder, synonyms)


def tag_map_section(project: Project, vocabulary: Vocabulary, registry: Registry) -> None:
    st.subheader("Tag map")
    names = registry.names("embedders")
    if not names:
        st.info("No embedder plugin is installed; the tag map needs one (e.g. minilm).")
        return
    default = names.index(DEFAULT_EMBEDDER) if DEFAULT_EMBEDDER in names else 0
    name = st.selectbox("Embedder", names, index=default, key="map-embedder")
    synonyms = st.checkbox("Average each tag with its synonyms", True, key="map-synonyms")
    if st.button("Draw the tag map", key="map-draw"):
        st.session_state["map-request"] = (name, synonyms)
    request = st.session_state.get("map-request")
    if request:
        show_tag_map(project, vocabulary, registry, *request)


def show_tag_map(
    project: Project, vocabulary: Vocabulary, registry: Registry, name: str, synonyms: bool
) -> None:
    root, settings = str(project.root), repr(project.settings.plugins.get(name, {}))
    try:
        embedder = ready_embedder(root, name, settings, registry)
        found = cached_tag_map(root, name, settings, vocabulary.fingerprint(), synonyms, embedder)
    except Exception as exc:  # a plugin's failure is shown, never takes the page down
        st.error(
            f"Embedder {as_text(repr(name))} could not draw the map: "
            f"{type(exc).__name__}: {as_text(exc)}"
        )
        # Forgotten, so that the next widget change does not load the failing model again.
        st.session_state.pop("map-request", None)
        return
    score = "n/a" if found.silhouette is None else f"{found.silhouette:.3f}"
    st.metric("Silhouette (cosine)", score)
    st.caption(
        "From -1 to 1: near 0 means the clusters touch, as tags of one music style do "
        f"({len(found.cluster_names)} clusters of {len(found.labels)} tags)."
    )
    st.plotly_chart(found.figure, key="map-chart")


def main() -> None:
    project = open_page("Charts")
    vocabulary = project.vocabulary()
    st.title("Charts")
    # Both facet pickers open on the busiest facet, counted once per rerun.
    names = list(vocabulary.facet_names)
    first = default_index(project, names)
    frequency_section(project, names, first)
    tempo_key_section(project)
    cooccurrence_section(project, names, first)
    tag_map_section(project, vocabulary, load_registry())


main()
