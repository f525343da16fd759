"""The trap tagger: a small CNN over log-mel windows, max over a segment's windows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from curator.api import (
    PluginContext,
    SegmentAudio,
    Tagger,
    TagResult,
    check_precision,
    resolve_device,
)
from curator.errors import CuratorError

from .features import cut_windows, mono
from .model import TrapWeights, load_weights, segment_outputs, shipped_weights
from .settings import TrapSettings
from .tags import FACET


class TrapTagger(Tagger):
    """Instruments of trap, rap and R&B beats: 808, deep sub, kick, snare, clap, hats, ...

    Trained on stems rendered from MIDI with Debian's soundfonts and synthesised 808s, claps
    and hats (docs/trap-tagger.md). Its version is the weights file's hash. What it caches
    per segment is its pooled embedding averaged over the segment's windows followed by
    the tag probabilities, so re-tagging from cache, the suspicion queue and the learned
    tagger (which starts from those probabilities) need no audio.
    """

    name = "trap"
    version = "untrained"
    facets = (FACET,)
    sample_rate = 22050
    channels = 1
    embedding_model = "trap"

    def setup(self, context: PluginContext) -> None:
        """Load the weights (shipped, or `[plugins.trap] weights`) onto the run's device."""
        super().setup(context)
        self.settings = TrapSettings.from_mapping(context.settings)
        path = self.settings.weights_path(context.project_root) or shipped_weights()
        self.device = resolve_device(self.settings.device or context.device)
        check_precision(self.settings.precision, self.device, "[plugins.trap]")
        self.weights: TrapWeights = load_weights(path, self.device)
        if self.weights.mel.sample_rate != self.sample_rate:
            self.sample_rate = self.weights.mel.sample_rate
        self.version = self.weights.version
        self.embedding_model = f"trap-{self.weights.version}"
        unknown = sorted(set(self.settings.thresholds) - set(self.weights.tags))
        if unknown:
            raise CuratorError(
                f"[plugins.trap] thresholds name tags this model does not know: {unknown}; "
                f"it knows {', '.join(self.weights.tags)}"
            )

    def tag_order(self) -> list[tuple[str, str]]:
        """The model's tags that the project's vocabulary has (all of them without one)."""
        return [(FACET, tag) for tag in self.known_tags()]

    def known_tags(self) -> list[str]:
        vocabulary = self.context.vocabulary
        if vocabulary is None or FACET not in vocabulary.facet_names:
            return list(self.weights.tags)
        wanted = {tag.name for tag in vocabulary.facet(FACET).tags}
        return [tag for tag in self.weights.tags if tag in wanted]

    def unlearned_tags(self) -> list[str]:
        """The vocabulary's instrument tags this model cannot score (shown by `curator plugins`)."""
        vocabulary = self.context.vocabulary
        if vocabulary is None or FACET not in vocabulary.facet_names:
            return []
        return [t.name for t in vocabulary.facet(FACET).tags if t.name not in self.weights.tags]

    def tag(self, batch: Sequence[SegmentAudio]) -> list[TagResult]:
        if not batch:
            return []
        return self.tag_embeddings(np.stack([self.embedding(segment) for segment in batch]))

    def tag_embeddings(self, embeddings: np.ndarray) -> list[TagResult]:
        """Scores from cached rows: their last values are the tag probabilities."""
        count = len(self.weights.tags)
        keep = set(self.known_tags())
        results = []
        for row in np.asarray(embeddings, dtype=np.float32):
            probabilities = row[-count:]
            scores = {
                tag: float(p)
                for tag, p in zip(self.weights.tags, probabilities, strict=True)
                if tag in keep
            }
            results.append(TagResult({FACET: scores}, row))
        return results

    def embedding(self, segment: SegmentAudio) -> np.ndarray:
        """The mean window embedding, then each tag's highest probability over the windows."""
        if segment.sample_rate != self.sample_rate:
            raise ValueError(
                f"trap needs {self.sample_rate} Hz audio, got {segment.sample_rate} Hz "
                f"for segment {segment.segment_id}"
            )
        windows = cut_windows(mono(segment.audio), self.window_samples())
        pooled, probabilities = segment_outputs(
            self.weights.net,
            windows,
            self.settings.batch_windows,
            self.device,
            self.settings.precision,
        )
        return np.concatenate([pooled, probabilities])

    def score_columns(self) -> dict[tuple[str, str], int]:
        """Each tag's probability in the cached row: after the pooled embedding, in
        weights.tags order (the learned tagger's prior)."""
        pooled = self.weights.net.head.in_features
        return {(FACET, tag): pooled + k for k, tag in enumerate(self.weights.tags)}

    def window_samples(self) -> int:
        return round(self.weights.window_seconds * self.sample_rate)

    def label_threshold(self, facet: str, tag: str) -> float:
        chosen = self.settings.thresholds.get(tag)
        return float(chosen) if chosen is not None else self.weights.thresholds.get(tag, 0.5)

    def label_top_k(self, facet: str) -> int:
        return self.settings.top_k or len(self.weights.tags)

    def settings_for_run(self) -> dict[str, Any]:
        """The weights, thresholds and (when not fp32) precision: what decides its labels."""
        settings = {
            "weights": self.weights.path.name if self.weights.path else "",
            "thresholds": {t: self.label_threshold(FACET, t) for t in self.known_tags()},
            "top_k": self.label_top_k(FACET),
        }
        if self.settings.precision != "fp32":  # runs made before precision existed stay done
            settings["precision"] = self.settings.precision
        return settings
