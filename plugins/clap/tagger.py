"""The CLAP tagger (cosine similarity of segment and tag embeddings) and its text embedder."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from curator.api import (
    Embedder,
    PluginContext,
    SegmentAudio,
    Tagger,
    TagResult,
    Vocabulary,
    check_precision,
    resolve_device,
)
from curator.errors import CuratorError, SettingsError

from .model import ClapBackend, hub_offline, load_backend
from .settings import DEFAULT_MODEL, ClapSettings
from .tag_text import cache_path, embed_tags, read_cached, write_cached
from .windows import cut_windows, pool


def _setup_backend(context: PluginContext) -> tuple[ClapSettings, ClapBackend]:
    settings = in_project(ClapSettings.from_mapping(context.settings), context.project_root)
    device = resolve_device(settings.device or context.device)
    check_precision(settings.precision, device, "[plugins.clap]")  # before a slow model load
    backend = load_backend(settings, hub_offline(context.offline), device)
    if settings.window_seconds > backend.max_window_seconds:
        raise SettingsError(
            f"[plugins.clap] window_seconds = {settings.window_seconds} is longer than the "
            f"model's {backend.max_window_seconds:g} s input; its processor would keep only a "
            "random crop of each window"
        )
    return settings, backend


def in_project(settings: ClapSettings, project_root: Path | None) -> ClapSettings:
    """A relative model folder is read from the project, wherever the command runs."""
    path = Path(settings.model).expanduser()
    if project_root is None or path.is_absolute() or not (project_root / path).is_dir():
        return settings
    return dataclasses.replace(settings, model=str(project_root / path))


def embedding_model_name(settings: ClapSettings) -> str:
    """`clap:<model>`, plus the windowing when it differs from the default.

    Cached embeddings are looked up by this name, so embeddings pooled differently must
    not share it.
    """
    name = f"clap:{settings.model_name}"
    default = ClapSettings()
    windowing = (settings.window_seconds, settings.hop_seconds, settings.pooling)
    if windowing != (default.window_seconds, default.hop_seconds, default.pooling):
        name += f"@w{settings.window_seconds:g}-h{settings.hop_seconds:g}-{settings.pooling}"
    return name


def model_identity(model: str) -> str:
    """What the text-embedding cache is keyed by: the hub id, or a folder and its weights' age."""
    path = Path(model).expanduser()
    if not path.is_dir():
        return model
    stamps = [f"{p.name}:{p.stat().st_mtime_ns}" for p in sorted(path.glob("*")) if p.is_file()]
    return f"{path.resolve()}|{'|'.join(stamps)}"


