"""musicnn tagger plugin: pretrained MagnaTagATune / Million Song Dataset tags, run offline."""

from __future__ import annotations

from collections.abc import Callable

from curator import hookimpl
from curator.api import Tagger

from .settings import MusicnnSettings
from .tagger import MusicnnTagger

__all__ = ["MusicnnSettings", "MusicnnTagger", "register_taggers"]


@hookimpl
def register_taggers(register: Callable[[Tagger], None]) -> None:
    register(MusicnnTagger())
