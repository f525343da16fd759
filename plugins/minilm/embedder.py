"""The `minilm` Embedder: tag phrases to sentence embeddings, for tag maps and similarity."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from curator.api import Embedder, PluginContext

from .model import MiniLMBackend, load_backend
from .settings import MiniLMSettings


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (384 dimensions), mean-pooled and L2-normalised, offline."""

    name = "minilm"
    version = "1"
    modalities = ("text",)

    def __init__(self) -> None:
        self.backend: MiniLMBackend | None = None
        self._loaded_for: tuple[MiniLMSettings, str] | None = None

    def setup(self, context: PluginContext) -> None:
        """Load the model; setting up again with the same settings keeps the loaded one."""
        self.context = context
        self.settings = MiniLMSettings.from_mapping(context.settings)
        wanted = (self.settings, context.device)
        if self.backend is None or self._loaded_for != wanted:
            self.backend = load_backend(self.settings, context.device)
            self._loaded_for = wanted

    def embed_text(self, phrases: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row per phrase; sets up with defaults when not yet done."""
        if self.backend is None:
            # The model needs no project settings, so a bare embedder is still usable.
            self.setup(getattr(self, "context", PluginContext()))
        assert self.backend is not None
        return self.backend.embed(phrases, self.settings.batch_size)
