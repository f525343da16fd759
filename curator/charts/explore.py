"""The Explore page's map as a plotly figure: one point per segment, coloured as chosen,
each point carrying its segment id so a selection names segments, not positions."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.colors import qualitative

from curator.charts.catalogue import no_data_figure
from curator.explore.points import (
    HAS_IT,
    HAS_NOT,
    LABEL_SOURCES,
    NO_GROUP,
    Colouring,
    MapPoint,
    top_tags,
)

# Above this many points the map is drawn with WebGL: SVG slows down past a few thousand.
WEBGL_ABOVE = 5000
NONE_COLOUR = "lightgrey"
CATEGORY_COLOURS = qualitative.Plotly
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
GROUP_COLOURS = qualitative.Dark24
SCALE = "Viridis"
HOVER = (
    "<b>%{customdata[0]}</b><br>%{customdata[1]} at %{customdata[2]:.1f} s<br>"
    "tags: %{customdata[3]}<br>%{customdata[4]}<extra></extra>"
)


def segment_map_figure(points: list[MapPoint], colouring: Colouring, title: str) -> go.Figure:
    """The map, one trace per legend entry (a trace holds the points of one category)."""
    if not points:
        return no_data_figure(title, "No segment to draw yet.")
    figure = go.Figure()
    for trace in _traces(points, colouring):
        figure.add_trace(trace)
    figure.update_layout(
        title=title,
        dragmode="lasso",
        legend_title_text=colouring.title,
        showlegend=True,
        xaxis={"visible": False},
        yaxis={"visible": False, "scaleanchor": "x"},
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        height=640,
    )
    return figure


def _traces(points: list[MapPoint], colouring: Colouring) -> list[go.Scatter | go.Scattergl]:
    values = colouring.values
    if colouring.kind == "scale":
        scored = [i for i, v in enumerate(values) if not _missing(v)]
        unscored = [i for i, v in enumerate(values) if _missing(v)]
        return [
            _trace(points, colouring, unscored, "no value", {"color": NONE_COLOUR}),
            _trace(points, colouring, scored, colouring.title, _scale([values[i] for i in scored])),
        ]
    if colouring.kind == "group":
        grouped = [i for i, v in enumerate(values) if v != NO_GROUP]
        alone = [i for i, v in enumerate(values) if v == NO_GROUP]
        names = sorted({str(values[i]) for i in grouped})
        colours = [GROUP_COLOURS[names.index(str(values[i])) % len(GROUP_COLOURS)] for i in grouped]
        return [
            _trace(points, colouring, alone, NO_GROUP, {"color": NONE_COLOUR}),
            _trace(points, colouring, grouped, f"in a group ({len(names)})", {"color": colours}),
        ]
    return [
        _trace(
            points,
            colouring,
            [i for i, v in enumerate(values) if v == name],
            name,
            {"color": NAMED_COLOURS.get(name, CATEGORY_COLOURS[k % len(CATEGORY_COLOURS)])},
        )
        for k, name in enumerate(colouring.categories)
    ]


def _trace(
    points: list[MapPoint], colouring: Colouring, members: list[int], name: str, marker: dict
) -> go.Scatter | go.Scattergl:
    kind = go.Scattergl if len(points) > WEBGL_ABOVE else go.Scatter
    return kind(
        x=[points[i].x for i in members],
        y=[points[i].y for i in members],
        mode="markers",
        name=name,
        marker={"size": 8, "opacity": 0.85, **marker},
        customdata=[_hover(points[i], colouring, colouring.values[i]) for i in members],
        hovertemplate=HOVER,
    )


def _hover(point: MapPoint, colouring: Colouring, value: str | float) -> list[str | float]:
    said = "none" if _missing(value) else f"{value:.2f}" if isinstance(value, float) else value
    return [
        point.segment_id,
        point.file,
        point.start,
        top_tags(point),
        f"{colouring.title}: {said}",
    ]


def _scale(values: list[str | float]) -> dict:
    return {
        "color": values,
        "colorscale": SCALE,
        "showscale": True,
        "colorbar": {"title": {"text": "score"}, "x": 1.02},
    }


def _missing(value: str | float) -> bool:
    return isinstance(value, float) and math.isnan(value)
