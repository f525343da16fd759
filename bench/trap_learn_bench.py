"""Learned-tagger benchmark: does a curator's correction of trap's tags beat trap alone?

Run: .venv/bin/python bench/trap_learn_bench.py [--beats 120] [--seed 0] [--weights PATH]

Beats with known instruments are rendered by the demo's renderer (curator.demo, the same
audio `make demo` makes), ingested and tagged with `trap` (the shipped weights, or
--weights); beats, project and embeddings are cached under bench/out/trap_learn/ and
re-made when the renderer or the weights change. The TRACKS are split at random in two
halves: a correction pool and a held-out set; the correction set is 5%, 15% and 50% of all
tracks (--fractions), taken from the pool. A simulated curator reviews every segment of the
correction tracks on the instruments facet: each instrument tag set to the truth through
the review API (`save_segment`, as the Review page's Save does), in a copy of the project.
Then `learn()` (what `curator learn` runs) trains the learned tagger with the prior (each
probe starts from trap's own probability) and without it (`--no-prior`: probes on the
embedding alone).

Printed, on the held-out tracks' segments only, per corrected tag (a tag the curator's
corrections trained, with both classes among the held-out segments): ROC AUC, and F1 at
each tagger's own threshold (trap's chosen on validation clips, the learned tagger's 0.5),
for trap alone, learned with the prior and learned without; then macro figures and the
mean Brier score (calibration) for several sizes of the correction set. trap scores every
one of these tags, so the baseline is a tagger that actually tries them. Quality is
asserted nowhere. All audio here is synthetic (rendered, never recorded).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score

import curator.demo
from curator.catalogue.ingest import ingest
from curator.curation.probes import LearnedModel, LearnOptions, learn
from curator.curation.review import save_segment
from curator.demo import INSTRUMENTS, load_truth, render_demo_dataset
from curator.project import Project, init_project, open_project
from curator.registry import load_registry
from curator.storage import HumanLabel
from curator.storage.suspects import segment_tracks
from curator.tagging.runs import plugin_context, run_tagger

OUT = Path(__file__).resolve().parent / "out" / "trap_learn"
FACET = "instruments"
FRACTIONS = (0.05, 0.15, 0.5)  # of all tracks, corrected; at most half: the rest is held out


@dataclass
class Catalogue:
    """The tagged project and, per segment with a trap embedding, its truth and track."""

    project: Project
    embedding: str
    segment_ids: list[str]
    features: np.ndarray
    tracks: np.ndarray
    truth: np.ndarray  # (segments, instruments of the vocabulary)
    tags: list[str]  # the vocabulary's instruments, truth's columns
    trap_columns: dict[str, int]
    trap_thresholds: dict[str, float]


# ------------------------------------------------------------------------ preparing


def renderer_fingerprint() -> str:
    """What the beats were rendered by: a renderer change means new beats."""
    return hashlib.sha256(inspect.getsource(curator.demo).encode()).hexdigest()[:12]


def render(folder: Path, beats: int) -> None:
    stamp = folder / "renderer.txt"
    truth = folder / "truth.json"
    fingerprint = renderer_fingerprint()
    if (
        truth.is_file()
        and len(json.loads(truth.read_text())) == beats
        and stamp.is_file()
        and stamp.read_text() == fingerprint
    ):
        return
    started = time.perf_counter()
    render_demo_dataset(folder, beats, seed=0)
    stamp.write_text(fingerprint)
    print(f"rendered {beats} beats in {time.perf_counter() - started:.0f} s")


def prepare(beats: int, out: Path, weights: Path | None) -> Project:
    """Render, ingest and tag with trap (each step skipped when already done under `out`)."""
    folder = out / "beats"
    render(folder, beats)
    root = out / "project"
    if root.exists() and (root / "weights.txt").read_text() != str(weights or ""):
        shutil.rmtree(root)  # other weights: their embedding is another model
    fresh = not (root / "curator.toml").is_file()
    project = init_project(root)
    if fresh:
        (root / "weights.txt").write_text(str(weights or ""))
        if weights:
            with (root / "curator.toml").open("a", encoding="utf-8") as handle:
                handle.write(f'\n[plugins.trap]\nweights = "{weights.resolve()}"\n')
            project = open_project(root)
    ingest(project, [folder.resolve()])
    started = time.perf_counter()
    summary = run_tagger(project, "trap")
    if summary.done:
        print(f"trap tagged {summary.done} segments in {time.perf_counter() - started:.0f} s")
    return project


def load_catalogue(project: Project, folder: Path) -> Catalogue:
    """Trap's cached rows, the truth of each segment, and where trap keeps each tag's score."""
    registry = load_registry()
    trap = registry.tagger("trap")
    trap.setup(plugin_context(project, "trap", registry))
    embedding = str(trap.embedding_model)
    ids, features = project.catalog.embeddings(embedding)
    files = {r["id"]: Path(r["source"]).name for r in project.catalog.segment_rows()}
    truth = load_truth(folder)
    tags = [t.name for t in project.vocabulary().facet(FACET).tags]
    keep = [i for i, s in enumerate(ids) if files.get(s) in truth]
    ids, features = [ids[i] for i in keep], np.asarray(features)[keep]
    matrix = np.array([[t in truth[files[s]].instruments for t in tags] for s in ids], dtype=bool)
    tracks = segment_tracks(project.catalog)
    columns = {tag: column for (_, tag), column in trap.score_columns().items()}
    return Catalogue(
        project,
        embedding,
        ids,
        features,
        np.array([tracks[s] for s in ids], dtype=object),
        matrix,
        tags,
        columns,
        {tag: trap.label_threshold(FACET, tag) for tag in columns},
    )


# ------------------------------------------------------------------------ correcting


def split_tracks(catalogue: Catalogue, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the tracks the curator corrects (`fraction` of all tracks, from the first
    half of a seeded shuffle) and of the held-out tracks (always the second half, so every
    size of correction set is scored on the same tracks)."""
    tracks = sorted(set(catalogue.tracks))
    order = [tracks[i] for i in np.random.default_rng(seed).permutation(len(tracks))]
    half = len(tracks) // 2
    corrected = set(order[: max(2, min(half, round(fraction * len(tracks))))])
    held_out = set(order[half:])
    rows = [np.array([t in chosen for t in catalogue.tracks]) for chosen in (corrected, held_out)]
    return rows[0], rows[1]


