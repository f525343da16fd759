"""How a rebalance picks copies: random, repeat-factor sampling, and the budgeted greedy.

Everything here works on a `TagMatrix` (which segment has which tag) held in numpy arrays,
so the methods can be compared on a synthetic catalogue without a project (bench/).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

METHODS = ("budgeted", "repeat-factor", "random")
# A repeat of a segment gains this fraction of a first copy of one with the same tags.
REPEAT_DISCOUNT = 0.7
# The most copies of a tag one round of the budgeted greedy adds, as a share of its target.
ROUND_SHARE = 0.05
POOL_MIN = 2048
TARGET_KINDS = ("uniform", "sqrt", "caps")


@dataclass(frozen=True)
class TagMatrix:
    """Segments and their tags in CSR form: segment i has tags indices[indptr[i]:indptr[i+1]].

    tags: one (facet, tag) per column. tracks: each segment's track as an integer code.
    durations: each segment's length in seconds.
    """

    tags: list[tuple[str, str]]
    indptr: np.ndarray
    indices: np.ndarray
    tracks: np.ndarray
    durations: np.ndarray

    @property
    def segments(self) -> int:
        return len(self.indptr) - 1

    def rows(self) -> np.ndarray:
        """The segment of each (segment, tag) entry."""
        return np.repeat(np.arange(self.segments), np.diff(self.indptr))

    def counts(self, repeats: np.ndarray | None = None) -> np.ndarray:
        """Copies carrying each tag: segments with it, each counted `repeats` times."""
        weights = None if repeats is None else np.asarray(repeats, dtype=float)[self.rows()]
        return np.bincount(self.indices, weights=weights, minlength=len(self.tags))

    def facet_columns(self, facet: str) -> np.ndarray:
        return np.array([i for i, (f, _) in enumerate(self.tags) if f == facet], dtype=int)


@dataclass(frozen=True)
class Budget:
    """How much a selection may hold: segment copies (repeats count) or seconds of audio."""

    copies: int | None = None
    seconds: float | None = None

    @property
    def amount(self) -> float:
        return float(self.copies if self.copies is not None else self.seconds or 0.0)

    def costs(self, durations: np.ndarray) -> np.ndarray:
        """What one copy of each segment costs against the budget."""
        if self.copies is not None:
            return np.ones(len(durations))
        return np.asarray(durations, dtype=float)

    def spent(self, repeats: np.ndarray, durations: np.ndarray) -> float:
        return float(np.dot(repeats, self.costs(durations)))


# -- random and repeat-factor sampling ---------------------------------------------------------


def random_repeats(
    matrix: TagMatrix, budget: Budget, max_repeats: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Every segment equally likely: the baseline a rebalance has to beat.

    Returns (repeats, expected copies before rounding).
    """
    return _spread(np.ones(matrix.segments), matrix, budget, max_repeats, rng)


def repeat_factors(matrix: TagMatrix, threshold: float) -> np.ndarray:
    """LVIS repeat factors: r(tag) = max(1, sqrt(t / f(tag))), a segment's is its tags' max.

    f(tag) is the fraction of segments with the tag; segments without tags get 1.
    """
    fraction = matrix.counts() / max(matrix.segments, 1)
    with np.errstate(divide="ignore"):
        per_tag = np.maximum(1.0, np.sqrt(threshold / np.where(fraction > 0, fraction, np.inf)))
    factors = np.ones(matrix.segments)
    np.maximum.at(factors, matrix.rows(), per_tag[matrix.indices])
    return factors


