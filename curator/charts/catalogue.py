"""Charts of the catalogue (tag frequency, tempo, key, co-occurrence, tag map) as plotly figures."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
import plotly.graph_objects as go

from curator import music
from curator.api import Embedder
from curator.project import Project
from curator.registry import Registry, load_registry
from curator.tagging.runs import plugin_context
from curator.vocabulary import Tag

NO_DATA = "No data yet: tag or analyze segments (or label them in Review) to fill this chart."
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "cross", "hexagon")
FACET_LEGEND = "facets"  # legendgroup of the tag map's marker-shape legend (no points)


@dataclass
class Chart:
    """A figure and the rows it draws, so that tests and tables read the same numbers."""

    figure: go.Figure
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Cooccurrence:
    """A tag-pair heatmap: `counts[i, j]` segments have `tags[i]` and `other_tags[j]`.

    `values` is what the cells show: the counts, or their Jaccard index
    (both / either) when normalised.
    """

    figure: go.Figure
    tags: list[str]
    other_tags: list[str]
    counts: np.ndarray
    values: np.ndarray


@dataclass
class TagMap:
    """Every vocabulary tag embedded, clustered and projected to 2-D.

    labels / facets: each point's tag and facet; coordinates: (tags, 2) PCA projection;
    clusters: each point's cluster id; cluster_names: per cluster, its most central tag;
    silhouette: cosine silhouette of the clustering (None with fewer than 3 tags).
    """

    figure: go.Figure
    labels: list[str]
    facets: list[str]
    coordinates: np.ndarray
    clusters: np.ndarray
    cluster_names: list[str]
    silhouette: float | None
    embedder: str


def no_data_figure(title: str, message: str = NO_DATA) -> go.Figure:
    """An empty chart that says why it is empty, instead of blank axes."""
    figure = go.Figure()
    figure.add_annotation(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False)
    figure.update_layout(title=title, xaxis_visible=False, yaxis_visible=False)
    return figure


# -- tag frequency ------------------------------------------------------------------------------


def tag_frequency_figure(project: Project, facet: str) -> Chart:
    """Per tag, usable segments labelled by models only and confirmed by a person, stacked."""
    rows = tag_frequency_rows(project, facet)
    title = f"Tag frequency: {facet}"
    if not any(row["total"] for row in rows):
        return Chart(no_data_figure(title), rows)
    tags = [row["tag"] for row in rows]
    figure = go.Figure(
        [
            go.Bar(name="model only", x=tags, y=[row["model"] for row in rows]),
            go.Bar(name="human-confirmed", x=tags, y=[row["human"] for row in rows]),
        ]
    )
    figure.update_layout(title=title, barmode="stack", yaxis_title="segments")
    whole_counts(figure, max(row["total"] for row in rows))
    return Chart(figure, rows)


def tag_frequency_rows(project: Project, facet: str) -> list[dict[str, Any]]:
    """Counts by tag, most frequent first; vocabulary tags nobody used show as zeros."""
    rows = [
        {**row, "total": row["model"] + row["human"]}
        for row in project.catalog.tag_frequencies(facet)
    ]
    # Missing tags are what a rebalance needs to see most, so they stay on the chart.
    seen = {row["tag"] for row in rows}
    rows += [
        {"tag": tag, "model": 0, "human": 0, "total": 0}
        for tag in _vocabulary_tags(project, facet)
        if tag not in seen
    ]
    return sorted(rows, key=lambda row: (-row["total"], row["tag"]))


def busiest_facet(project: Project, facets: Sequence[str]) -> str | None:
    """The facet whose tags sit on the most segments: what a curator opening the charts
    wants to see first (on a trap catalogue, the instruments). The first facet on a tie."""
    if not facets:
        return None
    counts = {
        facet: sum(row["model"] + row["human"] for row in project.catalog.tag_frequencies(facet))
        for facet in facets
    }
    return max(facets, key=lambda facet: counts[facet])


def _vocabulary_tags(project: Project, facet: str) -> list[str]:
    vocabulary = project.vocabulary()
    if facet not in vocabulary.facet_names:
        return []
    return [tag.name for tag in vocabulary.facet(facet).tags]


# -- tempo and key ------------------------------------------------------------------------------


def tempo_histogram(project: Project, bin_width: float = 5.0) -> Chart:
    """Usable segments per tempo bin (effective values: a person's, else a confident model's)."""
    tempos = tempo_values(project)
    title = f"Tempo (BPM, bins of {bin_width:g})"
    if not tempos:
        return Chart(no_data_figure(title))
    rows = tempo_bins(tempos, bin_width)
    figure = go.Figure(
        go.Bar(
            x=[row["bpm_from"] + bin_width / 2 for row in rows],
            y=[row["segments"] for row in rows],
            width=bin_width,
            customdata=[[row["bpm_from"], row["bpm_to"]] for row in rows],
            hovertemplate="%{customdata[0]:g}-%{customdata[1]:g} BPM: %{y}<extra></extra>",
        )
    )
    figure.update_layout(title=title, xaxis_title="BPM", yaxis_title="segments", bargap=0.05)
    whole_counts(figure, max(row["segments"] for row in rows))
    return Chart(figure, rows)


def whole_counts(figure: go.Figure, largest: float) -> None:
    """Segment counts are whole: while they are few, one tick per segment, so the axis
    never reads 0.2 of a segment (plotly's default on a 0-1 range)."""
    figure.update_yaxes(tickformat=",d", dtick=1 if largest <= 5 else None)


def tempo_values(project: Project) -> list[float]:
    """Every usable segment's tempo; a value that is not a number is left out."""
    tempos = [music.tempo_bpm(text) for _, text in project.catalog.effective_values("tempo")]
    # A hand-typed "fast" (None) cannot go on a BPM axis.
    return [t for t in tempos if t is not None and math.isfinite(t)]


def tempo_bins(tempos: list[float], bin_width: float) -> list[dict[str, Any]]:
    """Counts per bin [from, to), empty bins between the slowest and fastest included."""
    counts = Counter(math.floor(t / bin_width) for t in tempos)
    first, last = min(counts), max(counts)
    return [
        {"bpm_from": i * bin_width, "bpm_to": (i + 1) * bin_width, "segments": counts.get(i, 0)}
        for i in range(first, last + 1)
    ]


def key_figure(project: Project, order: str = "fifths") -> Chart:
    """Usable segments per key and scale ("G minor"), around the circle of fifths or by count."""
    rows = key_rows(project, order)
    title = "Key and scale"
    if not rows:
        return Chart(no_data_figure(title))
    figure = go.Figure(go.Bar(x=[r["key"] for r in rows], y=[r["segments"] for r in rows]))
    figure.update_layout(title=title, yaxis_title="segments", xaxis_type="category")
    whole_counts(figure, max(r["segments"] for r in rows))
    return Chart(figure, rows)


def key_rows(project: Project, order: str = "fifths") -> list[dict[str, Any]]:
    """[{"key": "G minor", "segments": n}], in circle-of-fifths order or most frequent first."""
    scales = dict(project.catalog.effective_values("scale"))
    names = Counter(
        key_name(key, scales.get(segment))
        for segment, key in project.catalog.effective_values("key")
    )
    rows = [{"key": name, "segments": count} for name, count in names.items()]
    if order == "count":
        return sorted(rows, key=lambda row: (-row["segments"], row["key"]))
    return sorted(rows, key=lambda row: fifths_position(row["key"]))


def key_name(key: str, scale: str | None) -> str:
    """ "G" and "minor" -> "G minor"; "Eb" is spelt "D#", so one key is one bar whatever
    plugin measured it; a key that already names its scale is kept."""
    key = music.key_name(key) or key.strip()
    return f"{key} {scale.strip()}" if scale and " " not in key else key


def fifths_position(name: str) -> tuple[int, int, str]:
    """Sort key: majors by the circle of fifths, each followed by its relative minor.

    C major, A minor, G major, E minor, ...; keys that cannot be read go last.
    """
    tonic, _, scale = name.partition(" ")
    pitch = music.pitch_class(tonic)
    if pitch is None:
        return (12, 0, name)
    minor = scale.lower() == "minor"
    major_pitch = (pitch + (3 if minor else 0)) % 12
    return ((major_pitch * 7) % 12, int(minor), name)


# -- co-occurrence ------------------------------------------------------------------------------


def cooccurrence_figure(
    project: Project, facet: str, other: str | None = None, normalise: bool = False
) -> Cooccurrence:
    """Heatmap of usable segments having both tags; the diagonal of one facet is tag counts.

    normalise: show the Jaccard index (segments with both / segments with either) instead.
    """
    other = other or facet
    totals, other_totals = _tag_totals(project, facet), _tag_totals(project, other)
    counts = _pair_matrix(project, facet, other, list(totals), list(other_totals))
    values = jaccard(counts, totals, other_totals) if normalise else counts
    title = f"Co-occurrence: {facet} × {other}" + (" (Jaccard)" if normalise else "")
    figure = _heatmap(title, list(totals), list(other_totals), counts, values)
    return Cooccurrence(figure, list(totals), list(other_totals), counts, values)


def _tag_totals(project: Project, facet: str) -> dict[str, int]:
    """Segments per tag of `facet`, most frequent first (the heatmap's order)."""
    rows = tag_frequency_rows(project, facet)
    return {row["tag"]: row["total"] for row in rows if row["total"]}


def _pair_matrix(
    project: Project, facet: str, other: str, tags: list[str], other_tags: list[str]
) -> np.ndarray:
    rows, columns = {t: i for i, t in enumerate(tags)}, {t: j for j, t in enumerate(other_tags)}
    counts = np.zeros((len(tags), len(other_tags)), dtype=np.int64)
    for tag, other_tag, count in project.catalog.cooccurrence(facet, other):
        if tag in rows and other_tag in columns:
            counts[rows[tag], columns[other_tag]] = count
    return counts


def jaccard(counts: np.ndarray, totals: dict[str, int], other_totals: dict[str, int]) -> np.ndarray:
    """Both / either, per cell; 0 where neither tag occurs."""
    either = np.add.outer(list(totals.values()), list(other_totals.values())) - counts
    return np.divide(counts, either, out=np.zeros(counts.shape), where=either > 0)


def _heatmap(
    title: str, tags: list[str], other_tags: list[str], counts: np.ndarray, values: np.ndarray
) -> go.Figure:
    if not counts.size:
        return no_data_figure(title)
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=other_tags,
            y=tags,
            customdata=counts,
            colorscale="Blues",
            hovertemplate="%{y} + %{x}: %{customdata} segments (%{z:.3g})<extra></extra>",
        )
    )
    figure.update_layout(title=title, yaxis_autorange="reversed", xaxis_type="category")
    return figure


