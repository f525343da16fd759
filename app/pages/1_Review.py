"""Review: listen to segments, fix their tags, move on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from curator.app.widgets import review_filter
from curator.app_support import current_project
from curator.audio import decode_window
from curator.errors import AudioError
from curator.project import Project
from curator.review import (
    ReviewFilter,
    effective_tags,
    label_is_tag,
    review_page,
    set_labels,
    tag_changes,
)

PREVIEW_RATE = 22050  # enough to judge hats and 808s, half the bytes of 44.1 kHz


def sidebar_filter(project: Project) -> tuple[ReviewFilter, int]:
    st.sidebar.header("Filter")
    where = review_filter(project, st.sidebar)
    return where, st.sidebar.selectbox("Per page", [10, 25, 50])


def show_audio(row: dict[str, Any]) -> None:
    try:
        audio = decode_window(Path(row["source"]), row["start"], row["duration"], PREVIEW_RATE, 1)
    except AudioError as exc:
        st.warning(f"cannot play: {exc.reason}")
        return
    st.audio(audio[:, 0], sample_rate=PREVIEW_RATE)


def show_model_view(row: dict[str, Any]) -> None:
    model = [x for x in row["labels"] if x["source_kind"] == "model" and label_is_tag(x["facet"])]
    if model:
        st.caption(
            "Model tags: "
            + ", ".join(f"{x['tag']} {x['score']:.2f} ({x['source']})" for x in model)
        )
    values = [
        f"{m['name']} {m['text'] or round(m['value'], 1)} (confidence {m['confidence']:.2f},"
        f" {m['plugin']})"
        for m in row["measurements"]
        if m["name"] in ("tempo", "key", "scale")
    ]
    if values:
        st.caption(" · ".join(values))
    if row["prompt"]:
        st.caption(f"Prompt: {row['prompt']}")


def edit_form(project: Project, row: dict[str, Any]) -> None:
    vocabulary = project.vocabulary()
    current = effective_tags(row)
    with st.form(f"edit-{row['id']}"):
        chosen = {
            facet.name: st.multiselect(
                facet.name,
                sorted({t.name for t in facet.tags} | set(current.get(facet.name, []))),
                default=current.get(facet.name, []),
                key=f"{row['id']}-{facet.name}",
            )
            for facet in vocabulary.facets
        }
        if st.form_submit_button("Save"):
            changes = [
                c
                for facet, tags in chosen.items()
                for c in tag_changes(row["id"], facet, current.get(facet, []), tags)
            ]
            if changes:
                batch = set_labels(project, changes, action="review")
                st.success(f"Saved {len(changes)} change(s) (batch {batch}).")
                st.rerun()


def show_segment(project: Project, row: dict[str, Any]) -> None:
    with st.container(border=True):
        name = Path(row["source"]).name
        end = row["start"] + row["duration"]
        st.markdown(f"**{row['id']}** · {name} · {row['start']:.1f}-{end:.1f} s")
        show_audio(row)
        show_model_view(row)
        edit_form(project, row)


def main() -> None:
    st.set_page_config(page_title="Review · Curator", layout="wide")
    project = current_project()
    where, page_size = sidebar_filter(project)
    first = review_page(project, where, 1, 1)
    pages = max(1, -(-first.total // page_size))
    st.title("Review")
    page = st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1)
    shown = review_page(project, where, int(page), page_size)
    st.write(f"{shown.total} segment(s) match.")
    for row in shown.segments:
        show_segment(project, row)


main()
