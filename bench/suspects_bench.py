"""Suspicion-queue benchmark: find injected label noise on rendered beats whose truth is known.

Run: .venv/bin/python bench/suspects_bench.py [--beats 200] [--flip 0.10] [--seed 0]

Rendered beats (curator.demo) are ingested and run through the real musicnn graph with
`embedding = "penultimate"`; beats, project and embeddings are cached under bench/out/, so
a second run only redoes the labels. The instrument labels are the truth with a fraction of
the (segment, instrument) cells flipped, written as the labels of a simulated tagger
("seed-clap") whose score sits on the side of the threshold its label says, nearer to it
for its mistakes (margins uniform on [0, 0.3] when right, [0, 0.15] when wrong: a tagger
is less sure of its mistakes, which gives the baseline something to find).

It prints precision@k and recall@k of the suspicion queue against the flipped cells, next
to the baseline that ranks by the tagger's score alone (nearest its threshold first, what
the review app's "most uncertain first" does) and the chance rate. Target: precision in
the top 10% of the queue at least twice the baseline's. Quality is asserted nowhere.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from synthetic import model_label_columns

from curator.catalogue.ingest import ingest
from curator.demo import INSTRUMENTS, load_truth, render_demo_dataset
from curator.project import Project, init_project
from curator.storage import RunRecord
from curator.tagging.runs import run_tagger

OUT = Path(__file__).resolve().parent / "out" / "suspects"
THRESHOLD = 0.2  # the instruments facet's threshold in the shipped vocabulary
TAGGER = "seed-clap"
MUSICNN_TABLE = """
[plugins.musicnn]
embedding = "penultimate"
# musicnn's guitar would otherwise add "plucked guitar" labels of its own on top of the
# labels under test; the benchmark keeps one label source for the instruments.
[plugins.musicnn.tag_map.instruments]
"plucked guitar" = []
"vocal chop" = []
"""


def prepare(beats: int, out: Path) -> Project:
    """Render, ingest and embed (each step skipped when already done under `out`)."""
    folder = out / "beats"
    truth = folder / "truth.json"
    if not truth.is_file() or len(json.loads(truth.read_text())) != beats:
        started = time.perf_counter()
        render_demo_dataset(folder, beats, seed=0)
        print(f"rendered {beats} beats in {time.perf_counter() - started:.0f} s")
    fresh = not (out / "project" / "curator.toml").is_file()
    project = init_project(out / "project")
    if fresh:
        with (project.root / "curator.toml").open("a", encoding="utf-8") as handle:
            handle.write(MUSICNN_TABLE)
        project = init_project(out / "project")
    ingest(project, [folder])
    started = time.perf_counter()
    summary = run_tagger(project, "musicnn")
    if summary.done:
        print(f"musicnn embedded {summary.done} segments in {time.perf_counter() - started:.0f} s")
    return project


def true_cells(project: Project, folder: Path) -> tuple[list[str], np.ndarray]:
    """Segment ids and their true instruments as a (segments, instruments) 0/1 matrix."""
    truth = load_truth(folder)
    rows = project.catalog.segment_rows()
    files = {r["id"]: Path(r["source"]).name for r in rows}
    ids = sorted(i for i in files if files[i] in truth)
    matrix = np.array(
        [[tag in truth[files[i]].instruments for tag in INSTRUMENTS] for i in ids], dtype=bool
    )
    return ids, matrix


def seed_tagger_labels(
    project: Project, ids: list[str], labels: np.ndarray, flipped: np.ndarray, seed: int
) -> None:
    """Write the noisy labels as a tagger run: scores on the label's side of the threshold."""
    rng = np.random.default_rng(seed + 1)
    margin = np.where(
        flipped, rng.uniform(0, 0.15, labels.shape), rng.uniform(0, 0.3, labels.shape)
    )
    scores = (THRESHOLD + np.where(labels, 1, -1) * np.maximum(margin, 1e-4)).astype(np.float32)
    tags = [("instruments", tag) for tag in INSTRUMENTS]
    run_id = project.catalog.start_run(
        RunRecord("tag", TAGGER, "1", {}, f"bench-{seed}", None, tags, False, "bench")
    )
    rows, columns = np.nonzero(labels)
    segment_ids = np.array(ids, dtype=object)
    project.catalog.merge_columns(
        run_id,
        TAGGER,
        {
            "scores": {
                "segment_id": segment_ids,
                "run_id": np.full(len(ids), run_id),
                "scores": scores,
            },
            "labels": model_label_columns(
                segment_ids[rows],
                "instruments",
                [INSTRUMENTS[c] for c in columns],
                f"{TAGGER}@1",
                run_id,
                scores[rows, columns].astype(float),
            ),
        },
        ids,
    )
    project.catalog.set_run_status(run_id, "finished")
    return scores


