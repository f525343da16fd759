"""The instruments the trap tagger learns: the default vocabulary's, in model output order."""

from __future__ import annotations

FACET = "instruments"

# Output order of the model; a weights file records its own list, and this is the default.
TAGS: tuple[str, ...] = (
    "808",
    "deep sub",
    "plucked bass",
    "kick",
    "snare",
    "clap",
    "hi-hat",
    "hi-hat rolls",
    "open hat",
    "synth bells",
    "plucked guitar",
    "piano",
    "rhodes",
    "strings",
    "synth pad",
    "synth lead",
    "flute",
    "choir",
    "vocal chop",
    "movie sample",
    "brass",
    "organ",
)

# The tags the accuracy targets are measured on: what CLAP got wrong for the producer.
DRUM_AND_BASS: tuple[str, ...] = (
    "808",
    "deep sub",
    "kick",
    "snare",
    "clap",
    "hi-hat",
    "hi-hat rolls",
    "open hat",
)
