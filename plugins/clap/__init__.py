"""CLAP tagger plugin: scores segments against tag phrases by audio-text embedding similarity."""

from __future__ import annotations

from collections.abc import Callable

from curator import hookimpl
from curator.api import Embedder, Tagger

from .convert import convert_laion_checkpoint
from .model import ClapModelError, load_backend
from .settings import ClapSettings
from .tagger import ClapTagger, ClapTextEmbedder
from .windows import window_starts

__all__ = [
    "ClapModelError",
    "ClapSettings",
    "ClapTagger",
    "ClapTextEmbedder",
    "convert_laion_checkpoint",
    "load_backend",
    "register_embedders",
    "register_taggers",
    "window_starts",
]


@hookimpl
def register_taggers(register: Callable[[Tagger], None]) -> None:
    register(ClapTagger())


@hookimpl
def register_embedders(register: Callable[[Embedder], None]) -> None:
    register(ClapTextEmbedder())