def corrected_copy(catalogue: Catalogue, rows: np.ndarray, folder: Path) -> Project:
    """A copy of the project in which a curator reviewed the instruments of `rows`."""
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(catalogue.project.root, folder)
    project = open_project(folder)
    for i in np.flatnonzero(rows):
        segment = catalogue.segment_ids[i]
        changes = [
            HumanLabel(segment, FACET, tag, bool(catalogue.truth[i, k]))
            for k, tag in enumerate(catalogue.tags)
        ]
        save_segment(project, segment, changes, actor="bench-curator")
    return project


# ------------------------------------------------------------------------ scoring


@dataclass
class Scores:
    """One tagger's probability and label per held-out segment, per tag."""

    probability: dict[str, np.ndarray]
    label: dict[str, np.ndarray]


def trap_scores(catalogue: Catalogue, rows: np.ndarray) -> Scores:
    probability = {t: catalogue.features[rows, c] for t, c in catalogue.trap_columns.items()}
    label = {t: p >= catalogue.trap_thresholds[t] for t, p in probability.items()}
    return Scores(probability, label)


def learned_scores(model: LearnedModel, catalogue: Catalogue, rows: np.ndarray) -> Scores:
    found = model.probabilities(catalogue.features[rows])
    probability = {tag: found[:, k] for k, (_, tag) in enumerate(model.pairs)}
    label = {t: p >= model.threshold for t, p in probability.items()}
    return Scores(probability, label)


def figures(scores: Scores, tag: str, truth: np.ndarray) -> tuple[float, float, float]:
    """ROC AUC, F1 at the tagger's threshold, Brier score."""
    p = scores.probability[tag]
    return (
        float(roc_auc_score(truth, p)),
        float(f1_score(truth, scores.label[tag], zero_division=0)),
        float(np.mean((p - truth) ** 2)),
    )