class ClapTagger(Tagger):
    """Scores every tag of every facet by the cosine between segment and tag embeddings."""

    name = "clap"
    version = "1"
    facets: tuple[str, ...] = ("instruments", "genres", "moods")
    sample_rate = 48000
    channels = 1
    embedding_model: str | None = f"clap:{DEFAULT_MODEL}"

    def setup(self, context: PluginContext) -> None:
        """Load the model and the tag embeddings (from the cache when they are there)."""
        if context.vocabulary is None:
            raise CuratorError("the clap tagger needs a vocabulary to score tags against")
        self.context = context
        self.settings, self.backend = _setup_backend(context)
        self._check_sample_rate()
        self.vocabulary: Vocabulary = context.vocabulary
        self.facets = context.vocabulary.facet_names
        self.embedding_model = embedding_model_name(self.settings)
        self.tag_matrix = self._load_tag_embeddings(context.cache_dir)
        self._slices = _facet_slices(context.vocabulary)

    def tag(self, batch: Sequence[SegmentAudio]) -> list[TagResult]:
        """Embed each segment (windows, pooled) and score it against every tag."""
        embeddings = self.embed_segments(batch)
        rows = self.score_matrix(embeddings).tolist()
        return [
            TagResult(self._by_facet(row), embedding=embedding)
            for row, embedding in zip(rows, embeddings, strict=True)
        ]

    def tag_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """Score cached segment embeddings (rows): one matrix product for all of them.

        Columns follow `tag_order()`; no per-segment objects are built, so re-tagging
        40,000 segments is a matter of milliseconds here.
        """
        return self.score_matrix(embeddings)

    def tag_order(self) -> list[tuple[str, str]]:
        return self.score_columns

    def score_matrix(self, embeddings: np.ndarray) -> np.ndarray:
        """(segments, tags) cosines, columns in `score_columns` order: no per-segment objects."""
        rows = np.asarray(embeddings, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.tag_matrix.shape[1]:
            raise CuratorError(
                f"{self.embedding_model} embeddings have {self.tag_matrix.shape[1]} values; "
                f"these have shape {rows.shape} (cached by another model?)"
            )
        return rows @ self.tag_matrix.T

    @property
    def score_columns(self) -> list[tuple[str, str]]:
        """(facet, tag) of each column of `score_matrix`."""
        return [(facet, name) for facet, _, _, names in self._slices for name in names]

    def embed_segments(self, batch: Sequence[SegmentAudio]) -> np.ndarray:
        """(segments, dim) pooled, L2-normalised embeddings; windows go in full batches."""
        windows = [self._windows(segment) for segment in batch]
        flat = np.concatenate(windows) if windows else np.zeros((0, 0), np.float32)
        step = self.settings.batch_windows
        parts = [self.backend.embed_windows(flat[i : i + step]) for i in range(0, len(flat), step)]
        rows = np.concatenate(parts) if parts else np.zeros((0, self.backend.dim), np.float32)
        bounds = np.cumsum([0, *(len(w) for w in windows)])
        pooled = [pool(rows[a:b], self.settings.pooling) for a, b in pairwise(bounds)]
        return np.stack(pooled) if pooled else rows

    def settings_for_run(self) -> dict[str, Any]:
        """Model, windowing, pooling and phrase template: what changes the scores."""
        settings = getattr(self, "settings", None)
        if settings is None:
            settings = ClapSettings.from_mapping(getattr(self, "context", PluginContext()).settings)
        return settings.for_run()

    def _windows(self, segment: SegmentAudio) -> np.ndarray:
        if segment.sample_rate != self.sample_rate:
            raise CuratorError(
                f"clap got segment {segment.segment_id} at {segment.sample_rate} Hz; "
                f"it needs {self.sample_rate} Hz"
            )
        mono = segment.audio.mean(axis=1) if segment.audio.ndim == 2 else segment.audio
        settings = self.settings
        return cut_windows(mono, self.sample_rate, settings.window_seconds, settings.hop_seconds)

    def _by_facet(self, row: list[float]) -> dict[str, dict[str, float]]:
        return {
            facet: dict(zip(names, row[a:b], strict=True)) for facet, a, b, names in self._slices
        }

    def _load_tag_embeddings(self, cache_dir: Path) -> np.ndarray:
        tags = self.vocabulary.tags()
        template = self.settings.phrase_template
        path = cache_path(cache_dir, model_identity(self.settings.model), self.vocabulary, template)
        cached = read_cached(path, len(tags))
        if cached is not None:
            return cached
        matrix = embed_tags(self.backend, tags, template, self.settings.text_batch)
        write_cached(path, matrix)
        return matrix

    def _check_sample_rate(self) -> None:
        if self.backend.sampling_rate != self.sample_rate:
            raise CuratorError(
                f"CLAP model {self.settings.model!r} expects {self.backend.sampling_rate} Hz "
                f"audio; this tagger feeds it {self.sample_rate} Hz"
            )


def _facet_slices(vocabulary: Vocabulary) -> list[tuple[str, int, int, list[str]]]:
    """(facet, first column, end column, tag names) in the tag matrix's column order."""
    slices, start = [], 0
    for facet in vocabulary.facets:
        end = start + len(facet.tags)
        slices.append((facet.name, start, end, [tag.name for tag in facet.tags]))
        start = end
    return slices


class ClapTextEmbedder(Embedder):
    """CLAP's text tower: phrases to L2-normalised rows in the space audio is tagged in."""

    name = "clap"
    version = "1"
    modalities = ("text",)
    sample_rate = 48000

    def setup(self, context: PluginContext) -> None:
        self.context = context
        self.settings, self.backend = _setup_backend(context)
        # The tagger's audio embeddings made with these settings: `curator search` compares
        # words with them.
        self.embedding_model = embedding_model_name(self.settings)

    def embed_text(self, phrases: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row per phrase, put into the phrase template."""
        template = self.settings.phrase_template
        texts = [template.replace("{}", phrase) for phrase in phrases]
        return self.backend.embed_text(texts, self.settings.text_batch)
