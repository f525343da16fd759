"""A duplicate group's evidence in words: what its level means and the matched pairs."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from curator.storage.duplicates import DuplicateGroup

# What each level means, in words.
LEVEL_MEANING = {
    "same": "The same recording (a re-encode, a gain change, a trim: the audio fingerprints match)",
    "near": "The same loop or sample under another beat (many spectral landmarks agree on "
    "one time offset)",
}
# Evidence keys a finder may fill with a sentence of its own, shown as they are.
SAID_KEYS = ("summary", "why", "reason")
PAIRS_SHOWN = 3


def pair_words(pair: Mapping[str, Any]) -> str:
    """One matched pair as a curator reads it: which two, and the figures that matched them
    (a fingerprint alignment, shared landmarks, or an embedding similarity); other figures
    by name."""
    a, b = pair.get("tracks") or pair.get("segments") or ("?", "?")
    if "bit_error_rate" in pair:
        return (
            f"{a} ~ {b}: bit error rate {pair['bit_error_rate']:.3f}"
            + _overlap(pair)
            + f", {b} starts {pair.get('offset_seconds', 0.0):+.2f} s into {a}, "
            f"tempo x{pair.get('tempo_ratio', 1.0):g}"
        )
    if "shared_landmarks" in pair:
        return (
            f"{a} ~ {b}: {pair['shared_landmarks']} landmarks agree"
            + (f" ({pair['share']:.1%} of the smaller segment's)" if "share" in pair else "")
            + f", {b} starts {pair.get('offset_seconds', 0.0):+.2f} s into {a}"
        )
    if "similarity" in pair:
        margin = f", margin {pair['margin']:.3f}" if "margin" in pair else ""
        return f"{a} ~ {b}: similarity {pair['similarity']:.3f}{margin}"
    figures = {k: v for k, v in pair.items() if k not in ("tracks", "segments")}
    return f"{a} ~ {b}: {', '.join(figure_words(figures))}"


def evidence_words(group: DuplicateGroup, about: Collection[str] = ()) -> str:
    """Why the group was found: what its level means, then the finder's own sentence if it
    left one, else its matched pairs (those naming any of `about`, a segment and its track,
    when some do; at most PAIRS_SHOWN), else its figures."""
    meaning = LEVEL_MEANING.get(group.level, group.level)
    evidence = group.evidence
    said = next((evidence[k] for k in SAID_KEYS if isinstance(evidence.get(k), str)), "")
    details = said or _pairs(evidence.get("pairs"), about) or ", ".join(figure_words(evidence))
    return f"{meaning}: {details}." if details else f"{meaning}."


def figure_words(figures: Mapping[str, Any]) -> list[str]:
    """Scalars as "name value", lists and tables as their size, by name."""
    said = []
    for key, value in sorted(figures.items()):
        name = key.replace("_", " ")
        if isinstance(value, bool):
            said.append(f"{name} {'yes' if value else 'no'}")
        elif isinstance(value, float):
            said.append(f"{name} {value:.3g}")
        elif isinstance(value, int | str):
            said.append(f"{name} {value}")
        elif isinstance(value, list | dict):
            said.append(f"{len(value)} {name}")
    return said


def _pairs(pairs: Any, about: Collection[str]) -> str:
    if not isinstance(pairs, list) or not all(isinstance(p, Mapping) for p in pairs):
        return ""
    named = [p for p in pairs if set(p.get("tracks") or p.get("segments") or ()) & set(about)]
    shown = named or pairs
    more = len(shown) - PAIRS_SHOWN
    return "; ".join(pair_words(p) for p in shown[:PAIRS_SHOWN]) + (
        f"; and {more} more pair(s)" if more > 0 else ""
    )


def _overlap(pair: Mapping[str, Any]) -> str:
    return f" over {pair['overlap_seconds']:g} s" if "overlap_seconds" in pair else ""
