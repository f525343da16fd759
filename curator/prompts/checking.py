"""Checking a prompt: text that can be a prompt at all, faithful to its segment's metadata.

Faithful means it names no tempo, key or scale the metadata lacks or contradicts (read
through curator.music, as everywhere else), and names every tag, by its name or a synonym.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from curator.music import (
    key_mentions,
    key_name,
    mentions_tempo,
    scale_mentions,
    scale_name,
    tempo_mentions,
)
from curator.vocabulary import Vocabulary

# Unicode's control characters (category Cc) other than line breaks, which are named apart.
_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def text_problems(text: str, max_chars: int | None = None) -> list[str]:
    """What makes `text` unusable as a prompt at all: empty, several lines, control
    characters, too long."""
    problems = []
    if not text.strip():
        problems.append("empty")
    if "\n" in text or "\r" in text:
        problems.append("more than one line")
    controls = sorted({repr(c) for c in _CONTROL.findall(text)})
    if controls:
        problems.append(f"control character(s) {', '.join(controls)}")
    if max_chars is not None and len(text) > max_chars:
        problems.append(f"{len(text)} characters, more than {max_chars}")
    return problems


def prompt_problems(
    text: str,
    metadata: Mapping[str, Any],
    vocabulary: Vocabulary | None = None,
    max_chars: int | None = None,
    require_tags: bool = True,
) -> list[str]:
    """Every reason `text` is not a faithful prompt for `metadata` (empty list: it is).

    Checks the text itself, that no tempo, key or scale contradicts (or is absent from)
    the metadata, and (require_tags) that every tag is named, by its name or a synonym.
    """
    problems = text_problems(text, max_chars)
    problems += tempo_problems(text, metadata.get("tempo"))
    problems += key_problems(text, metadata.get("key"), metadata.get("scale"))
    if require_tags:
        missing = missing_tags(text, metadata, vocabulary)
        if missing:
            problems.append(f"does not mention {', '.join(missing)}")
    return problems


def tag_lists(metadata: Mapping[str, Any]) -> dict[str, list[str]]:
    """facet -> its tags, from the metadata's `<facet>_tags` lists."""
    return {
        key.removesuffix("_tags"): list(value)
        for key, value in metadata.items()
        if key.endswith("_tags") and value
    }


def tag_phrases(vocabulary: Vocabulary | None, facet: str, tag: str) -> tuple[str, ...]:
    """The tag's name and synonyms; just the name for a tag the vocabulary lacks."""
    if vocabulary is not None and facet in vocabulary.facet_names:
        known = vocabulary.facet(facet).tag(tag)
        if known is not None:
            return known.phrases
    return (tag,)


def missing_tags(
    text: str, metadata: Mapping[str, Any], vocabulary: Vocabulary | None
) -> list[str]:
    """The metadata's tags that `text` names neither by name nor by any synonym."""
    said = _normalized(text)
    return [
        tag
        for facet, tags in tag_lists(metadata).items()
        for tag in tags
        if not any(_mentions(said, p) for p in tag_phrases(vocabulary, facet, tag))
    ]


def _normalized(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9&]+", " ", text.lower()).split())


def _mentions(normalized_text: str, phrase: str) -> bool:
    # "hi-hat" matches "hi hat", "hihat" and "hi-hats"; words never match inside others.
    words = _normalized(phrase).split()
    if not words:
        return False
    body = "[ ]?".join(re.escape(w) for w in words)
    return re.search(rf"(?<![a-z0-9&]){body}(?:s|es)?(?![a-z0-9&])", normalized_text) is not None


def tempo_problems(text: str, tempo: Any) -> list[str]:
    """A BPM the text names that the metadata lacks or that differs by more than 1."""
    if tempo is None:
        return ["names a tempo the metadata does not have"] if mentions_tempo(text) else []
    wrong = [n for n in tempo_mentions(text) if abs(n - float(tempo)) > 1.0]
    return [f"names {n:g} BPM, the metadata says {float(tempo):g}" for n in wrong]


def key_problems(text: str, key: Any, scale: Any) -> list[str]:
    """A key or scale the text names that the metadata lacks or that differs from it."""
    named = key_mentions(text)
    scales = scale_mentions(text) + [m.scale for m in named if m.scale]
    problems = []
    for mention in named:
        if key is None:
            problems.append(f"names the key {mention.spelt}, the metadata has none")
        elif mention.key != key_name(str(key)):
            problems.append(f"names the key {mention.spelt}, the metadata says {key}")
    for named_scale in scales:
        if scale is None:
            problems.append(f"names a {named_scale} scale, the metadata has none")
        elif named_scale != scale_name(str(scale)):
            problems.append(f"names a {named_scale} scale, the metadata says {scale}")
    return problems
