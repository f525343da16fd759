"""Near-duplicates: segments of different tracks that share a loop or a sample.

A shared drum loop or sample puts the very same sounds at the same spacing into two mixes,
under different bass and melodies. Spectral peaks of those sounds survive the mixing, so each
segment is reduced to landmarks (Shazam-style: pairs of spectral peaks, hashed as their two
frequencies and the time between them), and two segments share a loop when many landmarks
agree on one time offset. Music that is merely of the same style (same tempo, same kind of
kit, same instruments) shares few landmarks at any one offset: its sounds differ in detail.

Cached embeddings were the first idea (docs/duplicates.md has the measurement): the trap
tagger's embedding puts a beat and another beat built on its drum loop no closer than two
beats of the same genre, so embeddings are not used to decide.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import maximum_filter, median_filter

from curator.catalogue.audio import decode_window
from curator.duplicates.finding import Finding
from curator.duplicates.groups import components
from curator.errors import AudioError
from curator.project import Project
from curator.storage.duplicates import DuplicateGroup, duplicate_groups

RATE = 11025
FFT = 1024
HOP = 256  # 23 ms
PEAK_NEIGHBOURHOOD = (15, 11)  # frequency bins, frames: a peak is the loudest around it
PEAKS_PER_SECOND = 30
FAN_OUT = 5  # landmarks per anchor peak: its next peaks in the target zone
MAX_DT = 63  # frames (1.5 s)
MAX_DF = 127  # bins
# A landmark found more often than this in the catalogue says nothing (a plain hat on a grid).
COMMON_HASH_OCCURRENCES = 60
# The share of the smaller segment's landmarks that must agree on one offset.
NEAR_MIN_SHARE = 0.012
METHOD = "landmarks-1"


@dataclass(frozen=True)
class Landmarks:
    """A segment's landmark hashes and the frame of each one's anchor peak."""

    hashes: np.ndarray  # uint32
    frames: np.ndarray  # int32


def landmarks(audio: np.ndarray) -> Landmarks:
    """Landmarks of mono audio at RATE, from its hits rather than its held notes."""
    spectrum = _log_spectrogram(audio)
    # What rises above its own last third of a second: drum hits and note onsets. Held
    # notes and pads, which differ between the two beats around a shared loop, fall away.
    spectrum = np.maximum(spectrum - median_filter(spectrum, size=(1, 15)), 0)
    bins, frames = _peaks(spectrum)
    return _pairs(bins, frames)


def _log_spectrogram(audio: np.ndarray) -> np.ndarray:
    count = 1 + max(0, len(audio) - FFT) // HOP
    if len(audio) < FFT:
        return np.zeros((FFT // 2 + 1, 0))
    index = np.arange(FFT)[None, :] + HOP * np.arange(count)[:, None]
    frames = audio[index] * np.hanning(FFT)
    return np.log1p(1000 * np.abs(np.fft.rfft(frames, axis=1))).T


def _peaks(spectrum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bins, frames) of the loudest local maxima, about PEAKS_PER_SECOND of them, in time order."""
    if spectrum.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    local = (spectrum == maximum_filter(spectrum, size=PEAK_NEIGHBOURHOOD)) & (spectrum > 0)
    bins, frames = np.nonzero(local)
    keep = round(PEAKS_PER_SECOND * spectrum.shape[1] * HOP / RATE)
    if len(bins) > keep:
        strongest = np.argsort(spectrum[bins, frames])[-keep:]
        bins, frames = bins[strongest], frames[strongest]
    order = np.lexsort((bins, frames))
    return bins[order], frames[order]


def _pairs(bins: np.ndarray, frames: np.ndarray) -> Landmarks:
    hashes, anchors = [], []
    for step in range(1, FAN_OUT * 3):
        if step >= len(bins):
            break
        dt = frames[step:] - frames[:-step]
        df = bins[step:] - bins[:-step]
        ok = (dt > 0) & (dt <= MAX_DT) & (np.abs(df) <= MAX_DF)
        hashes.append((bins[:-step][ok] << 14) | ((df[ok] + MAX_DF) << 6) | dt[ok])
        anchors.append(frames[:-step][ok])
    if not hashes:
        return Landmarks(np.empty(0, np.uint32), np.empty(0, np.int32))
    return Landmarks(
        np.concatenate(hashes).astype(np.uint32), np.concatenate(anchors).astype(np.int32)
    )


def segment_landmarks(path: str, start: float, duration: float) -> Landmarks:
    """Decode one segment's window (mono, RATE) and take its landmarks."""
    audio = decode_window(Path(path), start, duration, sample_rate=RATE, channels=1)[:, 0]
    return landmarks(audio)


