"""trap tagger plugin: the drums, basses and instruments of trap beats, from a small CNN
trained on rendered stems; its weights ship in weights/ (see docs/trap-tagger.md)."""

from __future__ import annotations

from collections.abc import Callable

from curator import hookimpl
from curator.api import Tagger

from .settings import TrapSettings
from .tagger import TrapTagger

__all__ = ["TrapSettings", "TrapTagger", "register_taggers"]


@hookimpl
def register_taggers(register: Callable[[Tagger], None]) -> None:
    register(TrapTagger())