def repeat_factor_repeats(
    matrix: TagMatrix, budget: Budget, max_repeats: int, threshold: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Repeat-factor sampling brought to the budget.

    LVIS repeats each image r times per epoch (stochastic rounding). Here every factor is
    scaled by one number so that the expected copies, each at most `max_repeats`, spend the
    budget exactly; the copies are then rounded with systematic sampling, which keeps each
    segment within one copy of its expectation and the total on the budget.
    """
    return _spread(repeat_factors(matrix, threshold), matrix, budget, max_repeats, rng)


def _spread(
    factors: np.ndarray,
    matrix: TagMatrix,
    budget: Budget,
    max_repeats: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    costs = budget.costs(matrix.durations)
    scale = _scale_to_budget(factors, costs, budget.amount, max_repeats)
    expected = np.minimum(max_repeats, scale * factors)
    repeats = systematic_round(expected, rng)
    return fit_to_budget(repeats, costs, budget.amount, rng), expected


def _scale_to_budget(
    factors: np.ndarray, costs: np.ndarray, amount: float, max_repeats: int
) -> float:
    """The scale s with sum(min(max_repeats, s * factor) * cost) = amount (bisection)."""
    if factors.size == 0:
        return 0.0
    if np.dot(np.full_like(factors, max_repeats), costs) <= amount:
        return float(max_repeats / factors.min())  # everything at the most repeats
    low, high = 0.0, float(max_repeats / factors.min())
    for _ in range(100):
        middle = (low + high) / 2
        if np.dot(np.minimum(max_repeats, middle * factors), costs) < amount:
            low = middle
        else:
            high = middle
    return low


def systematic_round(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Integers within one of `expected`, summing to its (rounded) total, in a seeded order.

    One uniform offset walks the cumulative sum in a random order: each segment gets the
    floor or the ceiling of its expectation, the ceiling with the right probability.
    """
    if expected.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = rng.permutation(expected.size)
    cumulative = np.cumsum(expected[order])
    total = round(float(cumulative[-1]))
    if cumulative[-1] > 0:
        cumulative *= total / cumulative[-1]  # no float drift off the total
    offset = rng.random()
    edges = np.floor(np.concatenate([[0.0], cumulative]) + offset)
    repeats = np.zeros(expected.size, dtype=np.int64)
    repeats[order] = np.diff(edges).astype(np.int64)
    return repeats


def fit_to_budget(
    repeats: np.ndarray, costs: np.ndarray, amount: float, rng: np.random.Generator
) -> np.ndarray:
    """Drop copies, in a seeded random order, until what is left fits the budget."""
    if float(np.dot(repeats, costs)) <= amount + 1e-9:
        return repeats
    copies = rng.permutation(np.repeat(np.arange(repeats.size), repeats))
    kept = copies[np.cumsum(costs[copies]) <= amount + 1e-9]
    return np.bincount(kept, minlength=repeats.size).astype(np.int64)


# -- targets -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagTargets:
    """What the budgeted method aims at, per tag column: target copies, hard cap, floor."""

    target: np.ndarray
    cap: np.ndarray  # inf where the curator set none
    floor: np.ndarray  # 0 where the curator set none
    facet_mass: np.ndarray  # the target copies of the tag's facet, summed


def tag_targets(
    matrix: TagMatrix,
    kinds: Mapping[str, str],
    copies: float,
    max_repeats: int,
    caps: Mapping[int, int] | None = None,
    floors: Mapping[int, int] | None = None,
) -> TagTargets:
    """Target copies per tag: each facet's shape, filled to what the budget will carry.

    A facet's tag copies at the budget are estimated as a random pick would give them
    (`copies` x tags per segment). The shape (equal, square root of the current count, or
    the current count for "caps") is water-filled into that mass: no tag is asked for more
    than `max_repeats` copies of every segment it has, or more than its cap; what a rare
    tag cannot take goes to the others. Floors then raise their tags.
    """
    before = matrix.counts()
    size = len(matrix.tags)
    cap = np.full(size, np.inf)
    floor = np.zeros(size)
    for column, value in (caps or {}).items():
        cap[column] = value
    for column, value in (floors or {}).items():
        floor[column] = value
    target = np.zeros(size)
    mass = np.ones(size)
    for facet, kind in kinds.items():
        columns = matrix.facet_columns(facet)
        if columns.size == 0:
            continue
        counts = before[columns]
        shape = {"uniform": np.ones_like(counts), "sqrt": np.sqrt(counts)}.get(kind, counts)
        upper = np.minimum(max_repeats * counts, cap[columns])
        wanted = copies * counts.sum() / max(matrix.segments, 1)
        filled = water_fill(shape, upper, wanted)
        filled = np.maximum(filled, np.minimum(floor[columns], max_repeats * counts))
        target[columns] = filled
        mass[columns] = max(filled.sum(), 1.0)
    return TagTargets(target, cap, floor, mass)


def water_fill(shape: np.ndarray, upper: np.ndarray, total: float) -> np.ndarray:
    """min(level x shape, upper) with the level at which the values sum to `total`."""
    if shape.size == 0 or float(upper.sum()) <= total:
        return upper.astype(float)
    low, high = 0.0, 1.0
    while np.minimum(high * shape, upper).sum() < total:
        high *= 2
    for _ in range(100):
        middle = (low + high) / 2
        if np.minimum(middle * shape, upper).sum() < total:
            low = middle
        else:
            high = middle
    return np.minimum(high * shape, upper)


# -- the budgeted greedy ----------------------------------------------------------------------


def budgeted_repeats(
    matrix: TagMatrix,
    budget: Budget,
    targets: TagTargets,
    max_repeats: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Copies chosen greedily, each where it brings the tag counts nearest the targets.

    The distance is a generalised Kullback-Leibler divergence between copies per tag and
    target, sum c log(c / T) - c + T, each facet divided by its target mass so that
    facets weigh alike. A copy's gain is how much it lowers the distance per unit of
    budget; the divergence is convex in every count, so gains only fall as copies are
    added (the diminishing returns lazy greedy relies on).

    Instead of one copy per step, each round scores every segment at once (numpy) and
    takes the best ones in order, as long as no tag gets more than ROUND_SHARE of its
    target or count in the round: within that bound the gains a round was ranked by stay
    close to the true greedy ones. So the rounds number in the tens, not one per copy.
    Gains may turn negative; the budget is still spent, on the copies that hurt least,
    so that methods are compared at one size. Caps are never exceeded, no segment gets
    more than `max_repeats` copies, a repeat gains REPEAT_DISCOUNT of a first copy (an
    unused segment with the same tags goes first), and ties go by a seeded order.
    """
    greedy = _Greedy(matrix, targets, budget.costs(matrix.durations), max_repeats, rng)
    return greedy.run(budget.amount)


class _Greedy:
    """The state of one budgeted selection: copies per tag and per segment."""

    def __init__(
        self,
        matrix: TagMatrix,
        targets: TagTargets,
        costs: np.ndarray,
        max_repeats: int,
        rng: np.random.Generator,
    ) -> None:
        self.matrix = matrix
        self.rows = matrix.rows()
        self.costs = costs
        self.max_repeats = max_repeats
        self.target = np.maximum(targets.target, 1e-9)
        self.weight = 1.0 / targets.facet_mass
        self.cap = targets.cap
        self.count = np.zeros(len(matrix.tags))
        self.repeats = np.zeros(matrix.segments, dtype=np.int64)
        self.order = rng.permutation(matrix.segments)  # breaks ties
        self.last_taken = 0
        self.capped = bool(np.isfinite(self.cap).any())
        # Small integer codes let numpy's stable sort run as a radix sort.
        self.tag_codes = matrix.indices.astype(np.uint16 if len(matrix.tags) < 65536 else np.int64)

    def steps(self) -> np.ndarray:
        """Per tag, the drop in w (c log(c / T) - c) from one more copy."""
        c, goal = self.count, self.target
        before = _xlogx(c, goal) - c
        after = _xlogx(c + 1, goal) - c - 1
        return self.weight * (before - after)

    def priorities(self) -> np.ndarray:
        """Each segment's gain from one more copy per unit of budget; -inf if it is blocked."""
        gain = self._per_segment(self.steps())
        discount = REPEAT_DISCOUNT**self.repeats
        gain = np.where(gain > 0, gain * discount, gain / discount)
        blocked = self.repeats >= self.max_repeats
        if self.capped:
            blocked |= self._per_segment((self.count + 1 > self.cap).astype(float)) > 0
        return np.where(blocked, -np.inf, gain / np.where(self.costs > 0, self.costs, np.inf))

    def _per_segment(self, per_tag: np.ndarray) -> np.ndarray:
        """Sum of `per_tag` over each segment's tags (a cumulative sum is faster than bincount)."""
        running = np.concatenate([[0.0], np.cumsum(per_tag[self.matrix.indices])])
        return running[self.matrix.indptr[1:]] - running[self.matrix.indptr[:-1]]

    def run(self, amount: float) -> np.ndarray:
        spent = 0.0
        while True:
            taken = self.round(amount - spent)
            if taken.size == 0:
                return self.repeats
            self.last_taken = taken.size
            self.repeats[taken] += 1
            self.count += np.bincount(self._entries(taken)[1], minlength=self.count.size)
            spent += float(self.costs[taken].sum())

    def round(self, left: float) -> np.ndarray:
        """The segments that get one more copy in this round, best first."""
        priority = self.priorities()
        candidates = np.flatnonzero(np.isfinite(priority) & (self.costs <= left + 1e-9))
        if candidates.size == 0:
            return candidates
        best = priority[candidates].max()
        if best > 0:
            candidates = candidates[priority[candidates] > 0]  # no loss while gains remain
        most = max(1, int(left / max(float(self.costs[candidates].min()), 1e-9)))
        # Tag quotas turn most of a long ranking away; ranking a few times what the last
        # round took is enough and keeps each round cheap.
        most = min(most, max(POOL_MIN, 4 * self.last_taken))
        if candidates.size > most:
            candidates = candidates[np.argpartition(-priority[candidates], most - 1)[:most]]
        ranked = candidates[np.lexsort((self.order[candidates], -priority[candidates]))]
        ranked = ranked[self._within_quota(ranked)]
        return ranked[np.cumsum(self.costs[ranked]) <= left + 1e-9]

    def _within_quota(self, ranked: np.ndarray) -> np.ndarray:
        """Which ranked segments keep every tag of theirs within this round's quota.

        A tag's quota counts every better-ranked segment with the tag, taken or not, so
        the test is one stable sort instead of a loop.
        """
        owner, tags = self._entries(ranked)
        by_tag = np.argsort(tags, kind="stable")
        sorted_tags = tags[by_tag]
        # Each entry's place among the entries of its tag: its index minus its group's start.
        starts = np.flatnonzero(np.concatenate([[True], sorted_tags[1:] != sorted_tags[:-1]]))
        sizes = np.diff(np.concatenate([starts, [owner.size]]))
        place = np.empty(owner.size, dtype=np.int64)
        place[by_tag] = np.arange(owner.size) - np.repeat(starts, sizes)
        quota = np.maximum(1, np.floor(ROUND_SHARE * np.maximum(self.count, self.target)))
        quota = np.minimum(quota, self.cap - self.count)
        over = place >= quota[tags]
        keep = np.ones(ranked.size, dtype=bool)
        keep[owner[over]] = False
        return keep

    def _entries(self, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position in `segments`, tag) of every tag the given segments have."""
        indptr = self.matrix.indptr
        lengths = indptr[segments + 1] - indptr[segments]
        owner = np.repeat(np.arange(segments.size), lengths)
        starts = np.repeat(indptr[segments] - np.cumsum(lengths) + lengths, lengths)
        return owner, self.tag_codes[starts + np.arange(owner.size)]


def _xlogx(c: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """c log(c / goal), 0 where c is 0."""
    return np.where(c > 0, c * np.log(np.maximum(c, 1e-300) / goal), 0.0)