# -- tag map ------------------------------------------------------------------------------------


def load_embedder(project: Project, name: str, registry: Registry | None = None) -> Embedder:
    """The named embedder plugin, set up with the project's `[plugins.<name>]` settings."""
    registry = registry or load_registry()
    embedder = registry.embedder(name)
    embedder.setup(plugin_context(project, name, registry))
    return embedder


def tag_map(
    project: Project,
    embedder: Embedder,
    synonyms: bool = True,
    k_range: tuple[int, int] = (3, 8),
) -> TagMap:
    """Embed every vocabulary tag, cluster, project to 2-D and score the clustering.

    embedder: a set-up text Embedder (see `load_embedder`).
    synonyms: average each tag's name with its synonyms (what similarity taggers embed);
      False embeds the tag name alone.
    k_range: cluster counts tried; the one with the best cosine silhouette is kept.
    """
    tags = project.vocabulary().tags()
    labels, facets = [t.name for t in tags], [t.facet for t in tags]
    vectors = embed_tags(embedder, tags, synonyms)
    clusters, silhouette = cluster_tags(vectors, len(set(facets)), k_range)
    names = cluster_names(vectors, clusters, labels)
    coordinates = project_2d(vectors)
    points = list(zip(labels, facets, strict=True))
    figure = _tag_map_figure(points, coordinates, clusters, names, silhouette, embedder.name)
    return TagMap(figure, labels, facets, coordinates, clusters, names, silhouette, embedder.name)


