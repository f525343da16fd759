"""The map: every usable segment's cached embedding projected to 2-D (UMAP, or PCA), kept in
the project folder until the embeddings change.

UMAP keeps neighbours together (segments that sound alike land side by side, loops and
styles form islands), which is what a curator scans a map for; PCA keeps only the two
directions of largest variance, but it needs no neighbour graph and takes milliseconds, so it
draws maps of a handful of segments and is there when a curator asks for it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curator.errors import CuratorError
from curator.files import replace_atomically
from curator.project import Project
from curator.storage.explore import embeddings_stamp, usable_embeddings

METHODS = ("auto", "umap", "pca")
# Below this many segments a neighbour graph says little (and UMAP's spectral start can
# fail): "auto" draws them with PCA.
UMAP_MIN_SEGMENTS = 10
UMAP_NEIGHBOURS = 15
UMAP_MIN_DIST = 0.1
MAPS_FOLDER = Path("cache") / "maps"
# Part of every cache key: a change to how maps are drawn makes old files stale.
DRAWING = f"v1 umap n_neighbors={UMAP_NEIGHBOURS} min_dist={UMAP_MIN_DIST} cosine"


@dataclass(frozen=True)
class SegmentMap:
    """2-D coordinates of segments' embeddings of one model.

    method: what drew it ("umap" or "pca"); from_cache: read from the project's map cache.
    """

    model: str
    method: str
    segment_ids: tuple[str, ...]
    coordinates: np.ndarray  # (segments, 2)
    from_cache: bool = False


def segment_map(project: Project, model: str, method: str = "auto", seed: int = 0) -> SegmentMap:
    """The map of `model`'s embeddings of the usable segments: from the cache when the same
    segments have the same vectors, else drawn (seeded, so the same input gives the same
    map) and cached."""
    if method not in METHODS:
        raise CuratorError(f"map method must be one of {', '.join(METHODS)}, not {method!r}")
    ids, vectors = usable_embeddings(project.catalog, model)
    if not ids:
        raise CuratorError(
            f"no usable segment has a cached embedding of {model!r}: run the tagger that "
            "keeps it first"
        )
    used = chosen_method(method, len(ids))
    key = cache_key(model, used, seed, ids, vectors)
    path = map_path(project, model, used)
    cached = read_cached(path, key, len(ids))
    if cached is not None:
        return SegmentMap(model, used, tuple(ids), cached, from_cache=True)
    coordinates = umap_2d(vectors, seed) if used == "umap" else pca_2d(vectors)
    write_cached(path, key, coordinates)
    return SegmentMap(model, used, tuple(ids), coordinates)


def map_stamp(project: Project, model: str) -> tuple[int, int, int]:
    """Changes whenever segment_map's input may have (a cheap query, for in-memory caches)."""
    return embeddings_stamp(project.catalog, model)


def chosen_method(method: str, segments: int) -> str:
    """UMAP when asked or by default, unless there are too few segments for it."""
    return "pca" if method == "pca" or segments < UMAP_MIN_SEGMENTS else "umap"


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """(segments, 2): the embeddings on their two principal axes (zeros where the vectors
    span fewer than two directions)."""
    from sklearn.decomposition import PCA

    found = np.zeros((len(vectors), 2))
    components = min(2, len(vectors), vectors.shape[1])
    if components:
        found[:, :components] = PCA(components, random_state=0).fit_transform(vectors)
    return found


def umap_2d(vectors: np.ndarray, seed: int) -> np.ndarray:
    """(segments, 2) UMAP coordinates under cosine distance, seeded (and so single-threaded:
    umap-learn gives up parallelism for a reproducible layout)."""
    import umap

    neighbours = max(2, min(UMAP_NEIGHBOURS, len(vectors) - 1))
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=neighbours,
        min_dist=UMAP_MIN_DIST,
        metric="cosine",
        random_state=seed,
        n_jobs=1,
    )
    return np.asarray(reducer.fit_transform(vectors), dtype=np.float64)


def cache_key(model: str, method: str, seed: int, ids: list[str], vectors: np.ndarray) -> str:
    """The hash of everything a map depends on: model, method, seed, segments and vectors."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{DRAWING}\n{model}\n{method}\n{seed}\n".encode())
    digest.update("\n".join(ids).encode())
    digest.update(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    return digest.hexdigest()


def map_path(project: Project, model: str, method: str) -> Path:
    """One file per model and method: a new map replaces the old one rather than piling up."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", model)[:60]
    exact = hashlib.blake2b(model.encode(), digest_size=4).hexdigest()
    return project.root / MAPS_FOLDER / f"{readable}-{exact}-{method}.npz"


def read_cached(path: Path, key: str, segments: int) -> np.ndarray | None:
    """The cached coordinates if `path` holds the map of `key`, else None."""
    try:
        with np.load(path, allow_pickle=False) as found:
            if str(found["key"]) != key or found["coordinates"].shape != (segments, 2):
                return None
            return np.asarray(found["coordinates"], dtype=np.float64)
    except (OSError, KeyError, ValueError):  # missing, or cut short by a crash elsewhere
        return None


def write_cached(path: Path, key: str, coordinates: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(temporary: Path) -> None:
        with temporary.open("wb") as out:
            np.savez(out, key=np.array(key), coordinates=coordinates)

    replace_atomically(path, write)
