"""Explore: search the catalogue by words or by sound, and see every segment on one map."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from curator.app.session import as_text, open_page, page_curator
from curator.app.widgets import QUEUE_PARAM, play_segment, segment_link
from curator.charts.explore import segment_map_figure
from curator.curation.probes import embedding_choices
from curator.curation.queues import save_queue
from curator.curation.review import ReviewFilter, effective_tags, review_page
from curator.errors import CuratorError
from curator.explore.map import UMAP_MIN_SEGMENTS, SegmentMap, map_stamp, segment_map
from curator.explore.points import (
    COLOURINGS,
    Colouring,
    MapPoints,
    by_duplicate_group,
    by_label_source,
    by_suspicion,
    by_tag,
    by_tag_score,
    map_points,
    points_stamp,
)
from curator.project import Project, open_project

RESULTS = 10
LIKE = "explore-like"  # session key: the segment "more like this" searches from
PROJECTIONS = {"UMAP": "auto", "PCA": "pca"}  # "auto": UMAP unless too few segments
REVIEW_PAGE = "pages/1_Review.py"
BULK_PAGE = "pages/4_Bulk_relabel.py"


# -- search ------------------------------------------------------------------------------------


def search_section(project: Project) -> None:
    """A search box (words) and "more like this" (sound), each result playable."""
    st.subheader("Search")
    text = st.text_input(
        "Search by words",
        key="explore-search",
        placeholder="dark bells with a sliding 808",
        on_change=lambda: st.session_state.pop(LIKE, None),  # typing starts a new search
        help="Ranks segments by how well they match the words (docs/explore.md).",
    ).strip()
    like = st.session_state.get(LIKE)
    if not like and not text:
        return
    from curator.search import search_text, similar_to

    try:
        if like:
            found = similar_to(project, like, limit=RESULTS)
        else:
            found = search_text(project, text, limit=RESULTS)
    except CuratorError as exc:
        st.info(as_text(exc))
        return
    if like:
        st.write(f"More like {as_text(like)}:")
        st.button(
            "Back to the words", key="explore-unlike", on_click=st.session_state.pop, args=(LIKE,)
        )
    st.caption(f"Ranked by {as_text(found.how)}.")
    origin = f"segments like {like}" if like else f"search results for {text!r}"
    show_hits(project, [(hit.segment_id, hit.score) for hit in found.hits], origin)


def show_hits(project: Project, hits: Sequence[tuple[str, float]], origin: str) -> None:
    if not hits:
        st.info("Nothing found.")
        return
    rows = segment_rows(project, [segment for segment, _ in hits])
    open_as_queue(project, [segment for segment, _ in hits], origin, "explore-hits")
    for segment, score in hits:
        if segment in rows:
            show_segment(rows[segment], f"score {score:.3f}")


def segment_rows(project: Project, segments: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The segments with the details a card shows (labels, prompt), whatever their state."""
    where = ReviewFilter(state=None, segments=tuple(segments))
    return {row["id"]: row for row in review_page(project, where, 1, len(segments)).segments}


def show_segment(row: dict[str, Any], said: str = "") -> None:
    """One segment: where it comes from, a player, its tags, more like it, open it."""
    with st.container(border=True):
        end = row["start"] + row["duration"]
        st.markdown(
            f"**{as_text(row['id'])}** · {as_text(Path(row['source']).name)} · "
            f"{row['start']:.1f}-{end:.1f} s" + (f" · {said}" if said else "")
        )
        play_segment(row)
        tags = [tag for facet_tags in effective_tags(row).values() for tag in facet_tags]
        st.caption("Tags: " + (as_text(", ".join(tags)) if tags else "none"))
        columns = st.columns(2)
        columns[0].button(
            "More like this",
            key=f"like-{row['id']}",
            on_click=st.session_state.__setitem__,
            args=(LIKE, row["id"]),
        )
        columns[1].link_button("Open in Review", segment_link(row["id"]))


# -- the map -----------------------------------------------------------------------------------


@st.cache_data(show_spinner="Drawing the map (UMAP takes a while the first time)…", max_entries=8)
def cached_map(root: str, model: str, method: str, stamp: tuple[int, int, int]) -> SegmentMap:
    # `stamp` is only a cache key: new or changed embeddings draw (or read) the map again.
    return segment_map(open_project(Path(root)), model, method)


