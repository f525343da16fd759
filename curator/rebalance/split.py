"""Train/validation split by track, stratified over tags (Sechidis et al. 2011)."""

from __future__ import annotations

import numpy as np

from curator.rebalance.methods import TagMatrix


def split_by_track(
    matrix: TagMatrix,
    repeats: np.ndarray,
    fraction: float,
    rng: np.random.Generator,
    joined: np.ndarray | None = None,
) -> np.ndarray:
    """Which selected segments go to validation (True), whole tracks at a time.

    The examples are the selected tracks and a track's tags are those of its selected
    segments, so the two segments of one beat always land on the same side. `joined` (one
    code per segment, default `matrix.tracks`) deals several tracks as one example: tracks
    linked through duplicates, so no duplicate unit has members on both sides. Iterative
    stratification then deals tracks out: the tag with the fewest tracks still to place
    goes first, each of its tracks to the side that still wants most of that tag (then
    the side that wants most tracks, then a seeded coin). Rare tags are thus placed
    while both sides still want them, and end on both sides when they have enough tracks.
    """
    validation = np.zeros(matrix.segments, dtype=bool)
    chosen = np.flatnonzero(repeats > 0)
    if fraction <= 0 or chosen.size == 0:
        return validation
    examples = matrix.tracks if joined is None else joined
    track_of, tracks = _codes(examples[chosen])
    labels = _track_labels(matrix, chosen, track_of, tracks)
    sides = _stratify(labels, len(matrix.tags), np.array([1 - fraction, fraction]), rng)
    validation[chosen] = sides[track_of] == 1
    return validation


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Each value's rank among the distinct values (0, 1, ...), and how many there are."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    new = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    codes = np.empty(values.size, dtype=np.int64)
    codes[order] = np.cumsum(new) - 1
    return codes, int(new.sum())


def _track_labels(
    matrix: TagMatrix, chosen: np.ndarray, track_of: np.ndarray, tracks: int
) -> list[list[int]]:
    """Per track, the distinct tags of its selected segments."""
    lengths = matrix.indptr[chosen + 1] - matrix.indptr[chosen]
    starts = np.repeat(matrix.indptr[chosen] - np.cumsum(lengths) + lengths, lengths)
    tags = matrix.indices[starts + np.arange(lengths.sum())]
    owners = np.repeat(track_of, lengths)
    pairs = np.sort(owners.astype(np.int64) * len(matrix.tags) + tags)
    pairs = pairs[np.concatenate([[True], pairs[1:] != pairs[:-1]])]
    owner, tag = np.divmod(pairs, len(matrix.tags))
    bounds = np.searchsorted(owner, np.arange(tracks + 1))
    tag_list = tag.tolist()
    return [tag_list[bounds[i] : bounds[i + 1]] for i in range(tracks)]


def _stratify(
    labels: list[list[int]], tags: int, ratios: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Sechidis et al.'s iterative stratification; returns each example's side index.

    Plain lists rather than numpy: the work is one small step per example, where numpy's
    per-call cost would dominate.
    """
    examples = len(labels)
    side = [-1] * examples
    per_tag = [0] * tags
    for tag_list in labels:
        for tag in tag_list:
            per_tag[tag] += 1
    wanted = [float(r) * examples for r in ratios]  # examples each side still wants
    wanted_tag = [[float(r) * n for n in per_tag] for r in ratios]  # ... of each tag
    coins = rng.random(examples).tolist()  # seeded tie-breaks, one per example
    holders: list[list[int]] = [[] for _ in range(tags)]
    for example in rng.permutation(examples).tolist():
        for tag in labels[example]:
            holders[tag].append(example)
    left = per_tag[:]  # examples of each tag not yet placed
    for _ in range(tags):
        open_tags = [t for t in range(tags) if left[t] > 0]
        if not open_tags:
            break
        tag = min(open_tags, key=lambda t: (left[t], t))
        for example in holders[tag]:
            if side[example] >= 0:
                continue
            chosen = _pick_side([w[tag] for w in wanted_tag], wanted, coins[example])
            side[example] = chosen
            wanted[chosen] -= 1
            for other in labels[example]:
                wanted_tag[chosen][other] -= 1
                left[other] -= 1
    for example in range(examples):  # tracks with no tags at all
        if side[example] < 0:
            side[example] = _pick_side(wanted, wanted, coins[example])
            wanted[side[example]] -= 1
    return np.asarray(side, dtype=np.int64)


def _pick_side(wanted_tag: list[float], wanted: list[float], coin: float) -> int:
    """The side that wants the tag most, then the one that wants most examples, then a coin."""
    keys = [(wanted_tag[i], wanted[i]) for i in range(len(wanted))]
    best = [i for i, key in enumerate(keys) if key == max(keys)]
    return best[int(coin * len(best))]
