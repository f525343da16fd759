"""Finding duplicate groups at both levels and storing them (what `curator duplicates` runs).

'same': tracks whose fingerprints match at some alignment (curator.duplicates.fingerprint);
all the segments of matched tracks form one group. 'near': segments whose embeddings match
far beyond what segments of the same style do (curator.duplicates.near).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from curator.duplicates.fingerprint import (
    METHOD,
    SAME_MAX_BIT_ERROR_RATE,
    FingerprintSummary,
    align,
    candidate_pairs,
    fingerprint_missing,
)
from curator.duplicates.groups import components
from curator.project import Project
from curator.storage.duplicates import (
    LEVELS,
    DuplicateGroup,
    duplicate_groups,
    fingerprints,
    replace_duplicate_groups,
    track_segments,
)

Progress = Callable[[int, int, str], None]


@dataclass
class Finding:
    """What one level's search found: its groups, the matched pairs behind them, and how."""

    level: str
    groups: list[DuplicateGroup]
    pairs: int
    how: str
    fingerprinting: FingerprintSummary | None = None
    notes: list[str] = field(default_factory=list)


def levels_of(level: str) -> tuple[str, ...]:
    """'same', 'near' or 'both' as the levels to find, same first (near leaves same out)."""
    if level == "both":
        return LEVELS
    if level not in LEVELS:
        raise ValueError(f"unknown duplicate level {level!r}; choose from same, near, both")
    return (level,)


def find_duplicates(
    project: Project,
    level: str = "both",
    *,
    same_threshold: float | None = None,
    near_threshold: float | None = None,
    progress: Progress | None = None,
) -> list[Finding]:
    """Find and store the groups of `level` ('same', 'near' or 'both'), same first.

    'same' first fingerprints the tracks that have no fingerprint yet; 'near' decodes every
    usable segment (`progress` follows both). If fingerprinting is interrupted, nothing is
    stored and the Finding says so.
    """
    found = []
    for each in levels_of(level):
        if each == "same":
            finding = find_same(project, same_threshold, progress)
            if finding.fingerprinting and finding.fingerprinting.interrupted:
                return [finding]
        else:
            from curator.duplicates.near import find_near

            finding = find_near(project, near_threshold, progress)
        replace_duplicate_groups(project.catalog, each, finding.groups)
        found.append(finding)
    return found


def find_same(
    project: Project, threshold: float | None = None, progress: Progress | None = None
) -> Finding:
    """Fingerprint what is missing, then group the tracks that are the same recording."""
    threshold = SAME_MAX_BIT_ERROR_RATE if threshold is None else threshold
    how = f"{METHOD}: bit error rate <= {threshold:g} at the best alignment"
    summary = fingerprint_missing(project, progress)
    if summary.interrupted:
        return Finding("same", [], 0, how, summary)
    segments = track_segments(project.catalog)
    stored = fingerprints(project.catalog, METHOD)
    tracks = [t for t in sorted(stored) if segments.get(t)]
    matches = match_tracks(tracks, [stored[t][1] for t in tracks], threshold)
    groups = same_groups(matches, segments)
    return Finding("same", groups, len(matches), how, summary)


def match_tracks(
    tracks: list[str], codes: list[np.ndarray], threshold: float
) -> list[dict[str, Any]]:
    """Each pair of tracks whose fingerprints align under `threshold`, with the evidence."""
    matches = []
    for i, j in candidate_pairs(codes):
        found = align(codes[i], codes[j])
        if found is not None and found.bit_error_rate <= threshold:
            matches.append(
                {
                    "tracks": [tracks[i], tracks[j]],
                    "bit_error_rate": round(found.bit_error_rate, 4),
                    "offset_seconds": round(found.offset_seconds, 2),
                    "tempo_ratio": round(found.tempo, 4),
                    "overlap_seconds": round(found.overlap_seconds, 1),
                }
            )
    return matches


def same_groups(
    matches: list[dict[str, Any]], segments: dict[str, list[str]]
) -> list[DuplicateGroup]:
    """One group per set of linked tracks: all their segments, with the pairs that link them."""
    groups = []
    for tracks in components(tuple(m["tracks"]) for m in matches):
        members = tuple(sorted(s for t in tracks for s in segments.get(t, [])))
        evidence = {
            "method": METHOD,
            "tracks": list(tracks),
            "pairs": [m for m in matches if m["tracks"][0] in tracks],
        }
        groups.append(DuplicateGroup("same", members[0], members, evidence))
    return groups


def stored_findings(project: Project, levels: tuple[str, ...]) -> list[Finding]:
    """The groups stored by the last search of each level, as Findings."""
    found = []
    for level in levels:
        groups = duplicate_groups(project.catalog, level)
        pairs = sum(len(g.evidence.get("pairs", [])) for g in groups)
        found.append(Finding(level, groups, pairs, "as found last"))
    return found
