"""Segment choice: counts, bounds, no overlap, reproducibility."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from curator.catalogue.segments import choose_windows, track_rng

HASH_A = "0123456789abcdef" * 2
HASH_B = "fedcba9876543210" * 2


@pytest.mark.parametrize("duration", [20.0, 39.9, 40.0, 45.5, 70.0, 180.0, 1200.0])
@pytest.mark.parametrize("seed", range(5))
def test_windows_respect_bounds_and_never_overlap(duration: float, seed: int) -> None:
    windows = choose_windows(duration, 2, 20.0, 35.0, track_rng(seed, HASH_A))
    assert len(windows) == min(2, int(duration // 20))
    for window in windows:
        assert 20.0 <= window.duration <= 35.0
        assert window.start >= 0 and window.end <= duration
    for first, second in itertools.pairwise(windows):
        assert first.end <= second.start


def test_a_track_shorter_than_one_segment_gets_none() -> None:
    assert choose_windows(19.999, 2, 20.0, 35.0, track_rng(0, HASH_A)) == []


def test_same_seed_and_audio_give_the_same_windows() -> None:
    first = choose_windows(200.0, 2, 20.0, 35.0, track_rng(7, HASH_A))
    again = choose_windows(200.0, 2, 20.0, 35.0, track_rng(7, HASH_A))
    assert first == again


def test_seed_and_audio_both_change_the_windows() -> None:
    base = choose_windows(200.0, 2, 20.0, 35.0, track_rng(7, HASH_A))
    assert choose_windows(200.0, 2, 20.0, 35.0, track_rng(8, HASH_A)) != base
    assert choose_windows(200.0, 2, 20.0, 35.0, track_rng(7, HASH_B)) != base


def test_offsets_are_whole_milliseconds_and_spread_over_the_track() -> None:
    starts = []
    for seed in range(200):
        for window in choose_windows(180.0, 2, 20.0, 35.0, track_rng(seed, HASH_A)):
            assert round(window.start * 1000) == pytest.approx(window.start * 1000, abs=1e-6)
            starts.append(window.start)
    # Windows are placed all over the track, not always at its start.
    assert np.percentile(starts, 10) < 30 and np.percentile(starts, 90) > 100


def test_more_segments_per_track() -> None:
    windows = choose_windows(60.0, 5, 5.0, 8.0, track_rng(0, HASH_A))
    assert len(windows) == 5
    assert sum(w.duration for w in windows) <= 60.0
