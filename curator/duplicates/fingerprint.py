"""Audio fingerprints (Chromaprint, through Debian's `fpcalc`) and matching two of them.

Chromaprint turns audio into one 32-bit code every 0.124 s, each bit a comparison of chroma
energies, so a re-encode, a gain or loudness change, an EQ or a low-pass leaves most bits as
they were. Two tracks are the same recording when, at their best alignment, few bits differ
over a long overlap. The alignment comes from the codes the two share exactly: each shared
code votes for an (offset, tempo ratio); the best few votes are then scored by their bit error
rate over the whole overlap, so trims, shifted starts and a slightly faster copy are found.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curator.errors import AudioError, CuratorError
from curator.project import Project
from curator.storage.duplicates import save_fingerprints, tracks_to_fingerprint

# The fingerprinter and its settings; a new version makes every track fingerprinted again.
METHOD = "chromaprint-2-360s-1"
# Tracks are fingerprinted from their start for at most this long: every beat we know, and a
# bounded cost for the odd hour-long mix.
MAX_SECONDS = 360
# Chromaprint's hop: 4096/3 samples at 11025 Hz.
ITEM_SECONDS = 1365 / 11025
# Tempo ratios tried when aligning: up to 4 % faster or slower, in steps a drift of half an
# item over a 3-minute overlap would reveal.
TEMPO_RATIOS = np.round(np.arange(0.96, 1.0401, 0.0025), 4)
# A code shared by more tracks than this is a silence or a plain tone: it links nothing.
COMMON_CODE_TRACKS = 50
# Tracks sharing fewer distinct codes than this are never compared closely.
MIN_SHARED_CODES = 3
# Fewer aligned seconds than this (or than 80 % of the shorter track) prove nothing.
MIN_OVERLAP_SECONDS = 10.0
# Bit error rate at or under which two tracks are the same recording: unrelated music sits
# near 0.35-0.5, re-encodes and gain changes under 0.05, a 2 % tempo change near 0.15
# (docs/duplicates.md has the measured spread).
SAME_MAX_BIT_ERROR_RATE = 0.2


class FingerprintError(AudioError):
    """fpcalc could not fingerprint a file; the message names it and says why."""


@dataclass(frozen=True)
class Fingerprint:
    """A track's codes and the seconds of audio they cover."""

    duration: float
    codes: np.ndarray  # uint32, one per ITEM_SECONDS


@dataclass
class FingerprintSummary:
    """What one pass of fingerprinting did; `failed` holds (path, reason)."""

    done: int = 0
    already: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    interrupted: bool = False


def fpcalc_path() -> str:
    """The fpcalc executable, or a CuratorError saying how to install it."""
    found = shutil.which("fpcalc")
    if found is None:
        raise CuratorError(
            "fpcalc (Chromaprint) is not installed: apt-get install libchromaprint-tools "
            "(scripts/system-deps.sh installs it)"
        )
    return found