def evaluate(catalogue: Catalogue, fraction: float, seed: int, out: Path) -> dict:
    """Correct a fraction of the tracks, learn with and without the prior, score held-out."""
    corrected, held_out = split_tracks(catalogue, fraction, seed)
    project = corrected_copy(catalogue, corrected, out / f"corrected-{fraction:g}")
    options = LearnOptions(facet=FACET, tags=tuple(INSTRUMENTS))
    started = time.perf_counter()
    with_prior = learn(project, options)
    seconds = time.perf_counter() - started
    without = learn(project, replace(options, prior=False))
    taggers = {
        "trap": trap_scores(catalogue, held_out),
        "learned+prior": learned_scores(with_prior, catalogue, held_out),
        "learned": learned_scores(without, catalogue, held_out),
    }
    results: dict = {"tracks": len(set(catalogue.tracks[corrected])), "tags": {}}
    results["segments"] = int(corrected.sum()), int(held_out.sum())
    results["prior_tags"] = sum(1 for r in with_prior.report if r.prior)
    results["learn_seconds"] = seconds
    for tag in INSTRUMENTS:
        truth = catalogue.truth[held_out, catalogue.tags.index(tag)]
        trained = all(tag in s.probability for s in taggers.values())
        if not trained or truth.all() or not truth.any():
            continue
        results["tags"][tag] = {name: figures(s, tag, truth) for name, s in taggers.items()}
        results["tags"][tag]["positives"] = int(truth.sum()), int(truth.size)
    return results


# ------------------------------------------------------------------------ printing

NAMES = ("trap", "learned+prior", "learned")


def print_tags(results: dict) -> None:
    print(
        f"\nper corrected tag, on {results['segments'][1]} held-out segments "
        f"(corrections: {results['segments'][0]} segments of {results['tracks']} tracks)"
    )
    print("| tag | held-out + | " + " | ".join(f"AUC {n}" for n in NAMES) + " | ", end="")
    print(" | ".join(f"F1 {n}" for n in NAMES) + " |")
    print("|---|---:|" + "---:|" * 6)
    for tag, row in results["tags"].items():
        auc = " | ".join(f"{row[n][0]:.3f}" for n in NAMES)
        f1 = " | ".join(f"{row[n][1]:.3f}" for n in NAMES)
        print(f"| {tag} | {row['positives'][0]}/{row['positives'][1]} | {auc} | {f1} |")


def macro(results: dict, name: str, index: int) -> float:
    return float(np.mean([row[name][index] for row in results["tags"].values()]))


def print_curve(all_results: dict[float, dict]) -> None:
    print("\nmacro over the corrected tags, by size of the correction set")
    print(
        "| corrected tracks | segments corrected / held out | tags | "
        + " | ".join(f"AUC {n}" for n in NAMES)
        + " | "
        + " | ".join(f"F1 {n}" for n in NAMES)
        + " | "
        + " | ".join(f"Brier {n}" for n in NAMES)
        + " |"
    )
    print("|---:|---:|---:|" + "---:|" * 9)
    for results in all_results.values():
        cells = [f"{macro(results, n, i):.3f}" for i in range(3) for n in NAMES]
        corrected, held = results["segments"]
        print(
            f"| {results['tracks']} | {corrected} / {held} | {len(results['tags'])} | "
            + " | ".join(cells)
            + " |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beats", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", type=Path, help="a trap weights file (default: shipped)")
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    project = prepare(args.beats, args.out, args.weights)
    catalogue = load_catalogue(project, args.out / "beats")
    print(
        f"{len(catalogue.segment_ids)} segments of {len(set(catalogue.tracks))} tracks, "
        f"tagged by {catalogue.embedding}"
    )
    all_results = {}
    for fraction in args.fractions:
        all_results[fraction] = evaluate(catalogue, fraction, args.seed, args.out)
        print(
            f"corrected {fraction:.0%} of the tracks: learned in "
            f"{all_results[fraction]['learn_seconds']:.0f} s, "
            f"{all_results[fraction]['prior_tags']} probe(s) from trap's probabilities"
        )
    print_tags(all_results[max(all_results)])
    print_curve(all_results)
    (args.out / "results.json").write_text(json.dumps(all_results, indent=1, default=str))


if __name__ == "__main__":
    main()
