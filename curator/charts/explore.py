"""The Explore page's map as a plotly figure: one point per segment, coloured as chosen,
each point carrying its segment id so a selection names segments, not positions."""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from curator.charts.catalogue import no_data_figure
from curator.explore.points import (
    HAS_IT,
    HAS_NOT,
    LABEL_SOURCES,
    NO_GROUP,
    Colouring,
    MapPoints,
)

# Above this many points the map is drawn with WebGL: SVG slows down past a few thousand.
WEBGL_ABOVE = 5000
NONE_COLOUR = "lightgrey"
CATEGORY_COLOURS = qualitative.Plotly
GROUP_COLOURS = qualitative.Dark24
# Fixed colours where the category says something: what a person did stands out, "nothing"
# is grey.
NAMED_COLOURS = {
    HAS_IT: "#d62728",
    HAS_NOT: NONE_COLOUR,
    LABEL_SOURCES["verified"]: "#2ca02c",
    LABEL_SOURCES["human"]: "#1f77b4",
    LABEL_SOURCES["model"]: "#ff7f0e",
    LABEL_SOURCES["none"]: NONE_COLOUR,
}
SCALE = "Viridis"


def segment_map_figure(points: MapPoints, colouring: Colouring, title: str) -> go.Figure:
    """The map, one trace per legend entry (a trace holds the points of one category).

    No drag mode is set: Streamlit then opens the map in pan mode, where a click selects
    one point, and box or lasso (from the toolbar) select areas.
    """
    if not len(points):
        return no_data_figure(title, "No segment to draw yet.")
    figure = go.Figure()
    hover = hover_texts(points, colouring)
    for trace in _traces(points, colouring, hover):
        figure.add_trace(trace)
    figure.update_layout(
        title=title,
        legend_title_text=colouring.title,
        showlegend=True,
        xaxis={"visible": False},
        yaxis={"visible": False, "scaleanchor": "x"},
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        height=640,
    )
    return figure


def hover_texts(points: MapPoints, colouring: Colouring) -> np.ndarray:
    """What hovering each point says: segment, file, start, top tags and its colour's value.
    File names and tags are escaped: plotly renders tags such as <a> in hover text."""
    said = [_value_text(v) for v in colouring.values.tolist()]
    return np.array(
        [
            f"<b>{html.escape(segment)}</b><br>{html.escape(file)} at {start:.1f} s<br>"
            f"tags: {html.escape(tags or 'none')}<br>{html.escape(colouring.title)}: "
            f"{html.escape(value)}"
            for segment, file, start, tags, value in zip(
                points.segment_ids.tolist(),
                points.files.tolist(),
                points.starts.tolist(),
                points.tags.tolist(),
                said,
                strict=True,
            )
        ],
        dtype=object,
    )


def _value_text(value: str | float) -> str:
    if isinstance(value, float):
        return "none" if np.isnan(value) else f"{value:.2f}"
    return value


def _traces(points: MapPoints, colouring: Colouring, hover: np.ndarray) -> list[go.Scatter]:
    values = colouring.values
    if colouring.kind == "scale":
        known = ~np.isnan(values.astype(float))
        scale = {
            "color": values[known],
            "colorscale": SCALE,
            "showscale": True,
            "colorbar": {"title": {"text": "score"}, "x": 1.02},
        }
        return [
            _trace(points, hover, ~known, "no value", {"color": NONE_COLOUR}),
            _trace(points, hover, known, colouring.title, scale),
        ]
    if colouring.kind == "group":
        grouped = values != NO_GROUP
        names, numbered = np.unique(values[grouped].astype(str), return_inverse=True)
        colours = np.array(GROUP_COLOURS, dtype=object)[numbered % len(GROUP_COLOURS)]
        return [
            _trace(points, hover, ~grouped, NO_GROUP, {"color": NONE_COLOUR}),
            _trace(points, hover, grouped, f"in a group ({len(names)})", {"color": colours}),
        ]
    return [
        _trace(
            points,
            hover,
            values == name,
            name,
            {"color": NAMED_COLOURS.get(name, CATEGORY_COLOURS[k % len(CATEGORY_COLOURS)])},
        )
        for k, name in enumerate(colouring.categories)
    ]


def _trace(
    points: MapPoints, hover: np.ndarray, members: np.ndarray, name: str, marker: dict
) -> go.Scatter:
    kind = go.Scattergl if len(points) > WEBGL_ABOVE else go.Scatter
    return kind(
        x=points.x[members],
        y=points.y[members],
        mode="markers",
        name=name,
        marker={"size": 8, "opacity": 0.85, **marker},
        customdata=points.segment_ids[members],
        hovertext=hover[members],
        hovertemplate="%{hovertext}<extra></extra>",
    )
