"""History: every change curators made, who made it and when; undo any of them."""

from __future__ import annotations

import streamlit as st

from curator.app.session import as_text, open_page, page_curator
from curator.curation.review import undo
from curator.errors import CuratorError
from curator.project import Project


def show_batches(project: Project) -> None:
    batches = project.catalog.batches(limit=100)
    if not batches:
        st.info("No changes yet: edits made on the Review page appear here.")
        return
    for batch in batches:
        columns = st.columns([4, 1])
        undone = f", undone by {batch['undone_by']}" if batch["undone_by"] else ""
        columns[0].write(
            f"`{batch['batch_id']}` {batch['action']} by {as_text(batch['actor'])}, "
            f"{batch['labels']} label(s), {batch['changed_at']:%Y-%m-%d %H:%M}{undone}"
        )
        if (
            not batch["undone_by"]
            and batch["action"] != "undo"
            and columns[1].button("Undo", key=f"undo-{batch['batch_id']}")
        ):
            restore(project, batch["batch_id"])


def restore(project: Project, batch_id: str) -> None:
    try:
        restored = undo(project, batch_id, actor=page_curator())
    except CuratorError as exc:
        st.error(as_text(exc))
        return
    st.success(f"Restored {restored} label(s) changed by {batch_id}.")
    st.rerun()


def show_segment_history(project: Project) -> None:
    segment = st.text_input("A segment's history (segment id)")
    if not segment:
        return
    rows = project.catalog.label_history(segment)
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")
    else:
        st.write("No changes to this segment.")


def main() -> None:
    project = open_page("History")
    st.title("History")
    show_batches(project)
    show_segment_history(project)


main()
