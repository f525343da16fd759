"""The learned tagger: calibrated per-tag probes over another plugin's cached embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from curator.api import (
    LearnedModel,
    PluginContext,
    SegmentAudio,
    Tagger,
    TagResult,
    load_learned_model,
)
from curator.errors import CuratorError

from .settings import LearnedSettings


class LearnedTagger(Tagger):
    """Tags with the probes `curator learn` trained on human-verified labels.

    Its `version` is the hash of the training data, so each run names the labels and
    embeddings it learned from. It scores cached embeddings of the embedding model it was
    trained on (`curator tag --plugin learned --from-cache`); on audio without them it runs
    the plugin that makes those embeddings first, which must be set up as when it trained.
    """

    name = "learned"
    version = "untrained"
    facets: tuple[str, ...] = ()

    def setup(self, context: PluginContext) -> None:
        """Load the current (or pinned) trained version from the project's models folder."""
        super().setup(context)
        self.settings = LearnedSettings.from_mapping(context.settings)
        if context.project_root is None:
            raise CuratorError("the learned tagger needs a project (its probes live there)")
        self.model: LearnedModel = load_learned_model(
            context.project_root, self.settings.version or None
        )
        self.version = self.model.version
        self.embedding_model = self.model.embedding
        self.facets = tuple(dict.fromkeys(f for f, _ in self.model.pairs))
        self.source: Tagger | None = None
        self._use_source_audio_format()

    def tag_order(self) -> list[tuple[str, str]]:
        return list(self.model.pairs)

    def tag_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """Calibrated P(tag present) per row, columns in `tag_order()`."""
        return self.model.probabilities(np.asarray(embeddings, dtype=np.float32))

    def tag(self, batch: Sequence[SegmentAudio]) -> list[TagResult]:
        """Embed the audio with the source plugin, then score the embeddings."""
        if not batch:
            return []
        embedded = self._source().tag(batch)
        rows = [r.embedding for r in embedded]
        if any(row is None for row in rows):
            raise CuratorError(f"{self.model.source_plugin} returned no embedding")
        matrix = np.stack([np.asarray(r, np.float32) for r in rows])
        scores = self.tag_embeddings(matrix)
        return [
            TagResult(_by_facet(self.model.pairs, row), embedding)
            for row, embedding in zip(scores, matrix, strict=True)
        ]

    def label_threshold(self, facet: str, tag: str) -> float:
        chosen = self.settings.threshold
        return chosen if chosen >= 0 else self.model.threshold

    def label_top_k(self, facet: str) -> int:
        # Each probe is a separate calibrated yes/no, so every tag may apply at once.
        return sum(1 for f, _ in self.model.pairs if f == facet)

    def settings_for_run(self) -> dict[str, Any]:
        return {
            "embedding": self.model.embedding,
            "threshold": self.label_threshold("", ""),
        }

    def _use_source_audio_format(self) -> None:
        # Without a host (set up by hand) the defaults stay: only tagging from cache works.
        name, plugins = self.model.source_plugin, self.context.plugins
        if name and plugins and name in plugins.names("taggers"):
            source = plugins.tagger(name, set_up=False)
            self.sample_rate, self.channels = source.sample_rate, source.channels

    def _source(self) -> Tagger:
        """The plugin that makes the embeddings, set up as the project configures it."""
        if self.source is not None:
            return self.source
        name, plugins = self.model.source_plugin, self.context.plugins
        if not name:
            raise CuratorError(
                f"the learned tagger does not know which plugin makes {self.model.embedding}; "
                "tag from cache instead (`curator tag --plugin learned --from-cache`)"
            )
        if plugins is None:
            raise CuratorError(
                f"the learned tagger needs {name} (which makes {self.model.embedding}) to tag "
                "audio, and was set up without Curator's plugins: run it with `curator tag "
                "--plugin learned`, or tag from cache (`--from-cache`)"
            )
        source = plugins.tagger(name)
        if source.embedding_model != self.model.embedding:
            raise CuratorError(
                f"{name} now caches {source.embedding_model}, but the learned tagger was "
                f"trained on {self.model.embedding}: restore its settings or run `curator learn`"
            )
        self.source = source
        return source


def _by_facet(pairs: Sequence[tuple[str, str]], row: np.ndarray) -> dict[str, dict[str, float]]:
    scores: dict[str, dict[str, float]] = {}
    for (facet, tag), value in zip(pairs, row, strict=True):
        scores.setdefault(facet, {})[tag] = float(value)
    return scores
