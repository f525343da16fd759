"""Learned tagger plugin: per-tag probes trained on curators' labels over cached embeddings."""

from __future__ import annotations

from collections.abc import Callable

from curator import hookimpl
from curator.api import Tagger

from .settings import LearnedSettings
from .tagger import LearnedTagger

__all__ = ["LearnedSettings", "LearnedTagger", "register_taggers"]


@hookimpl
def register_taggers(register: Callable[[Tagger], None]) -> None:
    """Contribute the tagger; cheap, since the probes load in `setup`."""
    register(LearnedTagger())
