"""MiniLM plugin: an offline text embedder (all-MiniLM-L6-v2) for tag phrases and tag maps."""

from __future__ import annotations

from collections.abc import Callable

from curator import hookimpl
from curator.api import Embedder

from .embedder import MiniLMEmbedder
from .model import MiniLMModelError, bundled_model_path
from .settings import MiniLMSettings

__all__ = [
    "MiniLMEmbedder",
    "MiniLMModelError",
    "MiniLMSettings",
    "bundled_model_path",
    "register_embedders",
]


@hookimpl
def register_embedders(register: Callable[[Embedder], None]) -> None:
    """Contribute the embedder; cheap, since the model loads in `setup`."""
    register(MiniLMEmbedder())
