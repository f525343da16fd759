"""The Review page's duplicates panel: a segment's duplicate groups, a link to each other
member, and "keep this one, exclude the others" in one undoable action."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from curator.app.session import as_text, page_curator
from curator.app.widgets import segment_link
from curator.curation.duplicates import SegmentDuplicates, keep_only, segment_duplicates
from curator.curation.review import undo
from curator.duplicates.units import LEVEL_WORDS, Member
from curator.errors import CuratorError
from curator.project import Project

KEPT = "duplicates-kept"  # session key: what the last keep (or its undo) did, and where


def duplicates_panel(project: Project, row: dict[str, Any]) -> None:
    """The segment's duplicates, if it has any, with the action that keeps only it."""
    segment_id = row["id"]
    # The queue's rows say which segments have duplicates: the others cost no query.
    found = segment_duplicates(project, segment_id) if row.get("duplicate_levels") else None
    said = st.session_state.get(KEPT)
    if said and said["segment"] == segment_id:
        kept_message(project, said)
    if found is None:
        return
    with st.expander(f"Duplicates ({_count(found)} other segment(s))", expanded=True):
        for group in found.groups:
            st.markdown(f"**{as_text(group.level)}**: {as_text(group.evidence)}")
            for member in group.others:
                member_row(member)
        if found.linked:
            st.caption("Linked through other members' groups (excluded too):")
            for member in found.linked:
                member_row(member)
        keep_button(project, segment_id, found)


def member_row(member: Member) -> None:
    columns = st.columns([6, 1])
    state = " · excluded" if member.excluded else ("" if member.usable else " · not usable")
    end = member.start + member.duration
    columns[0].write(
        as_text(
            f"{member.segment_id} · {Path(member.source).name} (track {member.track_id}) · "
            f"{member.start:.1f}-{end:.1f} s{state}"
        )
    )
    columns[1].link_button("Open", segment_link(member.segment_id))


def keep_button(project: Project, segment_id: str, found: SegmentDuplicates) -> None:
    n = len(found.to_exclude)
    st.button(
        f"Keep this one, exclude the others ({n})",
        key=f"{segment_id}-keep-one",
        disabled=n == 0,
        help="Excludes every other member from training as one change (History can undo it).",
        on_click=_keep,
        args=(project, segment_id, [*found.to_exclude, segment_id]),
    )


def _keep(project: Project, segment_id: str, touched: list[str]) -> None:
    # A callback, so the page is drawn after the change.
    try:
        batch, changed = keep_only(project, segment_id, actor=page_curator())
    except CuratorError as exc:
        st.session_state[KEPT] = {"segment": segment_id, "error": str(exc)}
        return
    forget_exclusion_boxes(touched)
    st.session_state[KEPT] = {
        "segment": segment_id,
        "batch": batch,
        "changed": changed,
        "touched": touched,
    }


def _undo(project: Project, said: dict) -> None:
    try:
        restored = undo(project, said["batch"], page_curator())
    except CuratorError as exc:
        st.session_state[KEPT] = {"segment": said["segment"], "error": str(exc)}
        return
    forget_exclusion_boxes(said["touched"])
    st.session_state[KEPT] = {"segment": said["segment"], "undone": restored}


def forget_exclusion_boxes(segments: list[str]) -> None:
    """Drop the remembered state of these segments' "Exclude from training" boxes, which
    would otherwise show (and save back) the value from before the change."""
    for segment in segments:
        st.session_state.pop(f"{segment}-excluded", None)


def kept_message(project: Project, said: dict) -> None:
    """What the last keep (or its undo) on this segment did, with its Undo button."""
    if "error" in said:
        st.error(as_text(said["error"]))
    elif "undone" in said:
        st.success(f"Undone: {said['undone']} change(s) restored.")
    else:
        columns = st.columns([6, 1])
        columns[0].success(
            f"Kept {as_text(said['segment'])} and excluded its duplicates: {said['changed']} "
            f"change(s) (batch {said['batch']})."
        )
        columns[1].button(
            "Undo", key=f"{said['segment']}-keep-undo", on_click=_undo, args=(project, said)
        )


def _count(found: SegmentDuplicates) -> int:
    return len(
        {m.segment_id for g in found.groups for m in g.others}
        | {m.segment_id for m in found.linked}
    )


def duplicates_caption(project: Project, row: dict[str, Any]) -> None:
    """One line for focus mode: which segments duplicate this one (the List view's panel
    has the links and the action)."""
    found = segment_duplicates(project, row["id"]) if row.get("duplicate_levels") else None
    if found is None:
        return
    parts = [
        f"{LEVEL_WORDS.get(g.level, g.level)} {', '.join(m.segment_id for m in g.others)}"
        for g in found.groups
    ]
    st.caption(
        as_text(f"Duplicates: {'; '.join(parts)}.")
        + " The List view shows them and keeps one in one action."
    )
