"""Vector indexes over one embedding model's rows: exact (numpy) and approximate (faiss).

Both search unit rows by inner product (cosine) and return row positions; the caller maps
positions to segment ids. Which one a catalogue gets depends on its size (`choose_kind`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

KINDS = ("auto", "exact", "approximate")
# The scores held at once while scanning (rows x queries float32): the memory bound of
# exact search, whatever the catalogue's size. One query over 400,000 rows needs 1.6 MB.
SCORE_BYTES = 64 << 20
# Approximate search re-ranks this many times `k` candidates exactly (faiss's k_factor):
# 4 kept recall@10 at 1.0 on random 512-d vectors in bench/search_bench.py.
RERANK_FACTOR = 4


class VectorIndex(Protocol):
    """What search needs of an index: its kind, its size, and the best rows for queries."""

    kind: str

    def __len__(self) -> int: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, positions), each (queries, min(k, rows)), best first."""
        ...


def normalised(vectors: np.ndarray) -> np.ndarray:
    """Float32 rows of unit length (a zero row stays zero), so inner product is cosine."""
    rows = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


def choose_kind(rows: int, requested: str, approximate_from: int) -> str:
    """ "exact" or "approximate": as requested, or by catalogue size when "auto"."""
    if requested not in KINDS:
        raise ValueError(f"index must be one of {', '.join(KINDS)}, got {requested!r}")
    if requested != "auto":
        return requested
    return "approximate" if rows >= approximate_from else "exact"


class ExactIndex:
    """Every row scored: blocked matrix products, top-k by argpartition.

    `vectors` may be a memory map: only one block of scores is held at a time.
    """

    kind = "exact"

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def __len__(self) -> int:
        return len(self.vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        k = min(k, len(self.vectors))
        best = np.full((len(queries), 0), -np.inf, np.float32), np.zeros((len(queries), 0), int)
        if k <= 0:
            return best
        rows = max(1024, SCORE_BYTES // (4 * len(queries)))
        for start in range(0, len(self.vectors), rows):
            block = np.asarray(self.vectors[start : start + rows]) @ queries.T  # (rows, queries)
            scores, positions = top_k(block.T, k)
            best = merge_top_k(best, (scores, positions + start), k)
        return best


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `scores`, its k highest values and their columns, best first."""
    k = min(k, scores.shape[1])
    if k < scores.shape[1]:
        columns = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        columns = np.broadcast_to(np.arange(k), (len(scores), k))
    chosen = np.take_along_axis(scores, columns, axis=1)
    order = np.argsort(-chosen, axis=1, kind="stable")
    return np.take_along_axis(chosen, order, axis=1), np.take_along_axis(columns, order, axis=1)


def merge_top_k(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray]:
    scores = np.concatenate([a[0], b[0]], axis=1)
    positions = np.concatenate([a[1], b[1]], axis=1)
    best, columns = top_k(scores, k)
    return best, np.take_along_axis(positions, columns, axis=1)


class ApproximateIndex:
    """faiss's 8-bit scalar quantiser scanned for candidates, re-ranked exactly.

    Scanning a byte per value reads a quarter of what exact search reads; the
    RERANK_FACTOR * k best candidates are then scored with the float rows, so the scores
    returned are exact cosines. bench/search_bench.py says why not a graph index (HNSW):
    docs/search.md.
    """

    kind = "approximate"

    def __init__(self, vectors: np.ndarray, codes: Any) -> None:
        self.vectors = vectors
        self.codes = codes  # a faiss.IndexScalarQuantizer holding the same rows, in order

    @classmethod
    def build(cls, vectors: np.ndarray) -> ApproximateIndex:
        import faiss

        codes = faiss.IndexScalarQuantizer(
            vectors.shape[1], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        # The quantiser learns each dimension's range; unit rows keep every value in [-1, 1],
        # so rows added later that fall outside are clipped, and the re-rank corrects that.
        codes.train(np.asarray(vectors[:200_000], dtype=np.float32))
        index = cls(vectors, codes)
        index.add_codes(0)
        return index

    def add_codes(self, start: int) -> None:
        """Quantise rows `start`... of `vectors` (rows appended since the codes were made)."""
        for first in range(start, len(self.vectors), 65_536):
            self.codes.add(np.ascontiguousarray(self.vectors[first : first + 65_536]))

    def __len__(self) -> int:
        return int(self.codes.ntotal)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(k, len(self))
        if k <= 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), int)
        _, candidates = self.codes.search(queries, min(len(self), k * RERANK_FACTOR))
        best = []
        for query, found in zip(queries, candidates, strict=True):
            found = np.sort(found[found >= 0])  # rows read in file order from a memory map
            scores, columns = top_k((np.asarray(self.vectors[found]) @ query)[None], k)
            best.append((scores[0], found[columns[0]]))
        return np.stack([s for s, _ in best]), np.stack([p for _, p in best])

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self.codes, str(path))

    @classmethod
    def load(cls, vectors: np.ndarray, path: Path) -> ApproximateIndex:
        import faiss

        return cls(vectors, faiss.read_index(str(path)))
