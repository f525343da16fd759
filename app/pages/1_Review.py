"""Review: listen to segments, fix their tags, move on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import streamlit as st

from curator.app.duplicates import duplicates_panel
from curator.app.focus import focus_view
from curator.app.session import as_text, open_page, page_curator
from curator.app.widgets import (
    filter_from_url,
    filter_to_url,
    focused_segment_from_url,
    remember_url,
    review_filter,
    saved_queue_segments,
    set_url_param,
    url_opened,
)
from curator.catalogue.audio import decode_window, spectrogram_image
from curator.curation.review import (
    ORDERS,
    ReviewFilter,
    current_values,
    effective_tags,
    label_is_tag,
    queue_position,
    review_page,
    save_segment,
    suspects_ready,
    tag_changes,
    unavailable_orders,
    unverified_tags,
    value_changes,
)
from curator.curation.suspects import SuspectOptions, find_suspects
from curator.errors import AudioError, CuratorError
from curator.music import NOTE_NAMES, SCALES, VALUE_FACETS, tempo_bpm
from curator.project import Project
from curator.prompts.editing import rewrite_prompt, row_prompt_staleness
from curator.vocabulary import add_tag

PREVIEW_RATE = 22050  # enough to judge hats and 808s, half the bytes of 44.1 kHz


PAGE_SIZES = [10, 25, 50]


def sidebar_filter(project: Project) -> tuple[ReviewFilter, int]:
    """The queue the curator asked for, kept in the URL (see app/widgets.py)."""
    missing = unavailable_orders(project)
    orders = [o for o in ORDERS if o not in missing]
    if url_opened():
        queue_from_url(project, orders)
    st.sidebar.header("Filter")
    where = review_filter(project, st.sidebar)
    page_size = st.sidebar.selectbox("Per page", PAGE_SIZES, key="review-per-page")
    order = st.sidebar.selectbox("Queue", orders, format_func=ORDERS.__getitem__, key="queue-order")
    for reason in missing.values():
        st.sidebar.caption(reason)
    where = replace(where, order=order, segments=saved_queue_segments(project, st.sidebar))
    if order == "suspects":
        suspicion_queue(project, where)
    page_of_linked_segment(project, where, page_size)
    queue_to_url(where, page_size)
    return where, page_size


def queue_from_url(project: Project, orders: list[str]) -> None:
    """A link was opened: its filter, order and page (or the page of its segment)."""
    filter_from_url(project)
    params, state = st.query_params, st.session_state
    state["queue-order"] = params.get("order") if params.get("order") in orders else "id"
    size = params.get("per_page", "")
    state["review-per-page"] = int(size) if size in {str(n) for n in PAGE_SIZES} else 10
    page = params.get("page", "1")
    state[PAGE_KEY] = int(page) if page.isdigit() and int(page) > 0 else 1
    state[LINKED] = focused_segment_from_url()


def queue_to_url(where: ReviewFilter, page_size: int) -> None:
    filter_to_url(where)
    set_url_param("order", where.order, "id")
    set_url_param("per_page", page_size, PAGE_SIZES[0])
    set_url_param("page", st.session_state.get(PAGE_KEY, 1), 1)
    remember_url()


LINKED = "review-linked"  # session key: the segment a just-opened link points at


def page_of_linked_segment(project: Project, where: ReviewFilter, page_size: int) -> None:
    """Turn to the page holding the segment a link pointed at (once, as the link opens)."""
    segment = st.session_state.pop(LINKED, None)
    if not segment:
        return
    try:
        position = queue_position(project, where, segment)
    except CuratorError:
        return
    if position is None:
        st.info(f"Segment {as_text(segment)} is not in this queue.")
        return
    st.session_state[PAGE_KEY] = position // page_size + 1


SUSPECTS_TRIED = "suspects-tried"  # session key: (facet, tag) computed this session


def suspicion_queue(project: Project, where: ReviewFilter) -> None:
    """The suspicion queue, computed on first use (with progress), recomputed on request."""
    tried = st.session_state.setdefault(SUSPECTS_TRIED, set())
    asked = st.sidebar.button("Recompute the suspicion queue")
    first = (where.facet, where.tag) not in tried and not suspects_ready(project, where)
    if asked or first:
        tried.add((where.facet, where.tag))
        recompute_suspects(project, where)


def recompute_suspects(project: Project, where: ReviewFilter) -> None:
    """Cross-validate probes again (about a second per tag on 1,000 segments)."""
    bar = st.progress(0.0, text="Computing the suspicion queue: training probes on the labels")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Computing the suspicion queue: tag {done} of {total}")

    try:
        options = SuspectOptions(facet=where.facet, tags=_tags(where))
        report = find_suspects(project, options, progress)
    except CuratorError as exc:
        bar.empty()
        st.info(f"The suspicion queue cannot be computed yet: {as_text(exc)}")
        return
    bar.empty()
    flagged = sum(s.flagged for s in report.suspects)
    st.sidebar.success(f"{len(report.judged)} tag(s) judged, {flagged} label(s) flagged.")
    if not report.judged:
        st.info(
            "No tag has enough labels to judge yet ("
            + as_text("; ".join(f"{f}/{t}: {why}" for f, t, why in report.skipped[:3]))
            + ")."
        )


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


def show_model_view(project: Project, row: dict[str, Any]) -> None:
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
        show_stale_prompt(project, row)


def show_stale_prompt(project: Project, row: dict[str, Any]) -> None:
    """Flag a prompt written from tags that have changed since, with a one-click rewrite."""
    stale = row_prompt_staleness(row)
    if not stale:
        return
    st.warning(f"Stale prompt: the tags changed since it was written ({as_text(stale)}).")
    if st.button("Rewrite the prompt", key=f"{row['id']}-rewrite"):
        try:
            rewrite_prompt(project, row["id"], actor=page_curator())
        except CuratorError as exc:
            st.error(as_text(exc))
            return
        st.rerun()


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
        # Off by default: a tag left untouched stays unverified (docs/review.md).
        confirm = st.checkbox(
            "Also verify the tags I kept (I listened for each)", False, key=f"{row['id']}-confirm"
        )
        if st.form_submit_button("Save"):
            try:
                if new_tag:
                    new_tag = add_tag(project.vocabulary_dir, new_facet, new_tag)
                    chosen[new_facet] = [*chosen.get(new_facet, []), new_tag]
                kept = unverified_tags(row) if confirm else set()
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
        if row["id"] == focused_segment_from_url():
            st.info("The segment the link points at.")
        show_queue_reason(row)
        show_audio(row)
        show_model_view(project, row)
        duplicates_panel(project, row)
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
