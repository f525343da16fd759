"""Charts of jobs as plotly figures: a fine-tune's loss, generation jobs compared by adherence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from curator.jobs.adherence import JobAdherence, comparison_rows
from curator.jobs.manage import Job, read_progress

VALIDATION_FILE = "validation.jsonl"  # written by training/train.py beside progress.jsonl
COLOURS = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3"]


def loss_figure(job: Job) -> go.Figure:
    """Training loss per step (and validation loss, when the export has a validation set)."""
    records = [r for r in job.progress() if r.get("loss") is not None]
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=[r["step"] for r in records],
            y=[r["loss"] for r in records],
            mode="lines",
            name="training loss",
        )
    )
    validation = validation_losses(job)
    if validation:
        figure.add_trace(
            go.Scatter(
                x=[r["step"] for r in validation],
                y=[r["val_loss"] for r in validation],
                mode="lines+markers",
                name="validation loss",
            )
        )
    figure.update_layout(
        xaxis_title="step", yaxis_title="loss", height=320, margin={"t": 30, "b": 40}
    )
    return figure


def validation_losses(job: Job) -> list[dict[str, Any]]:
    """The job's validation records that hold a loss, oldest first."""
    # The same appending writer as progress.jsonl, so the same reader.
    found = read_progress(job.folder / VALIDATION_FILE)
    return [r for r in found if r.get("val_loss") is not None]


def comparison_figure(adherences: Sequence[JobAdherence]) -> go.Figure:
    """A small bar chart per measure (tempo, key, each tag), one bar per job."""
    rows = comparison_rows(adherences)
    measures = list(dict.fromkeys(row["measure"] for row in rows))
    columns = min(4, max(1, len(measures)))
    lines = max(1, -(-len(measures) // columns))
    figure = make_subplots(
        rows=lines, cols=columns, subplot_titles=measures or ["nothing to score"]
    )
    labels = list(dict.fromkeys(a.label for a in adherences))
    for number, measure in enumerate(measures):
        for index, label in enumerate(labels):
            value = next(
                (r["value"] for r in rows if r["measure"] == measure and r["label"] == label), None
            )
            figure.add_trace(
                go.Bar(
                    x=[label],
                    y=[value],
                    name=label,
                    marker_color=COLOURS[index % len(COLOURS)],
                    showlegend=number == 0,
                ),
                row=number // columns + 1,
                col=number % columns + 1,
            )
    figure.update_yaxes(range=[0, 1])
    figure.update_layout(height=260 * lines, barmode="group", margin={"t": 40})
    return figure
