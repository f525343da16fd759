"""Where musicnn's tags sit among Curator's facets, and which Curator tags they stand for.

Every musicnn tag is scored under its own name in one facet (instruments, genres or moods),
so curators see everything the model says, near misses included. A Curator tag listed in
DEFAULT_MAP also gets a score: the highest of the musicnn tags it is mapped from. A tag is
mapped only where the meanings match; where they do not (musicnn's "drums" says nothing
about kick, snare or hi-hat; "Hip-Hop" cannot tell trap from boom bap; "synth" is neither
pad nor lead for sure), the musicnn tag stays under its own name and nothing is mapped.

Three MSD mappings lean on the catalogue being rap: in a rap beat, "soul", "jazz" and
"funk" point to "rap with soul", "jazzy chillhop" and "g-funk". Override any entry with
`[plugins.musicnn.tag_map.<facet>]` (`"tag" = ["musicnn tag", ...]`, `[]` removes it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from curator.api import Vocabulary
from curator.errors import SettingsError

FACETS = ("instruments", "genres", "moods")

# Facet -> musicnn tags, per model; together they hold each of the model's 50 tags once.
PLACEMENT: dict[str, dict[str, tuple[str, ...]]] = {
    "MTT_musicnn": {
        "instruments": (
            "guitar", "strings", "drums", "piano", "beat", "beats", "violin", "cello",
            "harpsichord", "flute", "sitar", "harp", "synth", "solo", "choir", "choral",
            "vocal", "vocals", "voice", "singing", "female", "male", "woman", "man",
            "male vocal", "female vocal", "male voice", "female voice", "no vocals",
            "no vocal", "no voice",
        ),
        "genres": (
            "classical", "classic", "techno", "electronic", "rock", "ambient", "indian",
            "opera", "pop", "new age", "dance", "country", "metal",
        ),
        "moods": ("slow", "fast", "loud", "quiet", "soft", "weird"),
    },
    "MSD_musicnn": {
        "instruments": (
            "female vocalists", "female vocalist", "male vocalists", "instrumental",
            "acoustic", "guitar",
        ),
        "genres": (
            "Hip-Hop", "rnb", "soul", "funk", "jazz", "blues", "electronic", "electronica",
            "electro", "dance", "House", "ambient", "chillout", "easy listening",
            "experimental", "pop", "indie pop", "rock", "alternative", "alternative rock",
            "indie", "indie rock", "classic rock", "hard rock", "Progressive rock", "punk",
            "metal", "heavy metal", "folk", "country", "oldies", "60s", "70s", "80s", "90s",
            "00s",
        ),
        "moods": ("chill", "Mellow", "sad", "happy", "sexy", "party", "beautiful", "catchy"),
    },
}  # fmt: skip

# Facet -> Curator tag -> the musicnn tags it is mapped from (its score is their maximum).
DEFAULT_MAP: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "MSD_musicnn": {
        "instruments": {
            "plucked guitar": ("guitar",),
            # In an instrumental catalogue a voice is nearly always a sample or a chop.
            "vocal chop": ("female vocalists", "female vocalist", "male vocalists"),
        },
        "genres": {
            "r&b": ("rnb",),
            "edm": ("dance", "House", "electro"),
            "rap with soul": ("soul",),
            "jazzy chillhop": ("jazz",),
            "g-funk": ("funk",),
        },
        "moods": {
            "chill": ("chill", "chillout", "Mellow"),
            "sad": ("sad",),
            "melancholic": ("sad",),
            "cheerful": ("happy",),
            "love": ("sexy",),
            "energetic": ("party",),
            "dreamy": ("ambient",),
        },
    },
    "MTT_musicnn": {
        "instruments": {
            "piano": ("piano",),
            "strings": ("strings", "violin", "cello"),
            "plucked guitar": ("guitar",),
            "flute": ("flute",),
            "choir": ("choir", "choral"),
            "vocal chop": (
                "vocal",
                "vocals",
                "voice",
                "singing",
                "female vocal",
                "male vocal",
                "female voice",
                "male voice",
            ),
        },
        "genres": {"edm": ("techno", "dance")},
        "moods": {"dreamy": ("ambient",)},
    },
}


@dataclass(frozen=True)
class TagLayout:
    """Turns one model's averaged tag probabilities into facet -> tag -> score."""

    tags: tuple[str, ...]  # the model's output order
    placed: dict[str, tuple[int, ...]]  # facet -> indices of the tags shown there
    mapped: dict[str, dict[str, tuple[int, ...]]]  # facet -> Curator tag -> source indices

    def scores(self, probabilities: np.ndarray) -> dict[str, dict[str, float]]:
        """Scores per facet; a Curator tag named like a musicnn tag holds the mapped score."""
        result = {}
        for facet in FACETS:
            own = {self.tags[i]: float(probabilities[i]) for i in self.placed[facet]}
            mapped = {
                tag: float(probabilities[list(ix)].max()) for tag, ix in self.mapped[facet].items()
            }
            result[facet] = own | mapped
        return result

    def mapping_by_name(self) -> dict[str, dict[str, list[str]]]:
        """The mapping in use, by tag name (recorded with each run)."""
        return {
            facet: {tag: [self.tags[i] for i in ix] for tag, ix in by_tag.items()}
            for facet, by_tag in self.mapped.items()
        }