def fingerprint_file(path: Path, fpcalc: str | None = None) -> Fingerprint:
    """Fingerprint the first MAX_SECONDS of a file; FingerprintError says why it could not."""
    command = [fpcalc or fpcalc_path(), "-raw", "-json", "-length", str(MAX_SECONDS), str(path)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired as exc:
        raise FingerprintError(path, "fpcalc took over 5 minutes") from exc
    # fpcalc exits non-zero for a decoding error even after printing a usable fingerprint.
    found = _parse(done.stdout)
    if found is None or len(found.codes) == 0:
        reason = done.stderr.strip().removeprefix("ERROR: ") or "no fingerprint"
        raise FingerprintError(path, f"cannot be fingerprinted ({reason})")
    return found


def _parse(stdout: str) -> Fingerprint | None:
    try:
        data = json.loads(stdout)
        codes = np.asarray(data["fingerprint"], dtype=np.int64).astype(np.uint32)
        return Fingerprint(float(data.get("duration") or 0.0), codes)
    except (ValueError, KeyError, TypeError):
        return None


def fingerprint_missing(
    project: Project,
    progress: Callable[[int, int, str], None] | None = None,
    commit_every: int = 25,
) -> FingerprintSummary:
    """Fingerprint every present track that has no fingerprint by METHOD yet.

    Results are saved every `commit_every` tracks, so an interrupted pass keeps what it
    finished and the next one does the rest. A file that fails is listed with its reason
    and left without a fingerprint (tried again next time); the others go on.
    """
    fpcalc = fpcalc_path()
    pending = tracks_to_fingerprint(project.catalog, METHOD)
    summary = FingerprintSummary()
    made: list[tuple[str, Fingerprint]] = []
    workers = project.settings.ingest.workers or 2
    executor = ThreadPoolExecutor(max_workers=workers)
    try:
        results = executor.map(lambda tp: _try_fingerprint(tp[1], fpcalc), pending)
        for done, ((track_id, path), found) in enumerate(
            zip(pending, results, strict=True), start=1
        ):
            if isinstance(found, Fingerprint):
                made.append((track_id, found))
            else:
                summary.failed.append((path, found))
            if len(made) >= commit_every:
                summary.done += _save(project, made)
            if progress:
                progress(done, len(pending), path)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        summary.done += _save(project, made)
    return summary


def _try_fingerprint(path: str, fpcalc: str) -> Fingerprint | str:
    try:
        return fingerprint_file(Path(path), fpcalc)
    except AudioError as exc:
        return exc.reason


def _save(project: Project, made: list[tuple[str, Fingerprint]]) -> int:
    count = len(made)
    if made:
        save_fingerprints(
            project.catalog,
            METHOD,
            [t for t, _ in made],
            [f.duration for _, f in made],
            [f.codes for _, f in made],
        )
        made.clear()
    return count


# ---------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class Alignment:
    """Where track b sits in track a: b's item i is a's item (i - offset) / tempo."""

    bit_error_rate: float
    offset: int  # in items: b's first item is a's item -offset (positive: b starts later)
    tempo: float  # a's items per b item: 1.02 when b plays 2 % faster
    overlap: int  # items compared

    @property
    def overlap_seconds(self) -> float:
        return self.overlap * ITEM_SECONDS

    @property
    def offset_seconds(self) -> float:
        """Seconds into a at which b starts (negative: b starts before a)."""
        return -self.offset * ITEM_SECONDS


_POPCOUNT16 = np.array([bin(i).count("1") for i in range(1 << 16)], dtype=np.uint8)


def bit_errors(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint32 (the differing bits of two codes XORed)."""
    x = x.astype(np.uint32, copy=False)
    return _POPCOUNT16[x & 0xFFFF].astype(np.int32) + _POPCOUNT16[x >> 16]


def candidate_pairs(codes: Sequence[np.ndarray]) -> list[tuple[int, int]]:
    """Pairs (i < j) of fingerprints sharing at least MIN_SHARED_CODES distinct codes.

    An inverted index in numpy: every distinct code of every track, sorted, so tracks that
    share a code sit side by side; codes shared by too many tracks are dropped.
    """
    distinct = [np.unique(c) for c in codes]
    if not distinct:
        return []
    values = np.concatenate(distinct)
    owners = np.repeat(np.arange(len(distinct)), [len(d) for d in distinct])
    order = np.argsort(values, kind="stable")
    values, owners = values[order], owners[order]
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    sizes = np.diff(np.r_[starts, len(values)])
    pair_keys = [
        _pairs_in_runs(owners, starts[sizes == k], k, len(codes))
        for k in range(2, COMMON_CODE_TRACKS + 1)
        if np.any(sizes == k)
    ]
    if not pair_keys:
        return []
    keys, counts = np.unique(np.concatenate(pair_keys), return_counts=True)
    keys = keys[counts >= MIN_SHARED_CODES]
    return [(int(k // len(codes)), int(k % len(codes))) for k in keys]


def _pairs_in_runs(owners: np.ndarray, starts: np.ndarray, size: int, n: int) -> np.ndarray:
    # Runs of one code shared by `size` tracks: every pair within each run, as i * n + j.
    first, second = np.triu_indices(size, 1)
    a, b = owners[starts[:, None] + first], owners[starts[:, None] + second]
    return (np.minimum(a, b) * n + np.maximum(a, b)).ravel()


def align(a: np.ndarray, b: np.ndarray, peaks: int = 4) -> Alignment | None:
    """The best alignment of b against a, or None when they share no code to start from."""
    votes = _votes(a, b)
    if votes is None:
        return None
    best: Alignment | None = None
    for tempo, offset in votes[:peaks]:
        for nudge in (-1, 0, 1):
            found = score_alignment(a, b, offset + nudge, tempo)
            if found is not None and (best is None or found.bit_error_rate < best.bit_error_rate):
                best = found
    return best


def _votes(a: np.ndarray, b: np.ndarray) -> list[tuple[float, int]] | None:
    """(tempo, offset) pairs, most voted first, from items where a and b hold the same code."""
    ia, ib = _shared_items(a, b)
    if len(ia) == 0:
        return None
    tallies = []
    for tempo in TEMPO_RATIOS:
        offsets = np.round(ib - ia / tempo).astype(np.int64)
        lowest = int(offsets.min())
        counts = np.bincount(offsets - lowest)
        # Neighbouring offsets pool their votes: a code can land one item early or late.
        pooled = counts + np.r_[0, counts[:-1]]
        top = int(np.argmax(pooled))
        tallies.append((int(pooled[top]), tempo != 1.0, float(tempo), top + lowest))
    tallies.sort(key=lambda t: (-t[0], t[1]))
    return [(tempo, offset) for _, _, tempo, offset in tallies]


def _shared_items(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Item positions (in a, in b) of every pair of equal codes, for codes rare in both."""
    order = np.argsort(b, kind="stable")
    sorted_b = b[order]
    low = np.searchsorted(sorted_b, a, "left")
    in_b = np.searchsorted(sorted_b, a, "right") - low
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    # A code repeated many times (a loop) votes for every bar's offset: keep the rare ones.
    keep = np.flatnonzero((in_b > 0) & (in_b * counts[inverse] <= 16))
    if len(keep) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    runs = in_b[keep]
    starts = np.repeat(low[keep] - np.cumsum(runs) + runs, runs)
    return np.repeat(keep, runs), order[starts + np.arange(runs.sum())]


def score_alignment(
    a: np.ndarray, b: np.ndarray, offset: int, tempo: float = 1.0
) -> Alignment | None:
    """The bit error rate of b against a when b's item i lies at a's item
    (i - offset) * tempo; None when the overlap is too short to prove anything."""
    items_b = np.arange(len(b))
    items_a = np.round((items_b - offset) * tempo).astype(np.int64)
    inside = (items_a >= 0) & (items_a < len(a))
    overlap = int(inside.sum())
    shorter = min(len(a), len(b))
    if overlap < min(MIN_OVERLAP_SECONDS / ITEM_SECONDS, 0.8 * shorter) or overlap == 0:
        return None
    errors = bit_errors(a[items_a[inside]] ^ b[items_b[inside]])
    return Alignment(float(errors.mean() / 32), offset, tempo, overlap)