def ranked_hits(order: list[tuple[str, str]], flipped_set: set[tuple[str, str]]) -> np.ndarray:
    return np.array([cell in flipped_set for cell in order], dtype=bool)


def report(hits: np.ndarray, total_flipped: int, cells: int) -> dict[str, float]:
    """Precision and recall of the flipped cells among the top 1%, 5% and 10% of cells."""
    figures = {}
    for label, k in (("1%", cells // 100), ("5%", cells // 20), ("10%", cells // 10)):
        top = hits[:k]
        figures[f"precision@{label}"] = float(top.mean()) if k else 0.0
        figures[f"recall@{label}"] = float(top.sum() / max(total_flipped, 1))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beats", type=int, default=200)
    parser.add_argument("--flip", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--prepare-only", action="store_true")
    args = parser.parse_args()
    project = prepare(args.beats, args.out)
    if args.prepare_only:
        return
    evaluate(project, args)


def evaluate(project: Project, args: argparse.Namespace) -> None:
    from curator.curation.suspects import SuspectOptions, find_suspects

    ids, truth = true_cells(project, args.out / "beats")
    rng = np.random.default_rng(args.seed)
    flipped = rng.random(truth.shape) < args.flip
    labels = truth ^ flipped
    scores = seed_tagger_labels(project, ids, labels, flipped, args.seed)
    cells = truth.size
    flipped_set = {(ids[r], INSTRUMENTS[c]) for r, c in zip(*np.nonzero(flipped), strict=True)}
    print(
        f"{len(ids)} segments x {len(INSTRUMENTS)} instruments = {cells} cells, "
        f"{len(flipped_set)} flipped ({len(flipped_set) / cells:.1%})"
    )
    started = time.perf_counter()
    found = find_suspects(
        project,
        SuspectOptions(
            embedding="musicnn-MSD_musicnn-penultimate",
            facet="instruments",
            tags=INSTRUMENTS,
        ),
    )
    seconds = time.perf_counter() - started
    margin = np.abs(scores - THRESHOLD)
    order = np.argsort(margin, axis=None, kind="stable")
    baseline = [(ids[i // len(INSTRUMENTS)], INSTRUMENTS[i % len(INSTRUMENTS)]) for i in order]
    rankings = {
        "suspicion queue": [(segment, tag) for segment, _, tag in found.ranking],
        "  confident learning alone": [(segment, tag) for segment, _, tag in found.probe_ranking],
        "baseline: tagger score": baseline,
        "chance": [baseline[i] for i in rng.permutation(len(baseline))],
    }
    results = {
        name: report(ranked_hits(ranked, flipped_set), len(flipped_set), cells)
        for name, ranked in rankings.items()
    }
    print_table(results)
    ratio = results["suspicion queue"]["precision@10%"] / max(
        results["baseline: tagger score"]["precision@10%"], 1e-9
    )
    verdict = "PASS" if ratio >= 2 else "FAIL"
    print(f"\nqueue built in {seconds:.1f} s; {len(found.ranking)} cells ranked")
    print(f"precision@10%: queue / baseline = {ratio:.2f} (target >= 2): {verdict}")


def print_table(results: dict[str, dict[str, float]]) -> None:
    columns = list(next(iter(results.values())))
    print(f"\n| ranking | {' | '.join(columns)} |")
    print("|---|" + "---:|" * len(columns))
    for name, figures in results.items():
        print(f"| {name} | " + " | ".join(f"{figures[c]:.3f}" for c in columns) + " |")


if __name__ == "__main__":
    main()
