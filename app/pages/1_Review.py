"""Review: listen to segments, fix their tags, move on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import streamlit as st

from curator.app.focus import focus_view
from curator.app.session import as_text, open_page, page_curator
from curator.app.widgets import review_filter
from curator.catalogue.audio import decode_window, spectrogram_image
from curator.curation.review import (
    ORDERS,
    ReviewFilter,
    current_values,
    effective_tags,
    label_is_tag,
    model_only_tags,
    review_page,
    save_segment,
    tag_changes,
    value_changes,
)
from curator.curation.suspects import SuspectOptions, find_suspects
from curator.errors import AudioError, CuratorError
from curator.music import NOTE_NAMES, SCALES, VALUE_FACETS, tempo_bpm
from curator.project import Project
from curator.vocabulary import add_tag

PREVIEW_RATE = 22050  # enough to judge hats and 808s, half the bytes of 44.1 kHz


def sidebar_filter(project: Project) -> tuple[ReviewFilter, int]:
    st.sidebar.header("Filter")
    where = review_filter(project, st.sidebar)
    page_size = st.sidebar.selectbox("Per page", [10, 25, 50])
    order = st.sidebar.selectbox(
        "Queue", list(ORDERS), format_func=ORDERS.__getitem__, key="queue-order"
    )
    if order == "suspects" and st.sidebar.button("Recompute the suspicion queue"):
        recompute_suspects(project, where)
    return replace(where, order=order), page_size


def recompute_suspects(project: Project, where: ReviewFilter) -> None:
    """Cross-validate probes again (about a second per tag on 1,000 segments)."""
    try:
        with st.spinner("Training probes on the labels..."):
            report = find_suspects(project, SuspectOptions(facet=where.facet, tags=_tags(where)))
    except CuratorError as exc:
        st.sidebar.error(as_text(exc))
        return
    flagged = sum(s.flagged for s in report.suspects)
    st.sidebar.success(f"{len(report.judged)} tag(s) judged, {flagged} label(s) flagged.")


def _tags(where: ReviewFilter) -> tuple[str, ...]:
    return (where.tag,) if where.tag else ()


def show_queue_reason(row: dict[str, Any]) -> None:
    """Why a segment is in a ranked queue: its suspect labels, or how unsure the tagger is."""
    for item in row.get("suspects", []):
        label = "present" if item["present"] else "absent"
        st.warning(
            f"**{as_text(item['facet'])}/{as_text(item['tag'])}** ({label}) may be wrong, "
            f"score {item['score']:.2f}: {as_text(item['reason'])}"
        )
    if "informativeness" in row:
        st.info(
            f"The learned tagger is unsure here (informativeness {row['informativeness']:.2f}):"
            " a label on this segment teaches it most."
        )


def show_audio(row: dict[str, Any]) -> None:
    try:
        audio = decode_window(Path(row["source"]), row["start"], row["duration"], PREVIEW_RATE, 1)
    except AudioError as exc:
        st.warning(f"cannot play: {as_text(exc.reason)}")
        return
    st.audio(audio[:, 0], sample_rate=PREVIEW_RATE)
    st.image(
        spectrogram_image(audio, PREVIEW_RATE),
        width="stretch",
        caption="spectrogram, 30 Hz (bottom) to 11 kHz (top)",
    )


def show_model_view(row: dict[str, Any]) -> None:
    model = [x for x in row["labels"] if x["source_kind"] == "model" and label_is_tag(x["facet"])]
    if model:
        st.caption(
            "Model tags: "
            + as_text(", ".join(f"{x['tag']} {x['score']:.2f} ({x['source']})" for x in model))
        )
    values = [
        f"{m['name']} {m['text'] or round(m['value'], 1)} (confidence {m['confidence']:.2f},"
        f" {m['plugin']})"
        for m in row["measurements"]
        if m["name"] in VALUE_FACETS
    ]
    if values:
        st.caption(as_text(" · ".join(values)))
    human = [
        f"{x['tag']}{'' if x['present'] else ' (rejected)'} by {x['actor']}"
        for x in row["labels"]
        if x["source_kind"] == "human" and label_is_tag(x["facet"])
    ]
    if human:
        st.caption("Human labels: " + as_text(", ".join(human)))
    if row["prompt"]:
        st.caption(f"Prompt: {as_text(row['prompt'])}")


# Stored keys are read in sharps (current_values), so every one of them is in this list.
KEYS = ["", *NOTE_NAMES]


def tag_inputs(project: Project, row: dict[str, Any], current: dict[str, list[str]]) -> dict:
    return {
        facet.name: st.multiselect(
            as_text(facet.name),
            sorted({t.name for t in facet.tags} | set(current.get(facet.name, []))),
            default=current.get(facet.name, []),
            key=f"{row['id']}-{facet.name}",
        )
        for facet in project.vocabulary().facets
    }


def value_inputs(row: dict[str, Any], values: dict[str, str | None]) -> dict[str, str | None]:
    columns = st.columns(4)
    tempo = columns[0].text_input(
        "Tempo (BPM)", values.get("tempo") or "", key=f"{row['id']}-tempo"
    )
    key = columns[1].selectbox(
        "Key", KEYS, index=KEYS.index(values.get("key") or ""), key=f"{row['id']}-key"
    )
    scales = ["", *SCALES]
    scale = columns[2].selectbox(
        "Scale", scales, index=scales.index(values.get("scale") or ""), key=f"{row['id']}-scale"
    )
    return {"tempo": _tempo_text(tempo), "key": key or None, "scale": scale or None}


def _tempo_text(text: str) -> str | None:
    bpm = tempo_bpm(text) if text.strip() else None
    if bpm is None and text.strip():
        st.warning(f"tempo {as_text(repr(text))} is not a number; left unchanged")
    return None if bpm is None else f"{bpm:g}"


def new_tag_inputs(project: Project, row: dict[str, Any]) -> tuple[str, str]:
    columns = st.columns([1, 2])
    facet = columns[0].selectbox(
        "New tag in", project.vocabulary().facet_names, key=f"{row['id']}-new-facet"
    )
    tag = columns[1].text_input("New tag (added to the vocabulary)", key=f"{row['id']}-new-tag")
    return facet, tag.strip()


def edit_form(project: Project, row: dict[str, Any]) -> None:
    current, values = effective_tags(row), current_values(row)
    with st.form(f"edit-{row['id']}"):
        chosen = tag_inputs(project, row, current)
        corrected = value_inputs(row, values)
        new_facet, new_tag = new_tag_inputs(project, row)
        note = st.text_input("Note", row["note"] or "", key=f"{row['id']}-note")
        excluded = st.checkbox(
            "Exclude from training", row["excluded"], key=f"{row['id']}-excluded"
        )
        confirm = st.checkbox("Confirm the model's tags I kept", True, key=f"{row['id']}-confirm")
        if st.form_submit_button("Save"):
            try:
                if new_tag:
                    new_tag = add_tag(project.vocabulary_dir, new_facet, new_tag)
                    chosen[new_facet] = [*chosen.get(new_facet, []), new_tag]
                kept = model_only_tags(row) if confirm else set()
                changes = [
                    c
                    for facet, tags in chosen.items()
                    for c in tag_changes(row["id"], facet, current.get(facet, []), tags, kept)
                ]
                changes += value_changes(row["id"], values, corrected)
                batch, changed = save_segment(
                    project, row["id"], changes, note, excluded, actor=page_curator()
                )
            except CuratorError as exc:  # a bad value: nothing was saved, say why
                st.error(as_text(exc))
                return
            if changed:
                st.success(f"Saved {changed} change(s) (batch {batch}).")
                st.rerun()


def show_segment(project: Project, row: dict[str, Any]) -> None:
    with st.container(border=True):
        name = Path(row["source"]).name
        end = row["start"] + row["duration"]
        st.markdown(f"**{as_text(row['id'])}** · {as_text(name)} · {row['start']:.1f}-{end:.1f} s")
        show_queue_reason(row)
        show_audio(row)
        show_model_view(row)
        edit_form(project, row)


PAGE_KEY = "review-page"


def requested_page() -> int:
    # The page box is drawn after the queue is read (its maximum is the page count), so the
    # page asked for comes from its state: one read gives both the count and the rows, which
    # matters for the ranked queues (the learned tagger's ranking is computed per read).
    return int(st.session_state.get(PAGE_KEY, 1))


def main() -> None:
    project = open_page("Review")
    where, page_size = sidebar_filter(project)
    # Focus: one segment at a time, keyboard first (app/focus.py); List: a page to skim.
    if st.sidebar.radio("View", ["Focus", "List"], horizontal=True, key="review-view") == "Focus":
        st.title("Review")
        focus_view(project, where)
        return
    try:
        shown = review_page(project, where, requested_page(), page_size)
    except CuratorError as exc:  # e.g. no learned tagger trained yet
        st.error(as_text(exc))
        where = replace(where, order="id")
        shown = review_page(project, where, requested_page(), page_size)
    pages = max(1, -(-shown.total // page_size))
    if requested_page() > pages:  # the filter or the page size changed under it
        st.session_state[PAGE_KEY] = pages
        shown = review_page(project, where, pages, page_size)
    st.title("Review")
    st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, key=PAGE_KEY)
    st.write(f"{shown.total} segment(s) match.")
    for row in shown.segments:
        show_segment(project, row)


main()
