"""Cutting a segment into the fixed-length windows CLAP embeds, and pooling them back."""

from __future__ import annotations

import numpy as np


def window_starts(n_samples: int, sample_rate: int, window_s: float, hop_s: float) -> list[int]:
    """Start sample of each window: every hop until a window reaches the end.

    A last window shorter than the others is kept only when it holds at least half a
    window of audio (it is padded later), or when it is the segment's only window.
    """
    window, hop = round(window_s * sample_rate), max(1, round(hop_s * sample_rate))
    starts: list[int] = []
    for start in range(0, max(n_samples, 1), hop):
        remaining = n_samples - start
        if 2 * remaining >= window or not starts:
            starts.append(start)
        if start + window >= n_samples:
            break
    return starts


def cut_windows(audio: np.ndarray, sample_rate: int, window_s: float, hop_s: float) -> np.ndarray:
    """Mono float32 `audio` as (windows, window samples), short windows padded."""
    window = round(window_s * sample_rate)
    starts = window_starts(len(audio), sample_rate, window_s, hop_s)
    return np.stack([fill_window(audio[s : s + window], window) for s in starts])


def fill_window(chunk: np.ndarray, length: int) -> np.ndarray:
    """Pad a short window to `length` the way CLAP was trained ("repeatpad").

    Repeating the audio, then zero-filling the rest, keeps a 6 s tail sounding like
    music rather than like 4 s of silence, which would pull the embedding towards "quiet".
    """
    if len(chunk) >= length:
        return chunk[:length].astype(np.float32, copy=False)
    repeats = length // len(chunk) if len(chunk) else 0
    filled = np.zeros(length, dtype=np.float32)
    filled[: repeats * len(chunk)] = np.tile(chunk, repeats)
    return filled


def pool(window_embeddings: np.ndarray, how: str) -> np.ndarray:
    """One L2-normalised float32 row from a segment's (windows, dim) embeddings."""
    pooled = window_embeddings.max(axis=0) if how == "max" else window_embeddings.mean(axis=0)
    return normalise(pooled.astype(np.float32))


def normalise(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero instead of becoming NaN)."""
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    return (rows / np.maximum(norms, 1e-12)).astype(np.float32)
