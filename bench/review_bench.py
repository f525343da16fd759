"""Review queries on a synthetic catalogue: 40,000 segments, 10 model tags each, 2,000 edits.

Run: .venv/bin/python bench/review_bench.py [--segments 40000]
Prints the query time of each thing a review page does; never asserts timings.
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

from curator.curation.review import ReviewFilter, bulk_relabel, review_page, set_labels, undo
from curator.project import Project, init_project
from curator.storage import HumanLabel, RunRecord

TAGS_PER_SEGMENT = 10


def build(project: Project, segments: int, rng: np.random.Generator) -> None:
    """Tracks, segments, one tag run with scores for every tag, and its model labels."""
    rows = add_segments(project, segments, 90.0, 30.0)
    tags = [(t.facet, t.name) for t in project.vocabulary().tags()]
    run_id = project.catalog.start_run(
        RunRecord("tag", "clap", "1", {}, "bench", None, tags, False, "bench")
    )
    ids = np.array([r.id for r in rows], dtype=object)
    # A long tail: a few tags on most segments, most tags on few (as the seed saw).
    weights = 1 / np.arange(1, len(tags) + 1) ** 1.1
    scores = rng.random((len(ids), len(tags))).astype(np.float32) * 0.3
    chosen = np.array(
        [
            rng.choice(len(tags), TAGS_PER_SEGMENT, replace=False, p=weights / weights.sum())
            for _ in ids
        ]
    )
    np.put_along_axis(scores, chosen, 0.3 + 0.5 * rng.random(chosen.shape), axis=1)
    labels = model_label_columns(
        np.repeat(ids, TAGS_PER_SEGMENT),
        [tags[c][0] for c in chosen.ravel()],
        [tags[c][1] for c in chosen.ravel()],
        "clap@1",
        run_id,
        np.take_along_axis(scores, chosen, axis=1).ravel(),
    )
    project.catalog.merge_columns(
        run_id,
        "clap",
        {
            "scores": {"segment_id": ids, "run_id": np.full(len(ids), run_id), "scores": scores},
            "labels": labels,
        },
        list(ids),
    )


def human_edits(project: Project, count: int, rng: np.random.Generator) -> None:
    segments = [r["id"] for r in review_page(project, ReviewFilter(), 1, count).segments]
    tags = [t for t in project.vocabulary().tags() if t.facet == "instruments"]
    changes = [
        HumanLabel(
            s, "instruments", tags[rng.integers(len(tags))].name, present=bool(rng.integers(2))
        )
        for s in segments
    ]
    for start in range(0, count, 100):  # as a curator would: many small saves
        set_labels(project, changes[start : start + 100], actor="bench")


def timed(label: str, work: Callable[[], object], target_ms: float) -> object:
    started = time.perf_counter()
    result = work()
    ms = (time.perf_counter() - started) * 1000
    print(
        f"{'PASS' if ms <= target_ms else 'FAIL'}  {label:58s} {ms:8.1f} ms "
        f"(target {target_ms:.0f} ms)"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=40000)
    parser.add_argument("--edits", type=int, default=2000)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="curator-review-bench-"))
    try:
        run(scratch, args.segments, args.edits)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(scratch: Path, segments: int, edits: int) -> None:
    rng = np.random.default_rng(0)
    project = init_project(scratch / "project")
    started = time.perf_counter()
    build(project, segments, rng)
    human_edits(project, edits, rng)
    print(
        f"catalogue: {segments} segments x {TAGS_PER_SEGMENT} model tags, {edits} human "
        f"edits, built in {time.perf_counter() - started:.1f} s\n"
    )
    top = project.catalog.tag_frequencies("instruments")[0]["tag"]
    timed("review page of 50, no filter", lambda: review_page(project, ReviewFilter()), 200)
    timed(
        f"review page of 50, tag {top!r}",
        lambda: review_page(project, ReviewFilter("instruments", top)),
        200,
    )
    timed(
        "review page of 50, human-labelled instruments",
        lambda: review_page(project, ReviewFilter("instruments", source="human")),
        200,
    )
    timed(
        f"review page of 50, {top!r} most uncertain first",
        lambda: review_page(project, ReviewFilter("instruments", top, uncertain_first=True)),
        200,
    )
    for facet in ("instruments", "genres", "moods"):
        timed(f"tag frequencies, {facet}", lambda f=facet: project.catalog.tag_frequencies(f), 200)
    where = _filter_of_about(project, 5000)
    batch, changed = timed(
        f"bulk add to {where.tag!r} segments",
        lambda: bulk_relabel(project, where, "add", "moods", "bulk-test"),
        2000,
    )
    print(f"      ({changed} labels changed)")
    timed("undo of that bulk add", lambda: undo(project, batch), 2000)


def _filter_of_about(project: Project, size: int) -> ReviewFilter:
    """The instruments tag whose segment count is closest to `size`."""
    counts = project.catalog.tag_frequencies("instruments")
    best = min(counts, key=lambda r: abs(r["model"] + r["human"] - size))
    return ReviewFilter("instruments", best["tag"])


if __name__ == "__main__":
    main()
