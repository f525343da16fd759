"""Choosing the segments of a track: how many, how long, where, reproducibly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """A segment's place in its track, in seconds (whole milliseconds)."""

    start: float
    duration: float

    @property
    def end(self) -> float:
        return self.start + self.duration


def track_rng(seed: int, content_hash: str) -> np.random.Generator:
    """A generator that depends only on the seed and the track's audio, not on scan order."""
    return np.random.default_rng([seed, int(content_hash[:16], 16)])


def choose_windows(
    duration: float,
    count: int,
    min_seconds: float,
    max_seconds: float,
    rng: np.random.Generator,
) -> list[Window]:
    """Up to `count` non-overlapping windows of min..max seconds, spread at random.

    Works in whole milliseconds so that the stored offsets are exact. A track too short
    for `count` windows gets as many as fit; one shorter than `min_seconds` gets none.
    """
    total_ms = int(duration * 1000)
    min_ms, max_ms = round(min_seconds * 1000), round(max_seconds * 1000)
    fit = min(count, total_ms // min_ms) if min_ms > 0 else 0
    if fit == 0:
        return []
    longest = min(max_ms, total_ms // fit)
    lengths = rng.integers(min_ms, longest, size=fit, endpoint=True)
    gaps = _split(total_ms - int(lengths.sum()), fit + 1, rng)
    starts = gaps[0] + np.concatenate([[0], np.cumsum(lengths + gaps[1:])[:-1]])
    return [Window(int(s) / 1000, int(n) / 1000) for s, n in zip(starts, lengths, strict=True)]


def _split(free_ms: int, parts: int, rng: np.random.Generator) -> np.ndarray:
    """Random whole-millisecond gaps summing to at most `free_ms`."""
    return np.floor(rng.dirichlet(np.ones(parts)) * free_ms).astype(np.int64)
