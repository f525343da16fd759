"""Prompts: read and hear each segment's training prompt, edit it, or (re)write prompts."""

from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st

from curator.app.session import as_text, open_page, page_curator
from curator.app.widgets import play_segment
from curator.errors import CuratorError
from curator.project import Project
from curator.prompts.editing import edit_prompt, prompt_table, revert_prompt, rewrite_prompt
from curator.prompts.writing import DEFAULT_WRITER, PromptSummary, write_prompts
from curator.rebalance.selections import selections
from curator.registry import load_registry

ALL = "all usable segments"
ANY = "any"


def sidebar_filters(project: Project) -> tuple[str | None, str, str | None]:
    st.sidebar.header("Filter")
    names = [s["name"] for s in selections(project)]
    selection = st.sidebar.selectbox("Selection", [ALL, *names], key="prompts-selection")
    text = st.sidebar.text_input("Text in prompt, id or file", key="prompts-text")
    tags = sorted({t.name for t in project.vocabulary().tags()})
    tag = st.sidebar.selectbox("Tag", [ANY, *tags], key="prompts-tag")
    return (
        None if selection == ALL else selection,
        text.strip(),
        None if tag == ANY else tag,
    )


def write_panel(project: Project, rows: list[dict[str, Any]]) -> None:
    with st.expander(f"Write prompts for these {len(rows)} segment(s)"):
        writers = load_registry().names("prompt_writers")
        columns = st.columns(3)
        default = writers.index(DEFAULT_WRITER) if DEFAULT_WRITER in writers else 0
        writer = columns[0].selectbox("Writer", writers, index=default, key="prompts-writer")
        seed = columns[1].number_input("Seed", 0, step=1, key="prompts-seed")
        force = columns[2].checkbox("Also rewrite up-to-date ones", key="prompts-force")
        if st.button("Write prompts", key="write-prompts", disabled=not rows):
            run_writer(project, [r["id"] for r in rows], writer, int(seed), force)


def run_writer(project: Project, ids: list[str], writer: str, seed: int, force: bool) -> None:
    bar = st.progress(0.0, text=f"Writing with {as_text(writer)}")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Writing with {as_text(writer)}: {done}/{total}")

    try:
        summary = write_prompts(project, ids, writer, seed, force, progress)
    except CuratorError as exc:
        st.error(as_text(exc))
        return
    st.session_state["prompts-last-run"] = summary
    st.rerun()


def last_run() -> None:
    summary: PromptSummary | None = st.session_state.pop("prompts-last-run", None)
    if summary is None:
        return
    st.success(
        f"{as_text(summary.writer)}: {summary.written} written, {summary.from_cache} from the "
        f"cache, {summary.skipped} already up to date, {summary.failed} failed."
    )
    for segment_id, reason in summary.failures[:20]:
        st.warning(f"{as_text(segment_id)}: {as_text(reason)}")


def segment_editor(project: Project, row: dict[str, Any]) -> None:
    with st.container(border=True):
        st.markdown(f"**{as_text(row['id'])}** · {as_text(row['source'])} · {row['start']:.1f} s")
        facts = [", ".join(row["tags"]) or "no tags"]
        facts += [f"{row['tempo']:g} BPM"] if row["tempo"] else []
        facts += [row["key"]] if row["key"] else []
        st.caption(as_text(" · ".join(facts)))
        play_segment(row)
        st.caption(f"In use: {as_text(who_wrote(row))}")
        show_stale(project, row["id"], row["stale"], row["writer"])
        if row["actor"]:
            st.caption(f"Edited by {as_text(row['actor'])}")
        # The key follows the prompt, so the box shows the new text after a save or revert.
        digest = hashlib.sha1((row["prompt"] or "").encode()).hexdigest()[:8]
        text = st.text_area("Prompt", row["prompt"] or "", key=f"prompt-{row['id']}-{digest}")
        columns = st.columns([1, 1, 4])
        if columns[0].button("Save as curator's", key=f"save-{row['id']}"):
            save(project, row["id"], text)
        if columns[1].button(
            "Use the writer's", key=f"revert-{row['id']}", disabled=row["writer"] != "human"
        ):
            revert_prompt(project, row["id"])
            st.rerun()


def show_stale(project: Project, segment_id: str, stale: str | None, writer: str | None) -> None:
    """Say that a prompt was written from tags that have changed since, with a rewrite."""
    if not stale:
        return
    st.warning(f"Stale: the tags changed since this prompt was written ({as_text(stale)}).")
    label = "Rewrite from the current tags" + (
        " (replaces the curator's edit)" if writer == "human" else ""
    )
    if st.button(label, key=f"rewrite-{segment_id}"):
        try:
            summary = rewrite_prompt(project, segment_id, actor=page_curator())
        except CuratorError as exc:
            st.error(as_text(exc))
            return
        st.session_state["prompts-last-run"] = summary
        st.rerun()


def who_wrote(row: dict[str, Any]) -> str:
    if row["writer"] is None:
        return "no prompt yet"
    return "a curator's edit" if row["writer"] == "human" else f"written by {row['writer']}"


def save(project: Project, segment_id: str, text: str) -> None:
    try:
        edit_prompt(project, segment_id, text, actor=page_curator())
    except CuratorError as exc:
        st.error(as_text(exc))
        return
    st.rerun()


def main() -> None:
    project = open_page("Prompts")
    st.title("Prompts")
    selection, text, tag = sidebar_filters(project)
    per_page = st.sidebar.selectbox("Per page", [10, 25, 50], key="prompts-per-page")
    rows = prompt_table(project, selection, text or None, tag)
    last_run()
    written = sum(1 for r in rows if r["prompt"])
    stale = sum(1 for r in rows if r["stale"])
    st.caption(
        f"{len(rows)} segment(s), {written} with a prompt, {stale} stale (written from tags "
        "that have changed since); a curator's edit wins."
    )
    write_panel(project, rows)
    if not rows:
        st.info("No segment matches the filter.")
        return
    st.dataframe(
        [
            {
                "id": r["id"],
                "prompt": r["prompt"],
                "writer": r["writer"],
                "curator": r["actor"],
                "stale": r["stale"] or "",
            }
            for r in rows
        ],
        hide_index=True,
        width="stretch",
    )
    pages = max(1, -(-len(rows) // per_page))
    page = st.sidebar.number_input("Page", 1, pages, 1, key="prompts-page")
    for row in rows[(page - 1) * per_page : page * per_page]:
        segment_editor(project, row)


main()
