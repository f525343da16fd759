"""Bulk relabel: add, remove or rename a tag on every segment a filter matches, at once."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from curator.app.session import as_text, open_page, page_curator
from curator.app.widgets import play_segment, review_filter, saved_queue_segments
from curator.curation import review
from curator.curation.review import (
    ReviewFilter,
    bulk_relabel,
    describe_batches,
    review_page,
    undo,
)
from curator.errors import CuratorError
from curator.project import Project

SAMPLE_PLAYERS = 3
LAST = "last-bulk"  # session key: (batch id, what it did) of the latest change
Change = tuple[str, str, str, str | None]


def choose_change(project: Project) -> Change | None:
    """The change to make; None until an action and a tag are chosen (nothing is preset)."""
    vocabulary = project.vocabulary()
    columns = st.columns(4)
    action = columns[0].selectbox(
        "Action", ["add", "remove", "rename"], index=None, placeholder="choose", key="bulk-action"
    )
    facet = columns[1].selectbox("Facet", vocabulary.facet_names, key="bulk-facet")
    tags = [t.name for t in vocabulary.facet(facet).tags]
    tag = columns[2].selectbox("Tag", tags, index=None, placeholder="choose", key="bulk-tag")
    new_tag = columns[3].selectbox(
        "Rename to",
        tags,
        index=None,
        placeholder="choose",
        key="bulk-new-tag",
        disabled=action != "rename",
    )
    if action is None or tag is None or (action == "rename" and new_tag is None):
        return None
    return action, facet, tag, new_tag if action == "rename" else None


def preview(project: Project, where: ReviewFilter) -> int:
    """How many segments match, and the first few to listen to."""
    try:
        found = review_page(project, where, 1, SAMPLE_PLAYERS)
    except CuratorError as exc:
        st.error(as_text(exc))
        return 0
    st.write(f"{found.total} segment(s) match the filter.")
    for row in found.segments:
        st.caption(as_text(f"{row['id']} · {row['source']} · {row['start']:.1f} s"))
        play_segment(row)
    return found.total


def confirmed(count: int) -> bool:
    """A large change goes ahead only once the curator types how many segments it touches."""
    if count <= review.BULK_CONFIRM_ABOVE:
        return True
    typed = st.text_input(
        f"This changes up to {count} segments: type {count} to confirm", key="bulk-confirm"
    )
    return typed.strip() == str(count)


def apply(project: Project, where: ReviewFilter, change: Change) -> None:
    action, facet, tag, new_tag = change
    try:
        batch, changed = bulk_relabel(
            project, where, action, facet, tag, new_tag, actor=page_curator()
        )
    except CuratorError as exc:
        st.error(as_text(exc))
        return
    st.session_state[LAST] = (batch, outcome(project, batch, change, changed))
    st.session_state.pop("bulk-confirm", None)
    st.rerun()  # the counts above are read again, after the change


def outcome(project: Project, batch: str, change: Change, changed: int) -> str:
    action, facet, tag, new_tag = change
    what = f"{action} {facet}/{tag}" + (f" to {new_tag}" if new_tag else "")
    if not changed:
        return f"{what}: nothing to change (every matching segment already had it so)."
    (summary,) = project.catalog.batches(batch_id=batch)
    said = describe_batches(project, [batch])[batch]
    return f"{what}: {summary['segments']} segment(s) changed ({said}), one batch ({batch})."


def offer_undo(project: Project) -> None:
    last = st.session_state.get(LAST)
    if not last:
        return
    batch, said = last
    st.success(as_text(said))
    if st.button(f"Undo batch {batch}", key="bulk-undo"):
        try:
            restored = undo(project, batch, actor=page_curator())
        except CuratorError as exc:
            st.error(as_text(exc))
            return
        st.session_state.pop(LAST)
        st.session_state["bulk-undone"] = f"Undone: {restored} label(s) restored."
        st.rerun()


def main() -> None:
    project = open_page("Bulk relabel")
    st.title("Bulk relabel")
    if "bulk-undone" in st.session_state:
        st.success(st.session_state.pop("bulk-undone"))
    offer_undo(project)
    st.subheader("1. Choose segments")
    where = review_filter(project, st, key="bulk-filter")
    where = replace(where, segments=saved_queue_segments(project, st, key="bulk-queue"))
    count = preview(project, where)
    st.subheader("2. Choose the change")
    change = choose_change(project)
    ready = change is not None and count > 0 and confirmed(count)
    if st.button("Apply", type="primary", disabled=not ready, key="bulk-apply") and change:
        apply(project, where, change)


main()
