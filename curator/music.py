"""Note names, pitch classes, and how keys, scales and tempos are read: one home for these rules.

The rules, for a value (a label, a metadata record, an analyzer's measurement) and for text
(a prompt):

- A key is a letter A-G with an optional accidental spelt "#", "♯", "b", "♭", "sharp" or
  "flat" ("F#", "F♯", "f sharp", "F-sharp", "Gb", "G♭", "g flat"). Every key is normalised
  to the sharps spelling of NOTE_NAMES, the spelling the demo, the vocabularies and the
  review page use: "Gb" and "F sharp" are both "F#", Essentia's "Eb" is "D#".
- A scale is "major" or "minor" in any case, or "maj" / "min".
- A tempo is a number of beats per minute: 109, "109", "92.5 bpm", "140 BPM",
  "90 beats per minute". In text a tempo needs its unit or the word tempo ("at 140 BPM",
  "140-bpm", "tempo of 90"), and a key needs its scale ("G minor", "Eb maj") or the words
  "key of" ("in the key of F"); the key's letter is upper case there, so the article in
  "a minor key" is not read as the key A.

Each reader returns None for "not a key" ("not a scale", "no tempo"); callers that must
refuse bad input (curator.validation) raise their own error, and a range for a plausible
tempo is validation's rule too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
# The scales Essentia's KeyExtractor reports and the review page offers.
SCALES = ("major", "minor")
# Tempo, key and scale are values, not tags: their labels carry a value (tag == facet),
# they are never in a vocabulary, never probed or rebalanced as tags, and export writes them
# as plain fields, in this order.
VALUE_FACETS = ("key", "scale", "tempo")

_NATURALS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTALS = {"#": 1, "♯": 1, "sharp": 1, "b": -1, "♭": -1, "flat": -1, "": 0}
_SCALE_WORDS = {"major": "major", "maj": "major", "minor": "minor", "min": "minor"}
_ACCIDENTAL = r"(#|♯|b|♭|(?i:[ -]?sharp|[ -]?flat))?"
_KEY = re.compile(rf"\s*([A-Ga-g]){_ACCIDENTAL}\s*", re.IGNORECASE)
_TEMPO = re.compile(r"\s*(\S+?)\s*(?:bpm|beats (?:per|a) minute)?\s*", re.IGNORECASE)

# In text: "109 BPM", "140-bpm", "90 beats per minute", "bpm: 140", "tempo of 90".
_TEMPO_IN_TEXT = re.compile(
    r"(\d{2,3}(?:\.\d+)?)\s*-?\s*(?:bpm|beats per minute|beats a minute)"
    r"|(?:bpm|tempo)\s*(?:of|:|=|is|at)?\s*(\d{2,3}(?:\.\d+)?)",
    re.IGNORECASE,
)
_TEMPO_WORDS = re.compile(r"\bbpm\b|beats (?:per|a) minute", re.IGNORECASE)
_KEY_WITH_SCALE = re.compile(rf"\b([A-G]){_ACCIDENTAL}[\s-]*((?i:major|minor|maj|min))\b")
_KEY_OF = re.compile(rf"(?i:\bkey of\s+|\bin the key\s+)([A-Ga-g]){_ACCIDENTAL}(?![a-z])")
_SCALE_ALONE = re.compile(r"\b(major|minor)[\s-](?:key|scale|mode|tonality)\b", re.IGNORECASE)


# -- values ------------------------------------------------------------------------------------


def pitch_class(name: Any) -> int | None:
    """0 (C) to 11 (B) for a key spelt any of the module's ways; None for anything else."""
    match = _KEY.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        return None
    return _pitch(match[1], match[2])


def _pitch(letter: str, accidental: str | None) -> int:
    return (_NATURALS[letter.upper()] + _ACCIDENTALS[(accidental or "").strip(" -").lower()]) % 12


def key_name(value: Any) -> str | None:
    """`value` as one of NOTE_NAMES ("Gb", "f sharp" -> "F#"), or None if it is not a key."""
    pitch = pitch_class(value)
    return None if pitch is None else NOTE_NAMES[pitch]


def scale_name(value: Any) -> str | None:
    """`value` as one of SCALES ("Minor", "min" -> "minor"), or None if it is not a scale."""
    return _SCALE_WORDS.get(value.strip().lower()) if isinstance(value, str) else None


def tempo_bpm(value: Any) -> float | None:
    """The number of BPM `value` states (109, "109", "140 BPM"), or None if it states none.

    Any float is returned, NaN and 1e9 included: whether a tempo is plausible is for the
    caller to judge (curator.validation.tempo_text refuses one outside 20-400 BPM).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if not isinstance(value, str):
        return float(value)
    match = _TEMPO.fullmatch(value)
    try:
        return float(match[1]) if match else None
    except ValueError:
        return None


def value_text(facet: str, value: Any) -> str | None:
    """A tempo, key or scale in the one spelling the catalogue keeps, or None if unreadable.

    "Eb" -> "D#", "Minor" -> "minor", "109.0" -> "109": the review page shows a stored value
    this way, and a run stores an analyzer's measurement this way.
    """
    if facet == "key":
        return key_name(value)
    if facet == "scale":
        return scale_name(value)
    bpm = tempo_bpm(value) if facet == "tempo" else None
    return f"{bpm:g}" if bpm is not None and math.isfinite(bpm) else None


# -- text --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyMention:
    """A key a text names: as it is spelt there, normalised, and the scale named with it."""

    spelt: str
    key: str
    scale: str | None


def key_mentions(text: str) -> list[KeyMention]:
    """The keys `text` names: first those with a scale ("Db minor"), then "key of F" ones."""
    with_scale = [_mention(m[1], m[2], scale_name(m[3])) for m in _KEY_WITH_SCALE.finditer(text)]
    return with_scale + [_mention(m[1], m[2], None) for m in _KEY_OF.finditer(text)]


def _mention(letter: str, accidental: str | None, scale: str | None) -> KeyMention:
    return KeyMention(
        letter.upper() + (accidental or ""), NOTE_NAMES[_pitch(letter, accidental)], scale
    )


def scale_mentions(text: str) -> list[str]:
    """The scales `text` names on their own ("a minor key", "major-scale")."""
    return [m[1].lower() for m in _SCALE_ALONE.finditer(text)]


def tempo_mentions(text: str) -> list[float]:
    """Every tempo `text` names with its unit or the word tempo, in order."""
    return [float(a or b) for a, b in _TEMPO_IN_TEXT.findall(text)]


def mentions_tempo(text: str) -> bool:
    """Whether `text` speaks of a tempo at all ("BPM", "beats per minute"), number or not."""
    return _TEMPO_WORDS.search(text) is not None
