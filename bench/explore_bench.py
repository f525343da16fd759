"""What one run of the Explore page costs on a large catalogue, step by step: reading the
embeddings, the cache key, a cached map, each point's details, a colouring and the figure;
and drawing the map with PCA and (optionally) UMAP, the steps the cache saves.

    .venv/bin/python bench/explore_bench.py [--segments 40000] [--dims 512] [--umap]

Synthetic catalogue (no audio): segments in clusters of random unit vectors, five model
labels each. Ratios are against reading the embeddings, measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from synthetic import add_segments, model_label_columns

from curator.charts.explore import segment_map_figure
from curator.explore import map as explore_map
from curator.explore.points import by_label_source, by_tag, map_points, points_stamp
from curator.project import Project, init_project
from curator.storage import RunRecord
from curator.storage.explore import usable_embeddings

MODEL = "bench:embedding"
TAGS = ["808", "snare", "hi-hat", "clap", "piano", "strings", "synth bells", "open hat"]


def seed_catalogue(project: Project, segments: int, dims: int, seed: int) -> None:
    rows = add_segments(project, segments, 90.0, 30.0)
    ids = np.array([r.id for r in rows], dtype=object)
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dims))
    vectors = centres[rng.integers(0, 40, len(ids))] + 0.5 * rng.standard_normal((len(ids), dims))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    tags = [("instruments", t) for t in TAGS]
    run_id = project.catalog.start_run(
        RunRecord("tag", "bench", "1", {}, "bench", None, tags, False, "bench")
    )
    chosen = np.argsort(rng.random((len(ids), len(TAGS))), axis=1)[:, :5]
    rows_at = np.repeat(np.arange(len(ids)), 5)
    project.catalog.merge_columns(
        run_id,
        "bench",
        {
            "embeddings": {
                "segment_id": ids,
                "model": np.full(len(ids), MODEL, dtype=object),
                "run_id": np.full(len(ids), run_id),
                "vector": vectors.astype(np.float32),
            },
            "labels": model_label_columns(
                ids[rows_at],
                "instruments",
                [TAGS[c] for c in chosen.ravel()],
                "bench@1",
                run_id,
                rng.uniform(0.5, 1.0, len(rows_at)),
            ),
        },
        list(ids),
    )
    project.catalog.set_run_status(run_id, "finished")


def timed(step: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """The median of `repeat` runs, in seconds, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=40_000)
    parser.add_argument("--dims", type=int, default=512)
    parser.add_argument("--umap", action="store_true", help="also draw with UMAP (minutes)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        project = init_project(Path(folder) / "project")
        seed_catalogue(project, options.segments, options.dims, seed=0)
        figures = measure(project, options.umap)
    base = figures["read embeddings"]
    print(f"{options.segments} segments, {options.dims}-d embeddings")
    print("| step | seconds | x reading the embeddings |\n|---|---:|---:|")
    for step, seconds in figures.items():
        print(f"| {step} | {seconds:.3f} | {seconds / base:.1f} |")


def measure(project: Project, with_umap: bool) -> dict[str, float]:
    """Seconds per step. "rerun" steps run on every run of the page; the page keeps the map
    and the points in memory by their stamps, so the "after a change" steps run only when
    embeddings or labels changed (and "draw" only when no cached map fits)."""
    figures: dict[str, float] = {}
    figures["read embeddings"], (_, vectors) = timed(
        lambda: usable_embeddings(project.catalog, MODEL)
    )
    explore_map.pca_2d(vectors[:10])  # imports scikit-learn: not the drawing's cost
    figures["draw with PCA"], _ = timed(lambda: explore_map.pca_2d(vectors), repeat=1)
    if with_umap:
        figures["draw with UMAP"], _ = timed(lambda: explore_map.umap_2d(vectors, 0), repeat=1)
    explore_map.segment_map(project, MODEL, "pca")
    figures["after a change: map from the disk cache"], drawn = timed(
        lambda: explore_map.segment_map(project, MODEL, "pca")
    )
    figures["after a change: points' details"], points = timed(lambda: map_points(project, drawn))
    figures["rerun: stamps (embeddings, labels)"], _ = timed(
        lambda: (explore_map.map_stamp(project, MODEL), points_stamp(project))
    )
    figures["rerun: colour by a tag"], _ = timed(
        lambda: by_tag(project, points, "instruments", "808")
    )
    figures["rerun: figure"], _ = timed(
        lambda: segment_map_figure(points, by_label_source(points), "map")
    )
    return figures


if __name__ == "__main__":
    main()
