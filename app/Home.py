"""The review app's home page: what the catalogue holds, and what could not be used."""

from __future__ import annotations

import streamlit as st

from curator.app.session import as_text, open_page
from curator.project import Project
from curator.status import project_status, run_lines

PAGE_SIZE = 50
# While a run is going, its part of the page reloads this often to show results as they come.
RUNS_REFRESH_SECONDS = 5


def show_counts(report: dict) -> None:
    tracks, segments = report["tracks"], report["segments"]
    cols = st.columns(4)
    cols[0].metric("Tracks ingested", tracks.get("ingested", 0))
    cols[1].metric("Usable segments", segments.get("usable", 0))
    cols[2].metric("Usable hours", f"{report['usable_hours']:.2f}")
    cols[3].metric("Files not used", len(report["problems"]))


def show_segments(project: Project) -> None:
    rows = project.catalog.segment_rows(include_unusable=True)
    st.subheader(f"Segments ({len(rows)})")
    if not rows:
        st.info("No segments yet: run `curator ingest FOLDER` on this project.")
        return
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = st.number_input("Page", min_value=1, max_value=pages, value=1, step=1)
    shown = rows[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    columns = ["id", "source", "start", "duration", "rms_db", "silent", "excluded"]
    st.dataframe([{c: r[c] for c in columns} for r in shown], hide_index=True, width="stretch")


def show_problems(report: dict) -> None:
    if report["problems"]:
        st.subheader("Files not used")
        st.dataframe(report["problems"], hide_index=True, width="stretch")


def show_disk(report: dict) -> None:
    disk = report["disk_bytes"]
    st.caption("Disk: " + ", ".join(f"{name} {size / 1e6:,.1f} MB" for name, size in disk.items()))


def show_runs(project: Project, report: dict) -> None:
    live = any(run["status"].startswith("running") for run in report["runs"])
    refresh = RUNS_REFRESH_SECONDS if live else None
    st.fragment(_show_runs, run_every=refresh)(project)
    for shard in report["quarantined_shards"]:
        st.warning(as_text(f"Shard set aside, not merged: {shard['shard']}: {shard['reason']}"))


def _show_runs(project: Project) -> None:
    runs = run_lines(project)  # read afresh at each refresh while a run is going
    if not runs:
        return
    st.subheader("Tagger and analyzer runs")
    st.caption(
        "A run shows as interrupted once its process is gone; run the same command to "
        "resume it. A run on another machine shows that machine's name."
    )
    st.dataframe(runs, hide_index=True, width="stretch")


def main() -> None:
    project = open_page("")
    st.title("Curator")
    st.caption(f"Project: {as_text(project.root)}")
    report = project_status(project)
    show_counts(report)
    show_disk(report)
    show_segments(project)
    show_runs(project, report)
    show_problems(report)


main()
