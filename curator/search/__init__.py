"""Search the catalogue by words (`search_text`) and by sound (`similar_to`).

Words go through the text tower of an embedder whose text rows share the space of cached
audio embeddings (CLAP), when one is installed, loads and has embeddings cached; otherwise
they are matched to vocabulary tags and synonyms, and segments ranked by those tags' scores
and labels. Sound similarity is the cosine between cached audio embeddings. Both search an
index cached under the project's `search/` folder and brought up to date on each call.
Only usable segments are returned (track present, neither silent nor excluded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from curator.api import Embedder
from curator.errors import CuratorError
from curator.project import Project
from curator.search.cache import CachedIndex, open_index
from curator.search.words import rank_by_tags
from curator.storage.search import (
    hit_details,
    models_with_embedding,
    segment_track,
    usable_segment_ids,
)
from curator.storage.suspects import embedding_models, embedding_plugin

__all__ = [
    "Hit",
    "SearchResult",
    "TextTower",
    "describe_hits",
    "search_text",
    "similar_to",
    "text_tower",
]


@dataclass(frozen=True)
class Hit:
    """One segment found, and its score (higher is closer; cosine for embeddings)."""

    segment_id: str
    score: float


@dataclass(frozen=True)
class SearchResult:
    """The hits, best first, and in words how the ranking was made."""

    hits: list[Hit]
    how: str


def search_text(
    project: Project,
    text: str,
    *,
    limit: int = 20,
    model: str | None = None,
    index: str | None = None,
    registry: Any = None,
) -> SearchResult:
    """The usable segments that best match `text`, at most `limit`.

    model: the cached embeddings to search through their text tower (default: the most
      cached one that has a text tower; none: tags). index: "auto", "exact" or
      "approximate" (default: `[search] index`). registry: the plugins (default: installed).
    """
    text = text.strip()
    if not text:
        raise CuratorError("nothing to search for: give some words, e.g. `curator search 808`")
    tower = text_tower(project, model, registry)
    if tower.embedder is None or tower.model is None:
        if model:
            raise CuratorError(
                f"no installed embedder has a text tower for {model!r}"
                + (f" ({tower.note})" if tower.note else "")
                + "; leave out --model to search by tags"
            )
        ranking = rank_by_tags(project, text)
        best = sorted(ranking.scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
        how = ranking.how() + (f"; {tower.note}" if tower.note else "")
        return SearchResult([Hit(s, round(v, 6)) for s, v in best], how)
    query = np.asarray(tower.embedder.embed_text([text]), dtype=np.float32)[0]
    cached = _open(project, tower.model, index)
    hits = _nearest(cached, query, limit, usable_segment_ids(project.catalog))
    kind = cached.index.kind
    return SearchResult(hits, f"{tower.embedder.name} text tower ({tower.model}, {kind} index)")


def similar_to(
    project: Project,
    segment_id: str,
    *,
    limit: int = 20,
    model: str | None = None,
    index: str | None = None,
) -> SearchResult:
    """The usable segments whose audio embeddings are closest to `segment_id`'s.

    The segment itself and the other segments of its track (the same beat) are left out.
    model: which cached embeddings (default: the most cached one that has this segment).
    """
    track = segment_track(project.catalog, segment_id)
    if track is None:
        raise CuratorError(f"no segment {segment_id!r} in the catalogue")
    models = models_with_embedding(project.catalog, segment_id)
    if model is None and not models:
        raise CuratorError(
            f"segment {segment_id} has no cached audio embedding yet: "
            "run `curator tag --plugin trap` first"
        )
    chosen = model or models[0]
    if chosen not in models:
        cached_for = ", ".join(models) or "none"
        raise CuratorError(
            f"segment {segment_id} has no cached embedding of {chosen!r} (it has: {cached_for})"
        )
    cached = _open(project, chosen, index)
    query = cached.vector(segment_id)
    if query is None:  # the catalogue changed between the two reads
        raise CuratorError(f"segment {segment_id} has no cached embedding of {chosen!r}")
    usable = usable_segment_ids(project.catalog) - set(track[1])
    hits = _nearest(cached, query, limit, usable)
    how = (
        f"sound: cosine of {chosen} embeddings ({cached.index.kind} index; "
        "the segment's own track left out)"
    )
    return SearchResult(hits, how)


def describe_hits(project: Project, hits: list[Hit]) -> list[dict[str, Any]]:
    """Each hit with its track file, start, duration and present tags (for tables)."""
    details = hit_details(project.catalog, [h.segment_id for h in hits])
    return [
        {"segment_id": h.segment_id, "score": h.score, **details.get(h.segment_id, {})}
        for h in hits
    ]


@dataclass(frozen=True)
class TextTower:
    """A set-up text embedder and the cached embedding model its rows compare with; or,
    when there is none, why (`note`, empty when nothing could have one)."""

    embedder: Embedder | None
    model: str | None
    note: str = ""


def text_tower(project: Project, model: str | None = None, registry: Any = None) -> TextTower:
    """The text tower to search `model` (default: each cached model, the most cached first).

    The plugin that cached a model must also register a text embedder that, set up with the
    project's settings, names that model as its `embedding_model`.
    """
    candidates = [model] if model else [str(m["model"]) for m in embedding_models(project.catalog)]
    notes = []
    for candidate in candidates:
        plugin = embedding_plugin(project.catalog, candidate)
        embedder, note = _embedder(project, plugin, registry) if plugin else (None, "")
        if embedder is not None and getattr(embedder, "embedding_model", None) == candidate:
            return TextTower(embedder, candidate)
        if embedder is not None:
            made = embedder.embedding_model
            note = f"{plugin}'s text tower is set up for {made}, not {candidate}"
        notes += [note] if note else []
    return TextTower(None, None, "; ".join(notes))


# Set-up embedders (or why they did not load) by project, plugin and its settings: loading
# a text tower takes seconds, and the app searches again and again.
_EMBEDDERS: dict[tuple[str, str, str], tuple[Embedder | None, str]] = {}


def _embedder(project: Project, plugin: str, registry: Any) -> tuple[Embedder | None, str]:
    from curator.registry import load_registry
    from curator.tagging.runs import plugin_context

    settings = repr(sorted(project.settings.plugins.get(plugin, {}).items()))
    key = (str(project.root), plugin, settings)
    if key not in _EMBEDDERS or registry is not None:
        registry = registry or load_registry()
        found: tuple[Embedder | None, str] = (None, "")
        if plugin in registry.names("embedders"):
            embedder = registry.embedder(plugin)
            if "text" in embedder.modalities:
                found = _set_up(embedder, plugin_context(project, plugin, registry))
        _EMBEDDERS[key] = found
    return _EMBEDDERS[key]


def _set_up(embedder: Embedder, context: Any) -> tuple[Embedder | None, str]:
    try:
        embedder.setup(context)
    except Exception as exc:  # any plugin failure: search falls back to tags and says why
        return None, f"{embedder.name}'s text tower did not load ({exc})"
    return embedder, ""


def _open(project: Project, model: str, index: str | None) -> CachedIndex:
    settings = project.settings.search
    return open_index(project, model, index or settings.index, settings.approximate_from)


def _nearest(cached: CachedIndex, query: np.ndarray, limit: int, allowed: set[str]) -> list[Hit]:
    """The `limit` best rows among `allowed` segments: asks the index for more until enough
    allowed ones come back (excluded and silent segments stay in the index)."""
    from curator.search.index import normalised

    query = normalised(query)
    wanted = min(len(cached.ids), limit + 16)
    while True:
        scores, positions = cached.index.search(query, wanted)
        hits = [
            Hit(cached.ids[p], round(float(s), 6))
            for s, p in zip(scores[0], positions[0], strict=True)
            if cached.ids[p] in allowed
        ]
        if len(hits) >= limit or wanted >= len(cached.ids):
            return hits[:limit]
        wanted = min(len(cached.ids), wanted * 4)
