"""Bulk relabel: add, remove or rename a tag on every segment a filter matches, at once."""

from __future__ import annotations

import streamlit as st

from curator.app.session import as_text, open_page, page_curator
from curator.app.widgets import review_filter
from curator.curation.review import ReviewFilter, bulk_preview, bulk_relabel, undo
from curator.errors import CuratorError
from curator.project import Project


def choose_change(project: Project) -> tuple[str, str, str, str | None]:
    vocabulary = project.vocabulary()
    columns = st.columns(4)
    action = columns[0].selectbox("Action", ["add", "remove", "rename"], key="bulk-action")
    facet = columns[1].selectbox("Facet", vocabulary.facet_names, key="bulk-facet")
    tags = [t.name for t in vocabulary.facet(facet).tags]
    tag = columns[2].selectbox("Tag", tags, key="bulk-tag")
    new_tag = columns[3].selectbox(
        "Rename to", tags, key="bulk-new-tag", disabled=action != "rename"
    )
    return action, facet, tag, new_tag if action == "rename" else None


def preview(project: Project, where: ReviewFilter) -> int:
    found = bulk_preview(project, where)
    st.write(f"{found.count} segment(s) match the filter.")
    if found.sample:
        st.caption("For example: " + as_text(", ".join(found.sample)))
    return found.count


def apply(project: Project, where: ReviewFilter, change: tuple[str, str, str, str | None]) -> None:
    action, facet, tag, new_tag = change
    try:
        batch, changed = bulk_relabel(
            project, where, action, facet, tag, new_tag, actor=page_curator()
        )
    except CuratorError as exc:
        st.error(as_text(exc))
        return
    st.session_state["last-bulk"] = batch
    st.success(f"{action} {as_text(repr(tag))}: {changed} label(s) changed in one batch ({batch}).")


def offer_undo(project: Project) -> None:
    batch = st.session_state.get("last-bulk")
    if batch and st.button(f"Undo batch {batch}", key="bulk-undo"):
        restored = undo(project, batch, actor=page_curator())
        st.session_state.pop("last-bulk")
        st.success(f"Undone: {restored} label(s) restored.")


def main() -> None:
    project = open_page("Bulk relabel")
    st.title("Bulk relabel")
    st.subheader("1. Choose segments")
    where = review_filter(project, st, key="bulk-filter")
    count = preview(project, where)
    st.subheader("2. Choose the change")
    change = choose_change(project)
    if st.button("Apply", type="primary", disabled=count == 0, key="bulk-apply"):
        apply(project, where, change)
    offer_undo(project)


main()
