"""Search benchmark: exact (numpy) vs approximate indexes on random 512-d unit vectors.

Run: .venv/bin/python bench/search_bench.py [--sizes 40000 400000] [--queries 200] [--seed 0]

The data is synthetic: seeded Gaussian rows normalised to unit length, the queries drawn the
same way. Random high-dimensional vectors have no neighbourhood structure, the hardest case
for an approximate index (real embeddings cluster), so recall here is a floor.

For each size, side by side in one run: Curator's ExactIndex (the baseline) and
ApproximateIndex (faiss 8-bit scalar-quantiser scan, 4 x k candidates re-ranked exactly),
each over `--queries` single queries: build time, latency median and 95th percentile, the
speed-up over exact, recall@10 against exact, and the bytes the index holds. Rivals on the
first 50 queries: usearch's brute-force scan of 8-bit rows (its quantised exact mode, no
re-rank) at every size, and the graph indexes (faiss HNSW, usearch HNSW) at sizes up to
`--graph-max` (building them takes minutes beyond on 2 cores). It also says which index
`[search] index = "auto"` picks at each size. Targets: 40,000 exact under 50 ms median;
400,000 under 300 ms with the index picked by default, recall@10 at least 0.95.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from curator.search.index import ApproximateIndex, ExactIndex, choose_kind, normalised
from curator.settings import SearchSettings

DIM, K, RIVAL_QUERIES = 512, 10, 50


@dataclass
class Row:
    size: int
    name: str
    build_s: float
    median_ms: float
    p95_ms: float
    recall: float
    index_mb: float
    queries: int


def unit_rows(rng: np.random.Generator, count: int) -> np.ndarray:
    rows = np.empty((count, DIM), np.float32)
    for start in range(0, count, 50_000):
        block = rng.standard_normal((min(50_000, count - start), DIM), dtype=np.float32)
        rows[start : start + len(block)] = normalised(block)
    return rows


def timed(search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray) -> tuple[list, list]:
    seconds, found = [], []
    for query in queries:
        start = time.perf_counter()
        found.append(search(query))
        seconds.append(time.perf_counter() - start)
    return seconds, found


def recall(found: list[np.ndarray], truth: list[np.ndarray]) -> float:
    # Rivals answer only the first queries: zip stops at theirs.
    pairs = zip(found, truth, strict=False)
    return float(np.mean([len(set(f[:K]) & set(t[:K])) / K for f, t in pairs]))


def row(size, name, build, seconds, found, truth, nbytes) -> Row:
    ms = np.array(seconds) * 1000
    return Row(
        size,
        name,
        build,
        float(np.median(ms)),
        float(np.percentile(ms, 95)),
        recall(found, truth),
        nbytes / 2**20,
        len(seconds),
    )


def bench_size(size: int, queries: np.ndarray, rng: np.random.Generator, graph_max: int) -> list:
    start = time.perf_counter()
    vectors = unit_rows(rng, size)
    print(f"\n{size:,} rows generated in {time.perf_counter() - start:.1f} s", flush=True)
    rows = []
    exact = ExactIndex(vectors)
    seconds, truth = timed(lambda q: exact.search(q, K)[1][0], queries)
    rows.append(row(size, "numpy exact", 0.0, seconds, truth, truth, vectors.nbytes))
    start = time.perf_counter()
    approximate = ApproximateIndex.build(vectors)
    build = time.perf_counter() - start
    seconds, found = timed(lambda q: approximate.search(q, K)[1][0], queries)
    rows.append(row(size, "faiss SQ8 + exact re-rank", build, seconds, found, truth, size * DIM))
    rows.append(usearch_scan(vectors, queries[:RIVAL_QUERIES], truth))
    if size <= graph_max:
        rows.append(faiss_hnsw(vectors, queries[:RIVAL_QUERIES], truth))
        rows.append(usearch_hnsw(vectors, queries[:RIVAL_QUERIES], truth))
    for r in rows:
        r.size = size
        print_row(r, rows[0])
    return rows


def usearch_scan(vectors: np.ndarray, queries: np.ndarray, truth: list) -> Row:
    from usearch.index import search

    start = time.perf_counter()
    scale = 127 / float(np.abs(vectors).max())
    codes = np.round(vectors * scale).astype(np.int8)
    build = time.perf_counter() - start

    def find(query: np.ndarray) -> np.ndarray:
        q = np.round(query * scale).astype(np.int8)
        return np.asarray(search(codes, q, K, "ip", exact=True).keys)

    seconds, found = timed(find, queries)
    return row(0, "usearch i8 brute force", build, seconds, found, truth, codes.nbytes)


def faiss_hnsw(vectors: np.ndarray, queries: np.ndarray, truth: list) -> Row:
    import faiss

    start = time.perf_counter()
    index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 64
    index.add(vectors)
    build = time.perf_counter() - start
    index.hnsw.efSearch = 256
    seconds, found = timed(lambda q: index.search(q[None], K)[1][0], queries)
    graph = len(vectors) * 32 * 2 * 4  # about M * 2 links of 4 bytes per row at level 0
    return row(0, "faiss HNSW M32 ef256", build, seconds, found, truth, vectors.nbytes + graph)


def usearch_hnsw(vectors: np.ndarray, queries: np.ndarray, truth: list) -> Row:
    from usearch.index import Index

    start = time.perf_counter()
    index = Index(ndim=DIM, metric="ip", dtype="i8", connectivity=16, expansion_add=64)
    index.add(np.arange(len(vectors)), vectors)
    build = time.perf_counter() - start
    index.expansion_search = 256
    seconds, found = timed(lambda q: np.asarray(index.search(q, K).keys), queries)
    return row(0, "usearch HNSW i8 M16 ef256", build, seconds, found, truth, index.memory_usage)


def print_row(r: Row, baseline: Row) -> None:
    print(
        f"  {r.name:28s} build {r.build_s:6.1f} s  median {r.median_ms:7.1f} ms  "
        f"p95 {r.p95_ms:7.1f} ms  x{baseline.median_ms / r.median_ms:5.2f} vs exact  "
        f"recall@10 {r.recall:.3f}  index {r.index_mb:6.0f} MB  ({r.queries} queries)",
        flush=True,
    )


def check_targets(size: int, picked: Row, exact: Row) -> None:
    """The issue's targets, reported (never raised): timing depends on the machine's load."""
    if size == 40_000:
        verdict = "PASS" if exact.median_ms < 50 else "FAIL"
        print(f"  target 40,000 exact under 50 ms median: {exact.median_ms:.1f} ms {verdict}")
    if size == 400_000:
        ok = picked.median_ms < 300 and picked.recall >= 0.95
        print(
            f"  target 400,000 under 300 ms with recall@10 >= 0.95 ({picked.name}): "
            f"{picked.median_ms:.1f} ms, {picked.recall:.3f} {'PASS' if ok else 'FAIL'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[40_000, 400_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--graph-max", type=int, default=40_000)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    queries = unit_rows(rng, args.queries)
    print(f"Synthetic data: random {DIM}-d unit vectors (seed {args.seed}); {args.queries} queries")
    settings = SearchSettings()
    for size in args.sizes:
        rows = bench_size(size, queries, rng, args.graph_max)
        chosen = choose_kind(size, settings.index, settings.approximate_from)
        print(f"  [search] index = {settings.index!r} picks {chosen} at {size:,} rows")
        check_targets(size, rows[0] if chosen == "exact" else rows[1], rows[0])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"\npeak memory of the process: {peak:,.0f} MB")


if __name__ == "__main__":
    main()
