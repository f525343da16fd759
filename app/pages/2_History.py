"""History: every change curators made, who made it, to which segment and tags; undo any."""

from __future__ import annotations

from typing import Any

import streamlit as st

from curator.app.session import as_text, open_page, page_curator
from curator.app.widgets import focused_segment_from_url, segment_link
from curator.curation.review import describe_batches, undo
from curator.errors import CuratorError
from curator.project import Project

EVERYONE = "everyone"


def history_filter(project: Project) -> tuple[str | None, str | None]:
    """Whose changes and which segment's (a segment may come from the URL)."""
    columns = st.columns(2)
    curator = columns[0].selectbox(
        "Curator", [EVERYONE, *project.catalog.curators()], key="history-curator"
    )
    if "history-segment" not in st.session_state:
        st.session_state["history-segment"] = focused_segment_from_url() or ""
    segment = columns[1].text_input("Segment id", key="history-segment").strip()
    return (None if curator == EVERYONE else curator), segment or None


def show_batches(project: Project, curator: str | None, segment: str | None) -> None:
    batches = project.catalog.batches(limit=100, actor=curator, segment_id=segment)
    if not batches:
        st.info("No changes yet: edits made on the Review page appear here.")
        return
    said = describe_batches(project, [b["batch_id"] for b in batches])
    for batch in batches:
        columns = st.columns([6, 1, 1])
        columns[0].markdown(batch_line(batch, said.get(batch["batch_id"], "")))
        columns[1].link_button("Open", segment_link(batch["segment_ids"][0]))
        if (
            not batch["undone_by"]
            and batch["action"] != "undo"
            and columns[2].button("Undo", key=f"undo-{batch['batch_id']}")
        ):
            restore(project, batch["batch_id"])


def batch_line(batch: dict[str, Any], changes: str) -> str:
    """`abc123` review by ana, 2025-01-02 10:11: segment X: +instruments/snare, -hi-hat."""
    undone = f", undone by {batch['undone_by']}" if batch["undone_by"] else ""
    ids = batch["segment_ids"]
    more = batch["segments"] - len(ids)
    where = ("segment " if batch["segments"] == 1 else f"{batch['segments']} segments: ") + (
        ", ".join(ids) + (f" and {more} more" if more > 0 else "")
    )
    return (
        f"`{batch['batch_id']}` {batch['action']} by {as_text(batch['actor'])}, "
        f"{batch['changed_at']:%Y-%m-%d %H:%M}{undone} · {as_text(where)} · {as_text(changes)}"
    )


def restore(project: Project, batch_id: str) -> None:
    try:
        restored = undo(project, batch_id, actor=page_curator())
    except CuratorError as exc:
        st.error(as_text(exc))
        return
    st.success(f"Restored {restored} label(s) changed by {batch_id}.")
    st.rerun()


def show_segment_history(project: Project, segment: str | None) -> None:
    if not segment:
        return
    st.subheader(f"Every change to {as_text(segment)}")
    rows = project.catalog.label_history(segment)
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")
    else:
        st.write("No changes to this segment.")


def main() -> None:
    project = open_page("History")
    st.title("History")
    curator, segment = history_filter(project)
    show_batches(project, curator, segment)
    show_segment_history(project, segment)


main()
