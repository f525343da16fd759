"""Rebalance methods on a synthetic 40,000-segment catalogue with long-tailed tags.

Run: .venv/bin/python bench/rebalance_bench.py [--segments 40000] [--budget 20000]
Prints, at the same budget, MeanIR and normalised entropy per facet of (a) a random pick,
(b) repeat-factor sampling (several thresholds t; the best one is the baseline) and
(c) the budgeted greedy, with each one's time; then times the whole `curator rebalance`
path (catalogue read, choice, split, report, save) on a real catalogue file.
Checks correctness (budget held, no track on both sides); never fails on time.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from synthetic import add_segments, model_label_columns

from curator.project import Project, init_project
from curator.rebalance.methods import (
    Budget,
    TagMatrix,
    budgeted_repeats,
    random_repeats,
    repeat_factor_repeats,
    tag_targets,
)
from curator.rebalance.metrics import mean_ir, normalized_entropy
from curator.rebalance.plan import RebalanceRequest, plan, rebalance
from curator.rebalance.split import split_by_track
from curator.storage import RunRecord

FACETS = ("instruments", "genres", "moods")
TAGS_PER_SEGMENT = {"instruments": 4, "genres": 1.5, "moods": 2}  # mean, at least 1
ZIPF = 1.1
MAX_REPEATS = 4
THRESHOLDS = (0.001, 0.01, 0.1, 0.3)


def synthetic_matrix(project: Project, segments: int, rng: np.random.Generator) -> TagMatrix:
    """Tags of the project's vocabulary, Zipf-distributed within each facet."""
    vocabulary = project.vocabulary()
    tags: list[tuple[str, str]] = []
    rows, columns = [], []
    for facet in FACETS:
        names = [t.name for t in vocabulary.facet(facet).tags]
        weights = 1 / np.arange(1, len(names) + 1) ** ZIPF
        weights = rng.permutation(weights)  # the long tail in no particular tag order
        count = np.minimum(rng.poisson(TAGS_PER_SEGMENT[facet] - 1, segments) + 1, len(names))
        # Weighted sampling without replacement: the k smallest of -log(u) / weight.
        keys = -np.log(rng.random((segments, len(names)))) / weights
        order = np.argsort(keys, axis=1)
        for k in range(int(count.max())):
            has = np.flatnonzero(count > k)
            rows.append(has)
            columns.append(order[has, k] + len(tags))
        tags += [(facet, name) for name in names]
    row, column = np.concatenate(rows), np.concatenate(columns)
    by_segment = np.lexsort((column, row))
    row, column = row[by_segment], column[by_segment]
    indptr = np.searchsorted(row, np.arange(segments + 1))
    durations = rng.uniform(20.0, 35.0, segments)
    return TagMatrix(tags, indptr, column, np.arange(segments) // 2, durations)


def scores(matrix: TagMatrix, repeats: np.ndarray) -> dict[str, tuple[float, float]]:
    """Per facet (MeanIR, entropy) of the copies `repeats` picks, and their mean."""
    before, after = matrix.counts(), matrix.counts(repeats)
    found = {}
    for facet in FACETS:
        columns = matrix.facet_columns(facet)
        known = int((before[columns] > 0).sum())
        found[facet] = (
            mean_ir(after[columns]) or float("nan"),
            normalized_entropy(after[columns], known) or float("nan"),
        )
    found["mean"] = (
        float(np.mean([v[0] for v in found.values()])),
        float(np.mean([v[1] for v in found.values()])),
    )
    return found


def timed(work: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def compare(matrix: TagMatrix, budget: Budget, seed: int) -> None:
    """The three methods at one budget, side by side."""
    rng = np.random.default_rng(seed)
    copies = budget.copies or (budget.seconds or 0) / float(matrix.durations.mean())
    results: dict[str, tuple[np.ndarray, float]] = {
        "catalogue (no selection)": (np.ones(matrix.segments, dtype=np.int64), 0.0),
        "(a) random": timed(lambda: random_repeats(matrix, budget, MAX_REPEATS, rng)[0]),
    }
    for t in THRESHOLDS:
        results[f"(b) repeat-factor t={t:g}"] = timed(
            lambda t=t: repeat_factor_repeats(matrix, budget, MAX_REPEATS, t, rng)[0]
        )

    def budgeted() -> np.ndarray:
        targets = tag_targets(matrix, dict.fromkeys(FACETS, "uniform"), copies, MAX_REPEATS)
        return budgeted_repeats(matrix, budget, targets, MAX_REPEATS, rng)

    results["(c) budgeted, uniform"] = timed(budgeted)
    print_table(matrix, budget, results)
    check_and_summarise(matrix, budget, results, rng)


def print_table(
    matrix: TagMatrix, budget: Budget, results: dict[str, tuple[np.ndarray, float]]
) -> None:
    unit = "copies" if budget.copies is not None else "s"
    print(f"\nbudget {budget.amount:.0f} {unit}, at most {MAX_REPEATS} copies of a segment\n")
    header = " | ".join(f"{f} IR / H" for f in FACETS)
    print(f"| method | {header} | mean MeanIR | mean entropy | copies | segments | time (s) |")
    print("|---|" + "---:|" * (len(FACETS) + 5))
    for name, (repeats, seconds) in results.items():
        found = scores(matrix, repeats)
        cells = " | ".join(f"{found[f][0]:.2f} / {found[f][1]:.3f}" for f in FACETS)
        print(
            f"| {name} | {cells} | {found['mean'][0]:.2f} | {found['mean'][1]:.3f} | "
            f"{int(repeats.sum())} | {int((repeats > 0).sum())} | {seconds:.3f} |"
        )


def check_and_summarise(
    matrix: TagMatrix,
    budget: Budget,
    results: dict[str, tuple[np.ndarray, float]],
    rng: np.random.Generator,
) -> None:
    for name, (repeats, _) in list(results.items())[1:]:
        spent = budget.spent(repeats, matrix.durations)
        if spent > budget.amount + 1e-6 or repeats.max() > MAX_REPEATS:
            raise SystemExit(f"FAIL  {name} broke the budget or max repeats ({spent:.0f})")
    rfs = {n: scores(matrix, r)["mean"][0] for n, (r, _) in results.items() if "repeat" in n}
    best_name = min(rfs, key=lambda n: rfs[n])
    ours, seconds = results["(c) budgeted, uniform"]
    ir = scores(matrix, ours)["mean"][0]
    ratio = ir / rfs[best_name]
    print(
        f"\n{'PASS' if ratio <= 0.5 else 'FAIL'}  budgeted MeanIR {ir:.2f} is {ratio:.2f}x the "
        f"best repeat-factor's ({best_name}: {rfs[best_name]:.2f}) (target <= 0.5x)"
    )
    print(f"{'PASS' if seconds < 5 else 'FAIL'}  budgeted took {seconds:.2f} s (target < 5 s)")
    validation, split_seconds = timed(lambda: split_by_track(matrix, ours, 0.1, rng))
    sides: dict[int, set[bool]] = {}
    for track, side in zip(matrix.tracks[ours > 0], validation[ours > 0], strict=True):
        sides.setdefault(int(track), set()).add(bool(side))
    both = sum(len(s) > 1 for s in sides.values())
    print(
        f"{'PASS' if both == 0 else 'FAIL'}  split of {len(sides)} tracks in "
        f"{split_seconds:.2f} s, {both} on both sides"
    )


# -- the whole path on a catalogue file ------------------------------------------------------------


def write_labels(project: Project, matrix: TagMatrix) -> None:
    """The matrix's tags as one tagging run's model labels, merged as a tagger's would be."""
    rows = add_segments(project, matrix.segments, 90.0, 30.0)
    ids = np.array([r.id for r in rows], dtype=object)
    run_id = project.catalog.start_run(
        RunRecord("tag", "clap", "1", {}, "bench", None, matrix.tags, False, "bench")
    )
    labels = model_label_columns(
        ids[matrix.rows()],
        [matrix.tags[c][0] for c in matrix.indices],
        [matrix.tags[c][1] for c in matrix.indices],
        "clap@1",
        run_id,
        np.full(matrix.indices.size, 0.5, dtype=np.float32),
    )
    project.catalog.merge_columns(run_id, "clap", {"labels": labels}, list(ids))


def whole_path(project: Project, budget: Budget) -> None:
    print("\n`curator rebalance` on the catalogue file (read, choose, split, report, save):\n")
    print(
        "| method | plan (s) | plan + save (s) | mean MeanIR after | copies | validation tracks |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for method in ("random", "repeat-factor", "budgeted"):
        request = RebalanceRequest(f"bench-{method}", budget, method=method)
        started = time.perf_counter()
        planned = plan(project, request)
        planned_at = time.perf_counter() - started
        started = time.perf_counter()
        rebalance(project, request, replace=True)
        total = time.perf_counter() - started
        report = planned.report
        print(
            f"| {method} | {planned_at:.2f} | {total:.2f} | "
            f"{report['summary']['after']['mean_ir']:.2f} | {report['after']['copies']} | "
            f"{report['split']['validation']['tracks']} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=40000)
    parser.add_argument("--budget", default="20000", help="copies, or hours as 100h")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from curator.rebalance.plan import parse_budget

    budget = parse_budget(args.budget)
    scratch = Path(tempfile.mkdtemp(prefix="curator-rebalance-bench-"))
    try:
        project = init_project(scratch / "project")
        started = time.perf_counter()
        matrix = synthetic_matrix(project, args.segments, np.random.default_rng(args.seed))
        print(
            f"synthetic catalogue: {matrix.segments} segments, {len(matrix.tags)} tags, "
            f"{matrix.indices.size} tag labels, Zipf s={ZIPF} per facet "
            f"(built in {time.perf_counter() - started:.1f} s)"
        )
        compare(matrix, budget, args.seed)
        compare(matrix, Budget(seconds=budget.amount * 27.5), args.seed)
        write_labels(project, matrix)
        whole_path(project, budget)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
