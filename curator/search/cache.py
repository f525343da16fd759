"""The index of one embedding model, kept on disk in the project and never stale.

Each open compares the catalogue's (segment, run) pairs for the model with the cached ones:
new segments are appended (vectors and, for the approximate index, their codes); a segment
removed, or re-embedded with different values, rebuilds the index from the catalogue. A
re-run that wrote the same values again only updates the recorded runs.

Files under `search/<model>/`: `vectors.f32` (unit rows, appended in place, read as a
memory map), `codes-<generation>.faiss` (the approximate index's codes, rewritten whole),
and `keys.npz` (segment ids, runs, size, generation), written last and atomically: it is
the commit point, so rows past its count, left by an interrupted update, are ignored and
cut off by the next one. A lock file keeps two processes from updating at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from curator.errors import CuratorError
from curator.files import replace_atomically
from curator.project import Project
from curator.search.index import (
    ApproximateIndex,
    ExactIndex,
    VectorIndex,
    choose_kind,
    normalised,
)
from curator.storage.search import embedding_versions, embeddings_of

FORMAT = 1  # change when the files change shape: older caches are then rebuilt
KEYS, VECTORS, LOCK = "keys.npz", "vectors.f32", "lock"


@dataclass
class CachedIndex:
    """An up-to-date index of `model`, with the segment id of each of its rows."""

    model: str
    ids: list[str]
    index: VectorIndex
    vectors: np.ndarray  # unit rows, in `ids` order
    updated: str  # what opening it did: "built", "added N", "unchanged", ...

    @cached_property
    def positions(self) -> dict[str, int]:
        return {segment_id: row for row, segment_id in enumerate(self.ids)}

    def vector(self, segment_id: str) -> np.ndarray | None:
        row = self.positions.get(segment_id)
        return None if row is None else np.asarray(self.vectors[row])


@dataclass
class _Keys:
    ids: list[str]
    runs: np.ndarray
    dim: int
    generation: str


def index_folder(project: Project, model: str) -> Path:
    """`search/<model>/`: the model's name made safe for a folder, plus a hash of it exactly."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-.")[:60] or "model"
    return project.search_dir / f"{safe}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"


def open_index(project: Project, model: str, kind: str, approximate_from: int) -> CachedIndex:
    """The index of `model`'s cached embeddings, brought up to date with the catalogue.

    kind: "exact", "approximate" or "auto" (approximate from `approximate_from` rows).
    """
    folder = index_folder(project, model)
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder / LOCK):
        ids, runs = embedding_versions(project.catalog, model)
        if not ids:
            raise CuratorError(
                f"no cached embeddings of {model!r} yet: run `curator tag --plugin trap` first"
            )
        keys, updated = _updated_keys(project, model, folder, ids, runs)
        vectors = _vectors(folder, keys)
        chosen = choose_kind(len(keys.ids), kind, approximate_from)
        index = _index(folder, keys, vectors, chosen)
    return CachedIndex(model, keys.ids, index, vectors, updated)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _updated_keys(
    project: Project, model: str, folder: Path, ids: list[str], runs: np.ndarray
) -> tuple[_Keys, str]:
    keys = _read_keys(folder)
    if keys is None:
        return _rebuild(project, model, folder), "built"
    cached = dict(zip(keys.ids, keys.runs.tolist(), strict=True))
    current = dict(zip(ids, runs.tolist(), strict=True))
    if cached.keys() - current.keys():
        return _rebuild(project, model, folder), "rebuilt: segments removed"
    rerun = [s for s in cached if cached[s] != current[s]]
    if rerun and not _same_vectors(project, model, folder, keys, rerun):
        return _rebuild(project, model, folder), "rebuilt: embeddings changed"
    new = [s for s in ids if s not in cached]
    if new and not _append(project, model, folder, keys, new):
        return _rebuild(project, model, folder), "rebuilt: embedding size changed"
    if not new and not rerun:
        return keys, "unchanged"
    keys.runs = np.array([current[s] for s in keys.ids], dtype=np.int64)
    _write_keys(folder, keys)
    return keys, f"added {len(new)}" if new else "unchanged (same vectors re-run)"