@st.cache_data(max_entries=8)
def cached_points(
    root: str, model: str, method: str, stamp: tuple[int, int, int], labels: tuple[int, str]
) -> MapPoints:
    # The stamps are only cache keys: a label changed anywhere reads the points again.
    return map_points(open_project(Path(root)), cached_map(root, model, method, stamp))


def map_section(project: Project) -> None:
    st.subheader("Map")
    models = embedding_choices(project)
    if not models:
        st.info(
            "No cached embeddings yet: the map needs a tagger that keeps them (e.g. "
            "`curator tag --plugin trap` or `--plugin musicnn`)."
        )
        return
    columns = st.columns([2, 1, 2])
    model = columns[0].selectbox("Embedding", models, key="map-model")
    method = PROJECTIONS[
        columns[1].radio("Projection", list(PROJECTIONS), horizontal=True, key="map-projection")
    ]
    colour = columns[2].selectbox("Colour by", COLOURINGS, key="map-colour")
    try:
        stamp = map_stamp(project, model)
        drawn = cached_map(str(project.root), model, method, stamp)
    except CuratorError as exc:
        st.info(as_text(exc))
        return
    if drawn.method == "pca" and method != "pca":
        st.caption(f"Fewer than {UMAP_MIN_SEGMENTS} segments: drawn with PCA, not UMAP.")
    points = cached_points(str(project.root), model, method, stamp, points_stamp(project))
    colouring = choose_colouring(project, points, colour)
    if colouring is None:
        return
    title = f"{len(points)} segments, {model} embeddings, {drawn.method.upper()}"
    event = st.plotly_chart(
        segment_map_figure(points, colouring, title),
        key="explore-map",
        on_select="rerun",
        selection_mode=("points", "box", "lasso"),
    )
    selected(project, event)


def choose_colouring(project: Project, points: MapPoints, colour: str) -> Colouring | None:
    if colour == "label source":
        return by_label_source(points)
    if colour == "suspicion":
        return by_suspicion(project, points)
    if colour == "duplicate group":
        return by_duplicate_group(project, points)
    vocabulary = project.vocabulary()
    columns = st.columns([1, 2, 1])
    facet = columns[0].selectbox("Facet", vocabulary.facet_names, key="map-facet")
    tags = [t.name for t in vocabulary.facet(facet).tags]
    if not tags:
        st.info(f"The facet {as_text(facet)} has no tags.")
        return None
    tag = columns[1].selectbox("Tag", tags, key="map-tag")
    if columns[2].radio("Show", ["has it", "score"], horizontal=True, key="map-tag-as") == "score":
        return by_tag_score(project, points, facet, tag)
    return by_tag(project, points, facet, tag)


def selected(project: Project, event: Any) -> None:
    """A box or lasso selection opens as a queue; a click on one point opens its segment."""
    selection = event.selection if event else None
    # Each point's customdata is its segment id (curator.charts.explore).
    segments = list(dict.fromkeys(p["customdata"] for p in (selection or {}).get("points", [])))
    if not segments:
        st.caption(
            "Drag a box or a lasso around segments (Box or Lasso select in the map's toolbar) "
            "to open them as a review queue or to relabel them at once; click a point to open "
            "its segment."
        )
        return
    if selection["box"] or selection["lasso"]:
        st.write(f"{len(segments)} segment(s) selected.")
        open_as_queue(project, segments, "a selection on the Explore map", "explore-selection")
        return
    rows = segment_rows(project, segments[:1])
    if rows:
        show_segment(next(iter(rows.values())))


def open_as_queue(project: Project, segments: list[str], origin: str, key: str) -> None:
    """Buttons that save `segments` as a queue and open it on Review or Bulk relabel."""
    columns = st.columns(2)
    for column, label, page in (
        (columns[0], "Open as a review queue", REVIEW_PAGE),
        (columns[1], "Bulk relabel them", BULK_PAGE),
    ):
        if column.button(label, key=f"{key}-{Path(page).stem}"):
            queue = save_queue(project, segments, origin, page_curator())
            st.switch_page(page, query_params={QUEUE_PARAM: queue.queue_id})


def main() -> None:
    project = open_page("Explore")
    st.title("Explore")
    search_section(project)
    map_section(project)


main()