def embed_tags(embedder: Embedder, tags: list[Tag], synonyms: bool = True) -> np.ndarray:
    """(tags, dim) unit rows: each tag's phrase embeddings averaged, then re-normalised."""
    groups = [list(tag.phrases) if synonyms else [tag.name] for tag in tags]
    if not groups:
        return np.zeros((0, 0), dtype=np.float32)
    # One call for every phrase keeps the embedder's batches full.
    rows = np.asarray(embedder.embed_text([p for group in groups for p in group]), np.float32)
    bounds = np.cumsum([0, *(len(group) for group in groups)])
    means = np.stack([rows[a:b].mean(axis=0) for a, b in pairwise(bounds)])
    return means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)


def cluster_tags(
    vectors: np.ndarray, n_facets: int, k_range: tuple[int, int] = (3, 8)
) -> tuple[np.ndarray, float | None]:
    """Cluster ids and the cosine silhouette of the best k in `k_range`.

    With too few tags for that range, k is the number of facets (at most tags - 1); with
    fewer than 3 tags there is nothing to score and every tag is cluster 0.
    """
    n = len(vectors)
    candidates = [k for k in range(k_range[0], k_range[1] + 1) if 2 <= k < n]
    if not candidates and min(n_facets, n - 1) >= 2:
        candidates = [min(n_facets, n - 1)]
    best: tuple[np.ndarray, float | None] = (np.zeros(n, dtype=np.int64), None)
    for k in candidates:
        clusters, score = _kmeans(vectors, k)
        # Strictly better only, so ties go to the smaller k.
        if score is not None and (best[1] is None or score > best[1]):
            best = (clusters, score)
    return best


