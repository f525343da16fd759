"""The trap tagger's training corpus: short beats rendered from MIDI with Debian's soundfonts
and synthesised sounds, labelled with the instruments audible in each (see docs/trap-tagger.md).
"""

from __future__ import annotations

from .build import CorpusClip, CorpusSettings, make_corpus, read_corpus, tag_counts

__all__ = ["CorpusClip", "CorpusSettings", "make_corpus", "read_corpus", "tag_counts"]