def shared_offsets(
    found: list[Landmarks], unit: list[str]
) -> dict[tuple[int, int], tuple[int, int]]:
    """(i, j) -> (most landmarks agreeing on one offset, that offset in frames), for segments
    of different units that share any landmark."""
    hashes = np.concatenate([f.hashes for f in found])
    owner = np.repeat(np.arange(len(found)), [len(f.hashes) for f in found])
    frame = np.concatenate([f.frames for f in found])
    order = np.argsort(hashes, kind="stable")
    hashes, owner, frame = hashes[order], owner[order], frame[order]
    starts = np.flatnonzero(np.r_[True, hashes[1:] != hashes[:-1]])
    sizes = np.diff(np.r_[starts, len(hashes)])
    keys = []
    for size in np.unique(sizes):
        if size < 2 or size > COMMON_HASH_OCCURRENCES:
            continue
        first, second = np.triu_indices(int(size), 1)
        at = starts[sizes == size][:, None]
        a, b = owner[at + first].ravel(), owner[at + second].ravel()
        dt = (frame[at + second] - frame[at + first]).ravel()
        keys.append(np.stack([a, b, dt]))
    if not keys:
        return {}
    a, b, dt = np.concatenate(keys, axis=1)
    swap = a > b
    a, b, dt = np.where(swap, b, a), np.where(swap, a, b), np.where(swap, -dt, dt)
    units = np.array(unit, dtype=object)
    apart = units[a] != units[b]
    a, b, dt = a[apart], b[apart], dt[apart]
    n = len(found)
    shift = int(np.abs(dt).max(initial=0)) + 1
    cells, votes = np.unique((a * n + b) * (2 * shift) + dt + shift, return_counts=True)
    pair = cells // (2 * shift)
    best: dict[tuple[int, int], tuple[int, int]] = {}
    for key, count, cell in zip(pair.tolist(), votes.tolist(), cells.tolist(), strict=True):
        i, j = divmod(key, n)
        if count > best.get((i, j), (0, 0))[0]:
            best[(i, j)] = (count, cell % (2 * shift) - shift)
    return best


def find_near(
    project: Project,
    threshold: float | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> Finding:
    """Group segments of different tracks whose landmarks agree on one offset."""
    threshold = NEAR_MIN_SHARE if threshold is None else threshold
    how = (
        f"{METHOD}: at least {threshold:.1%} of the smaller segment's spectral landmarks "
        "agree on one time offset"
    )
    every = project.catalog.segment_rows()
    found, failed = _all_landmarks(every, progress)
    rows = [r for r, f in zip(every, found, strict=True) if f is not None and len(f.hashes)]
    marks = [f for f in found if f is not None and len(f.hashes)]
    same = {s: g.group_id for g in duplicate_groups(project.catalog, "same") for s in g.members}
    unit = [same.get(r["id"], r["track_id"]) for r in rows]
    pairs: list[dict[str, Any]] = []
    for (i, j), (votes, offset) in shared_offsets(marks, unit).items():
        share = votes / min(len(marks[i].hashes), len(marks[j].hashes))
        if share >= threshold:
            pairs.append(
                {
                    "segments": [rows[i]["id"], rows[j]["id"]],
                    "shared_landmarks": votes,
                    "share": round(share, 4),
                    "offset_seconds": round(offset * HOP / RATE, 2),
                }
            )
    groups = [
        DuplicateGroup(
            "near",
            members[0],
            members,
            {"method": METHOD, "pairs": [p for p in pairs if p["segments"][0] in members]},
        )
        for members in components(tuple(p["segments"]) for p in pairs)
    ]
    notes = [f"not compared: {path}: {reason}" for path, reason in failed]
    return Finding("near", groups, len(pairs), how, notes=notes)


def _all_landmarks(
    rows: list[dict], progress: Callable[[int, int, str], None] | None
) -> tuple[list[Landmarks | None], list[tuple[str, str]]]:
    failed: list[tuple[str, str]] = []

    def one(row: dict) -> Landmarks | None:
        try:
            return segment_landmarks(row["source"], row["start"], row["duration"])
        except AudioError as exc:
            failed.append((row["source"], exc.reason))
            return None

    with ThreadPoolExecutor(max_workers=2) as executor:
        found = []
        for done, result in enumerate(executor.map(one, rows), start=1):
            found.append(result)
            if progress:
                progress(done, len(rows), "")
    return found, failed