def _kmeans(vectors: np.ndarray, k: int) -> tuple[np.ndarray, float | None]:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    # On unit vectors, Euclidean k-means follows cosine distance; a fixed seed keeps the
    # map the same on every page load.
    clusters = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(vectors)
    if not 2 <= len(set(clusters)) < len(vectors):
        return clusters, None  # identical phrases can leave clusters empty
    return clusters, float(silhouette_score(vectors, clusters, metric="cosine"))


def cluster_names(vectors: np.ndarray, clusters: np.ndarray, labels: list[str]) -> list[str]:
    """Per cluster id, the tag closest to the cluster's mean direction."""
    names = []
    for cluster in range(int(clusters.max()) + 1 if len(clusters) else 0):
        members = np.flatnonzero(clusters == cluster)
        if not len(members):
            names.append("")
            continue
        centre = vectors[members].mean(axis=0)
        names.append(labels[members[int(np.argmax(vectors[members] @ centre))]])
    return names


def project_2d(vectors: np.ndarray) -> np.ndarray:
    """(tags, 2) PCA coordinates; fewer than 2 tags sit at the origin."""
    from sklearn.decomposition import PCA

    if len(vectors) < 2:
        return np.zeros((len(vectors), 2))
    return PCA(n_components=2, random_state=0).fit_transform(vectors)


def _tag_map_figure(
    points: list[tuple[str, str]],
    coordinates: np.ndarray,
    clusters: np.ndarray,
    names: list[str],
    silhouette: float | None,
    embedder: str,
) -> go.Figure:
    title = f"Tag map ({embedder})"
    if not points:
        return no_data_figure(title, "No tags in the vocabulary yet.")
    facets = sorted({facet for _, facet in points})
    figure = go.Figure()
    for cluster, name in enumerate(names):
        members = np.flatnonzero(clusters == cluster)
        figure.add_trace(_cluster_trace(cluster, name, members, points, coordinates, facets))
    for facet in facets:
        figure.add_trace(_facet_legend(facet, facets))
    score = "n/a" if silhouette is None else f"{silhouette:.3f}"
    figure.update_layout(
        title=f"{title}, cosine silhouette {score}", xaxis_title="PC 1", yaxis_title="PC 2"
    )
    return figure


def _facet_legend(facet: str, facets: list[str]) -> go.Scatter:
    """A legend entry (no point) saying which marker shape stands for `facet`."""
    return go.Scatter(
        x=[None],
        y=[None],
        mode="markers",
        name=f"facet: {facet}",
        legendgroup=FACET_LEGEND,
        marker={"symbol": _symbol(facet, facets), "color": "grey", "size": 10},
    )


def _symbol(facet: str, facets: list[str]) -> str:
    return SYMBOLS[facets.index(facet) % len(SYMBOLS)]


def _cluster_trace(
    cluster: int,
    name: str,
    members: np.ndarray,
    points: list[tuple[str, str]],
    coordinates: np.ndarray,
    facets: list[str],
) -> go.Scatter:
    """One cluster's tags in one colour, each marker's shape saying its facet."""
    return go.Scatter(
        x=coordinates[members, 0],
        y=coordinates[members, 1],
        mode="markers+text",
        name=f"{cluster + 1}: {name}",
        text=[points[i][0] for i in members],
        textposition="top center",
        customdata=[points[i][1] for i in members],
        hovertemplate="%{text} (%{customdata})<extra></extra>",
        marker={
            "size": 10,
            "symbol": [_symbol(points[i][1], facets) for i in members],
        },
    )
