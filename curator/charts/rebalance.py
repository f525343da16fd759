"""Before/after tag-count charts of a rebalance report, as plotly figures."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from curator.charts.catalogue import Chart, no_data_figure


def before_after_figure(report: dict[str, Any], facet: str, shares: bool = False) -> Chart:
    """Per tag of `facet`, copies in the catalogue and in the selection, side by side.

    With `shares`, each bar is the tag's share of the facet's copies: a catalogue and a
    much smaller selection then read on one axis, and a flat profile means balance.
    """
    rows = report.get("facets", {}).get(facet, {}).get("tags", [])
    title = f"{facet}: before and after"
    if not any(row["before"] for row in rows):
        return Chart(no_data_figure(title, "No segment has a tag of this facet."), rows)
    tags = [row["tag"] for row in rows]
    figure = go.Figure(
        [
            go.Bar(name="catalogue", x=tags, y=_values(rows, "before", shares)),
            go.Bar(name="selection", x=tags, y=_values(rows, "after", shares)),
        ]
    )
    figure.update_layout(
        title=title, barmode="group", yaxis_title="share of copies" if shares else "copies"
    )
    return Chart(figure, rows)


def _values(rows: list[dict[str, Any]], column: str, shares: bool) -> list[float]:
    values = [float(row[column]) for row in rows]
    total = sum(values)
    return [v / total for v in values] if shares and total else values