def _same_vectors(
    project: Project, model: str, folder: Path, keys: _Keys, segment_ids: list[str]
) -> bool:
    """Whether these segments' embeddings in the catalogue are the cached ones."""
    found, matrix = embeddings_of(project.catalog, model, segment_ids)
    if matrix.shape[1:] != (keys.dim,):
        return False
    rows = {segment_id: row for row, segment_id in enumerate(keys.ids)}
    cached = _vectors(folder, keys)[[rows[s] for s in found]]
    return bool(np.array_equal(normalised(matrix), cached))


def _append(project: Project, model: str, folder: Path, keys: _Keys, new: list[str]) -> bool:
    """Append the new segments' rows to the vectors file (False: they have another size)."""
    found, matrix = embeddings_of(project.catalog, model, new)
    if matrix.shape[1:] != (keys.dim,):
        return False
    with (folder / VECTORS).open("r+b") as handle:
        handle.truncate(len(keys.ids) * keys.dim * 4)  # what an interrupted update left
        handle.seek(0, os.SEEK_END)
        handle.write(normalised(matrix).tobytes())
    keys.ids = [*keys.ids, *found]
    return True


def _rebuild(project: Project, model: str, folder: Path) -> _Keys:
    ids, matrix = project.catalog.embeddings(model)
    rows = normalised(matrix)
    replace_atomically(folder / VECTORS, lambda path: path.write_bytes(rows.tobytes()))
    runs = dict(zip(*embedding_versions(project.catalog, model), strict=True))
    keys = _Keys(ids, np.array([runs.get(s, -1) for s in ids], np.int64), rows.shape[1], "")
    keys.generation = uuid.uuid4().hex[:12]
    for old in folder.glob("codes-*.faiss"):
        old.unlink()
    _write_keys(folder, keys)
    return keys


def _vectors(folder: Path, keys: _Keys) -> np.ndarray:
    shape = (len(keys.ids), keys.dim)
    return np.memmap(folder / VECTORS, dtype=np.float32, mode="r", shape=shape)


def _index(folder: Path, keys: _Keys, vectors: np.ndarray, kind: str) -> VectorIndex:
    if kind == "exact":
        return ExactIndex(vectors)
    path = folder / f"codes-{keys.generation}.faiss"
    index = ApproximateIndex.load(vectors, path) if path.is_file() else None
    if index is None or len(index) > len(vectors):
        index = ApproximateIndex.build(vectors)
    elif len(index) < len(vectors):
        index.add_codes(len(index))
    else:
        return index
    replace_atomically(path, index.save, path.with_name(f".{path.name}.partial"))
    return index


def _read_keys(folder: Path) -> _Keys | None:
    path = folder / KEYS
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            keys = _Keys(
                [str(s) for s in data["ids"]],
                np.asarray(data["runs"], np.int64),
                int(meta["dim"]),
                str(meta["generation"]),
            )
    except (OSError, ValueError, KeyError):
        return None
    if meta.get("format") != FORMAT or len(keys.runs) != len(keys.ids):
        return None
    size = (folder / VECTORS).stat().st_size if (folder / VECTORS).is_file() else -1
    return keys if size >= len(keys.ids) * keys.dim * 4 else None


def _write_keys(folder: Path, keys: _Keys) -> None:
    meta = {"format": FORMAT, "dim": keys.dim, "generation": keys.generation}

    def write(path: Path) -> None:
        with path.open("wb") as handle:
            np.savez(
                handle, ids=np.array(keys.ids, dtype=str), runs=keys.runs, meta=json.dumps(meta)
            )

    replace_atomically(folder / KEYS, write)
