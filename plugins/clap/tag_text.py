"""Tag embeddings: each tag's phrases embedded by the text tower, averaged, cached on disk."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from itertools import pairwise
from pathlib import Path

import numpy as np

from curator.api import Tag, Vocabulary

from .model import ClapBackend
from .windows import normalise


def tag_phrases(tag: Tag, template: str) -> list[str]:
    """The tag's name and synonyms, each put into the template."""
    return [template.replace("{}", phrase) for phrase in tag.phrases]


def embed_tags(backend: ClapBackend, tags: list[Tag], template: str, batch: int) -> np.ndarray:
    """(tags, dim): each tag's phrase embeddings averaged, then re-normalised.

    All phrases go through the text tower in one pass list so batches stay full.
    """
    phrases = [tag_phrases(tag, template) for tag in tags]
    rows = backend.embed_text([p for group in phrases for p in group], batch)
    bounds = np.cumsum([0, *(len(group) for group in phrases)])
    means = [rows[a:b].mean(axis=0) for a, b in pairwise(bounds)]
    return normalise(np.stack(means)) if means else rows


def cache_path(cache_dir: Path, model: str, vocabulary: Vocabulary, template: str) -> Path:
    """Where the tag embeddings for this model, vocabulary and template are kept."""
    key = json.dumps([model, vocabulary.fingerprint(), template])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir / "clap" / f"tag-embeddings-{digest}.npy"


def read_cached(path: Path, n_tags: int) -> np.ndarray | None:
    """The cached matrix, or None when absent or not the expected shape (then re-embed)."""
    try:
        cached = np.load(path)
    except (OSError, ValueError):
        return None
    return cached if cached.ndim == 2 and cached.shape[0] == n_tags else None


def write_cached(path: Path, matrix: np.ndarray) -> None:
    """Write atomically: a worker reading the cache never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
    with os.fdopen(handle, "wb") as out:
        np.save(out, matrix.astype(np.float32))
    os.replace(tmp, path)
