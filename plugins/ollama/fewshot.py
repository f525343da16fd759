"""The few-shot conversation the Ollama writer sends: instructions, examples, the segment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from curator.api import Vocabulary, tag_lists, tag_phrases

SYSTEM = (
    "You write training prompts for a text-to-music model: one sentence describing an "
    "instrumental beat. Name every tag you are given, either as written or as one of the "
    "alternatives listed after it. Write the tempo as 'N BPM' and the key exactly as given. "
    "Never mention a tempo, key or scale that is not given. Answer with the sentence only: "
    "one line, no quotes, no preface, at most {max_chars} characters."
)

# Metadata and the answer a careful writer gives; the seed project's own prompt first.
EXAMPLES: tuple[tuple[dict[str, Any], str], ...] = (
    (
        {
            "genres_tags": ["rap with soul"],
            "moods_tags": ["melancholic", "love"],
            "instruments_tags": ["plucked guitar", "synth bells", "movie sample"],
            "tempo": 109.0,
            "key": "G",
            "scale": "minor",
        },
        "A melancholic and love-inspired rap with soul beat at 109 BPM in G minor, using "
        "plucked guitar, synth bells, and movie sample.",
    ),
    (
        {
            "genres_tags": ["trap"],
            "moods_tags": ["dark"],
            "instruments_tags": ["808", "hi-hat rolls", "synth pad"],
            "tempo": 140.0,
            "key": None,
            "scale": None,
        },
        "Sinister trap beat at 140 BPM driven by a booming 808, rolling hi-hats and an "
        "ambient pad.",
    ),
    (
        {
            "genres_tags": ["boom bap"],
            "moods_tags": ["nostalgic", "chill"],
            "instruments_tags": ["piano", "kick", "snare"],
            "tempo": None,
            "key": "D",
            "scale": "minor",
        },
        "Laid-back, nostalgic boom bap instrumental in D minor with dusty piano chords, a "
        "punchy kick and a crisp snare.",
    ),
)


def describe(metadata: Mapping[str, Any], vocabulary: Vocabulary | None) -> str:
    """The segment's tags (with their synonyms), tempo and key, as the model reads them."""
    lines = []
    for facet, tags in tag_lists(metadata).items():
        named = []
        for tag in tags:
            synonyms = tag_phrases(vocabulary, facet, tag)[1:]
            named.append(f"{tag} (or: {', '.join(synonyms)})" if synonyms else tag)
        lines.append(f"{facet}: {'; '.join(named)}")
    tempo = metadata.get("tempo")
    lines.append(f"tempo: {round(float(tempo))} BPM" if tempo is not None else "tempo: not given")
    key, scale = metadata.get("key"), metadata.get("scale")
    if key:
        lines.append(f"key: {key} {scale or ''}".rstrip())
    else:
        lines.append(f"key: not given{f' ({scale} scale)' if scale else ''}")
    return "\n".join(lines)


def messages(
    metadata: Mapping[str, Any], vocabulary: Vocabulary | None, max_chars: int
) -> list[dict[str, str]]:
    """System instructions, the examples as earlier turns, then this segment."""
    conversation = [{"role": "system", "content": SYSTEM.format(max_chars=max_chars)}]
    for example, answer in EXAMPLES:
        conversation.append({"role": "user", "content": describe(example, vocabulary)})
        conversation.append({"role": "assistant", "content": answer})
    conversation.append({"role": "user", "content": describe(metadata, vocabulary)})
    return conversation
