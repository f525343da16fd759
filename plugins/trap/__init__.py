"""trap tagger plugin: the drums, basses and instruments of trap beats, from a small CNN
trained on rendered stems (see docs/trap-tagger.md)."""

from __future__ import annotations
