"""The review app's home page: what the catalogue holds, and what could not be used."""

from __future__ import annotations

import streamlit as st

from curator.app.session import as_text, open_page
from curator.app.widgets import segment_link
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
    st.dataframe(
        [{"open": segment_link(r["id"])} | {c: r[c] for c in columns} for r in shown],
        hide_index=True,
        width="stretch",
        column_config={
            "open": st.column_config.LinkColumn(
                "Review", display_text="open", help="Open this segment on the Review page"
            )
        },
    )


def show_curators(project: Project) -> None:
    activity = project.catalog.curator_activity()
    if not activity:
        return
    st.subheader("Curators")
    st.dataframe(
        [
            {
                "curator": row["actor"],
                "changes, last day": row["changes_day"],
                "segments, last day": row["segments_day"],
                "changes, last week": row["changes_week"],
                "segments, last week": row["segments_week"],
            }
            for row in activity
        ],
        hide_index=True,
        width="stretch",
    )


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
    for run in runs:
        if run["status"].startswith("running"):
            show_progress(run)
    st.caption(
        "A run shows as interrupted once its process is gone; run the same command to "
        "resume it. A run on another machine shows that machine's name."
    )
    table = [
        {k: v for k, v in run.items() if k != "progress"}
        | {"total": run["progress"]["total"] if run["progress"] else None}
        for run in runs
    ]
    st.dataframe(table, hide_index=True, width="stretch")


def show_progress(run: dict) -> None:
    """One live run: a bar with done/total, its rate and the time left at that rate."""
    name = f"{run['kind']} {run['plugin']}@{run['plugin_version']} (run {run['id']})"
    progress = run["progress"]
    if progress is None:
        st.caption(as_text(f"{name}: running, {run['done']} done"))
        return
    done, total = progress["done"], progress["total"]
    words = [f"{done:,} / {total:,} segments"]
    if progress["rate"]:
        words.append(f"{progress['rate']:.1f} segments/s")
        words.append(f"about {duration_text(progress['eta_seconds'])} left")
    st.progress(done / total if total else 1.0, text=as_text(f"{name}: " + " · ".join(words)))


def duration_text(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def main() -> None:
    project = open_page("")
    st.title("Curator")
    st.caption(f"Project: {as_text(project.root)}")
    report = project_status(project)
    show_counts(report)
    show_disk(report)
    show_runs(project, report)
    show_curators(project)
    show_segments(project)
    show_problems(report)


main()