def build_layout(
    model: str,
    tags: Sequence[str],
    overrides: Mapping[str, Any],
    vocabulary: Vocabulary | None,
) -> TagLayout:
    """The layout for `model`'s tags, with `overrides` applied and limited to `vocabulary`."""
    index = {tag: i for i, tag in enumerate(tags)}
    placed = {
        facet: tuple(index[t] for t in PLACEMENT[model][facet] if t in index) for facet in FACETS
    }
    mapping = merged_map(DEFAULT_MAP[model], overrides, index)
    return TagLayout(tuple(tags), placed, mapped_indices(mapping, index, vocabulary))


def mapped_indices(
    mapping: Mapping[str, Mapping[str, Sequence[str]]],
    index: Mapping[str, int],
    vocabulary: Vocabulary | None,
) -> dict[str, dict[str, tuple[int, ...]]]:
    """Facet -> Curator tag -> source positions, for the non-empty entries in the vocabulary."""
    return {
        facet: {
            tag: tuple(index[s] for s in sources)
            for tag, sources in mapping.get(facet, {}).items()
            if sources and in_vocabulary(vocabulary, facet, tag)
        }
        for facet in FACETS
    }


def merged_map(
    defaults: Mapping[str, Mapping[str, Sequence[str]]],
    overrides: Mapping[str, Any],
    index: Mapping[str, int],
) -> dict[str, dict[str, tuple[str, ...]]]:
    """The defaults with each overridden Curator tag replaced; unknown names are errors."""
    if not isinstance(overrides, Mapping):
        raise SettingsError("[plugins.musicnn] tag_map must be a table of facets")
    merged = {
        facet: {tag: tuple(s) for tag, s in defaults.get(facet, {}).items()} for facet in FACETS
    }
    for facet, by_tag in overrides.items():
        check_facet(facet, by_tag)
        for tag, sources in by_tag.items():
            merged[facet][tag] = checked_sources(facet, tag, sources, index)
    return merged


def check_facet(facet: str, by_tag: Any) -> None:
    if facet not in FACETS:
        raise SettingsError(
            f"[plugins.musicnn.tag_map] has no facet {facet!r} (facets: {', '.join(FACETS)})"
        )
    if not isinstance(by_tag, Mapping):
        raise SettingsError(f"[plugins.musicnn.tag_map.{facet}] must be a table of tag = [...]")


def checked_sources(
    facet: str, tag: str, sources: Any, index: Mapping[str, int]
) -> tuple[str, ...]:
    where = f"[plugins.musicnn.tag_map.{facet}] {tag!r}"
    if not isinstance(sources, list | tuple) or not all(isinstance(s, str) for s in sources):
        raise SettingsError(f"{where} must be a list of musicnn tag names")
    unknown = [s for s in sources if s not in index]
    if unknown:
        known = ", ".join(sorted(index))
        raise SettingsError(f"{where}: musicnn has no tag {unknown[0]!r} (it has: {known})")
    return tuple(sources)


def in_vocabulary(vocabulary: Vocabulary | None, facet: str, tag: str) -> bool:
    """Mapped tags are only scored when the project's vocabulary has them (or has none)."""
    if vocabulary is None:
        return True
    if facet not in vocabulary.facet_names:
        return False
    return vocabulary.facet(facet).tag(tag) is not None
