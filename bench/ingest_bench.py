"""Benchmarks for ingest: windowed vs whole-file decoding, and ingest throughput."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from curator.catalogue.audio import decode_whole, decode_window
from curator.catalogue.ingest import IngestSummary, ingest
from curator.project import init_project

RATE = 44100
TRACK_SECONDS = 240.0
WINDOW_SECONDS = 30.0
TARGET_RATIO = 5.0
SUBTYPES = {"wav": "PCM_16", "flac": "PCM_16", "mp3": "MPEG_LAYER_III", "ogg": "VORBIS"}
# Lossless formats must give the window bit for bit; lossy decoders may shift by a priming
# offset after a seek, so for them the difference is reported, not asserted.
EXACT = ("wav", "flac")
# libvorbis allocates its analysis buffer on the stack, so one big write segfaults
# (libsndfile#1095, python-soundfile#426); writing in blocks avoids it.
WRITE_BLOCK = 1 << 16
SCALE_HZ = 110.0 * 2 ** (np.array([0, 3, 5, 7, 10, 12, 15, 17, 19, 22, 24]) / 12)
NOTE_T = np.arange(int(0.6 * RATE)) / RATE


@dataclass(frozen=True)
class Sizes:
    """How much work one run does (the default run, or a smaller `--quick` one)."""

    offsets: int
    repeats: int
    beats: int


DEFAULT = Sizes(offsets=5, repeats=5, beats=40)
QUICK = Sizes(offsets=3, repeats=1, beats=10)


@dataclass(frozen=True)
class DecodeRow:
    """One format's decode timings (milliseconds) and how far the window is from the slice."""

    fmt: str
    whole_ms: float
    window_ms: float
    window_min_ms: float
    window_max_ms: float
    seek_ms: float
    max_diff: float

    @property
    def ratio(self) -> float:
        return self.whole_ms / self.window_ms

    @property
    def target(self) -> str:
        if self.fmt not in EXACT:
            return "-"
        return "PASS" if self.ratio >= TARGET_RATIO else "FAIL"


# --- synthetic audio ---------------------------------------------------------------------


def synth_music(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Stereo float32 with a beat's texture: decaying sine notes and noise-burst drums."""
    out = np.zeros((int(seconds * RATE), 2), np.float32)
    step = int(RATE * 60 / 90 / 2)  # eighth notes at 90 bpm
    for n, at in enumerate(range(0, len(out), step)):
        _mix(out, at, _note(rng), pan=rng.uniform(0.2, 0.8))
        if n % 2 == 0:
            _mix(out, at, _burst(rng), pan=0.5)
    # A noise floor keeps the gaps from being digital silence, which compresses unrealistically.
    out += rng.standard_normal(out.shape, dtype=np.float32) * 0.003
    return np.clip(out, -1.0, 1.0)


def _note(rng: np.random.Generator) -> np.ndarray:
    freq = rng.choice(SCALE_HZ)
    return 0.25 * np.sin(2 * np.pi * freq * NOTE_T) * np.exp(-NOTE_T / 0.15)


def _burst(rng: np.random.Generator) -> np.ndarray:
    t = NOTE_T[: RATE // 8]
    return 0.3 * rng.standard_normal(len(t)) * np.exp(-t / 0.03)


def _mix(out: np.ndarray, at: int, sound: np.ndarray, pan: float) -> None:
    end = min(len(out), at + len(sound))
    out[at:end, 0] += sound[: end - at] * (1.0 - pan)
    out[at:end, 1] += sound[: end - at] * pan


def write_audio(path: Path, audio: np.ndarray) -> Path:
    """Write `audio` in the format its suffix names, in blocks (see WRITE_BLOCK)."""
    subtype = SUBTYPES[path.suffix.lstrip(".")]
    with sf.SoundFile(str(path), "w", RATE, audio.shape[1], subtype=subtype) as handle:
        for at in range(0, len(audio), WRITE_BLOCK):
            handle.write(audio[at : at + WRITE_BLOCK])
    return path


# --- 1. windowed vs whole-file decode ----------------------------------------------------


def pick_starts(sizes: Sizes, rng: np.random.Generator) -> np.ndarray:
    """Random window offsets (seconds, to the millisecond), the same for every format."""
    return np.sort(rng.uniform(0.0, TRACK_SECONDS - WINDOW_SECONDS, sizes.offsets).round(3))


def bench_decode(
    scratch: Path, music: np.ndarray, starts: np.ndarray, repeats: int
) -> list[DecodeRow]:
    """Time `decode_window` against `decode_whole` + slicing, for every format."""
    scratch.mkdir(parents=True, exist_ok=True)
    paths = [scratch / f"track.{fmt}" for fmt in SUBTYPES]
    # The encoders run in C without the GIL, so the slow MP3 encode overlaps the others.
    with ThreadPoolExecutor() as pool:
        list(pool.map(write_audio, paths, [music] * len(paths)))
    return [_decode_row(path, starts, repeats) for path in paths]


def _decode_row(path: Path, starts: np.ndarray, repeats: int) -> DecodeRow:
    whole, _ = decode_whole(path)  # warm-up: page cache and decoder set-up, untimed
    whole_ms, window_ms = _interleaved_ms(path, starts, repeats)
    # Seeking alone, to the farthest offset: a decoder that scans to get there pays most here.
    seek_ms = statistics.median(_ms(lambda: _seek(path, max(starts))) for _ in range(repeats))
    fmt = path.suffix.lstrip(".")
    diff = max(_window_diff(path, whole, float(s)) for s in starts)
    if fmt in EXACT and diff != 0.0:
        raise AssertionError(f"{fmt}: windowed decode differs from the whole-file slice")
    medians = [statistics.median(window_ms[i :: len(starts)]) for i in range(len(starts))]
    return DecodeRow(
        fmt,
        statistics.median(whole_ms),
        statistics.median(window_ms),
        min(medians),
        max(medians),
        seek_ms,
        diff,
    )


def _interleaved_ms(
    path: Path, starts: np.ndarray, repeats: int
) -> tuple[list[float], list[float]]:
    """Whole-file and windowed timings, taken in turns so both see the same machine load."""
    whole_ms: list[float] = []
    window_ms: list[float] = []  # start after start within each round
    for _ in range(repeats):
        whole_ms.append(_ms(lambda: decode_whole(path)))
        for start in starts:
            window_ms.append(_ms(lambda s=float(start): decode_window(path, s, WINDOW_SECONDS)))
    return whole_ms, window_ms


def _seek(path: Path, start: float) -> None:
    with sf.SoundFile(str(path)) as handle:
        handle.seek(round(start * RATE))


def _window_diff(path: Path, whole: np.ndarray, start: float) -> float:
    """Largest sample difference between the window and the same frames of the whole file."""
    window = decode_window(path, start, WINDOW_SECONDS)
    first = round(start * RATE)
    expected = whole[first : first + round(WINDOW_SECONDS * RATE)]
    if window.shape != expected.shape:
        return float("inf")
    return float(np.max(np.abs(window - expected)))


def _ms(work: Callable[[], object]) -> float:
    began = time.perf_counter()
    work()
    return (time.perf_counter() - began) * 1000.0


def print_decode(rows: list[DecodeRow], starts: np.ndarray) -> None:
    print(
        f"\n1. Decode a {WINDOW_SECONDS:g} s window of a {TRACK_SECONDS / 60:g}-minute "
        f"stereo {RATE / 1000:g} kHz file (medians)"
    )
    print(f"offsets (s): {', '.join(f'{s:.1f}' for s in starts)}")
    print(
        f"{'format':<7}{'whole ms':>10}{'window ms':>11}{'(min-max)':>14}{'ratio':>8}"
        f"{'seek ms':>9}{'max |diff|':>12}  target >= {TARGET_RATIO:g}x"
    )
    for r in rows:
        spread = f"({r.window_min_ms:.0f}-{r.window_max_ms:.0f})"
        print(
            f"{r.fmt.upper():<7}{r.whole_ms:>10.1f}{r.window_ms:>11.1f}{spread:>14}"
            f"{r.ratio:>7.1f}x{r.seek_ms:>9.1f}{r.max_diff:>12.2g}  {r.target}"
        )
    print(
        "(min-max): the fastest and slowest offset; seek ms: open and seek to the last "
        "offset, no decoding"
    )


# --- 2. ingest throughput ----------------------------------------------------------------


@dataclass(frozen=True)
class IngestResult:
    """One first ingest and one no-change re-run of the same folder."""

    files: int
    per_track: int
    megabytes: float
    first: IngestSummary
    first_s: float
    again: IngestSummary
    again_s: float


def write_beats(
    folder: Path, music: np.ndarray, count: int, rng: np.random.Generator
) -> list[Path]:
    """`count` distinct 3-4 minute WAV beats, cut from `music` with a tone on top."""
    folder.mkdir(parents=True, exist_ok=True)
    return [_write_beat(folder / f"beat-{n:03d}.wav", music, rng) for n in range(count)]


def _write_beat(path: Path, music: np.ndarray, rng: np.random.Generator) -> Path:
    # Rolling and re-levelling one rendered track is far faster than rendering each beat,
    # and the tone makes every file's content (and so its hash) distinct.
    frames = int(rng.uniform(180.0, TRACK_SECONDS) * RATE)
    t = np.arange(frames, dtype=np.float32) / RATE
    tone = 0.05 * np.sin(2 * np.pi * rng.uniform(40.0, 80.0) * t)
    audio = np.roll(music, int(rng.integers(len(music))), axis=0)[:frames]
    audio = audio * np.float32(rng.uniform(0.6, 1.0)) + tone[:, None]
    sf.write(str(path), np.clip(audio, -1.0, 1.0), RATE, subtype="PCM_16")
    return path


def bench_ingest(
    scratch: Path, music: np.ndarray, sizes: Sizes, rng: np.random.Generator
) -> IngestResult:
    """Ingest a fresh folder of beats into a fresh project, then re-run with nothing changed."""
    beats = write_beats(scratch / "beats", music, sizes.beats, rng)
    shutil.rmtree(scratch / "project", ignore_errors=True)
    project = init_project(scratch / "project")
    began = time.perf_counter()
    first = ingest(project, [scratch / "beats"])
    first_s = time.perf_counter() - began
    began = time.perf_counter()
    again = ingest(project, [scratch / "beats"])
    again_s = time.perf_counter() - began
    megabytes = sum(p.stat().st_size for p in beats) / 1e6
    per_track = project.settings.ingest.segments_per_track
    return IngestResult(len(beats), per_track, megabytes, first, first_s, again, again_s)


def print_ingest(res: IngestResult) -> None:
    segs = res.first.segments_added
    print(
        f"\n2. Ingest {res.files} WAV beats of 3-4 minutes ({res.megabytes:.0f} MB), "
        f"{os.cpu_count()} worker threads"
    )
    print(
        f"first ingest     {res.first_s:7.2f} s   {res.files / res.first_s:6.1f} files/s   "
        f"{res.megabytes / res.first_s:6.0f} MB/s   {segs / res.first_s:6.1f} segments/s"
    )
    print(
        f"no-change re-run {res.again_s:7.2f} s   ({res.again.unchanged} unchanged, "
        f"{res.again.added} added)"
    )


# --- summary -----------------------------------------------------------------------------


def summary_lines(rows: list[DecodeRow], res: IngestResult) -> list[tuple[str, bool]]:
    """(target, met) for every target; timings are reported, never asserted."""
    exact = [r for r in rows if r.fmt in EXACT]
    ratios = [
        (f"{r.fmt.upper()} windowed decode >= {TARGET_RATIO:g}x faster than whole", r.ratio)
        for r in exact
    ]
    added_all = res.first.added == res.files
    segments = res.first.segments_added == res.files * res.per_track
    return [(f"{text} ({ratio:.1f}x)", ratio >= TARGET_RATIO) for text, ratio in ratios] + [
        ("WAV and FLAC windows equal the whole-file slice", all(r.max_diff == 0 for r in exact)),
        (
            f"first ingest adds all {res.files} beats, {res.per_track} segments each",
            added_all and segments,
        ),
        ("no-change re-run examines no file again", res.again.unchanged == res.files),
    ]


def print_machine() -> None:
    print(
        f"machine: {os.cpu_count()} cores, {_cpu_model()}; Python {platform.python_version()}, "
        f"libsndfile {sf.__libsndfile_version__}"
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run(scratch: Path, sizes: Sizes) -> None:
    print_machine()
    rng = np.random.default_rng(0)
    music = synth_music(TRACK_SECONDS, rng)
    starts = pick_starts(sizes, rng)
    rows = bench_decode(scratch / "decode", music, starts, sizes.repeats)
    print_decode(rows, starts)
    res = bench_ingest(scratch, music, sizes, rng)
    print_ingest(res)
    print("\nSummary")
    for text, met in summary_lines(rows, res):
        print(f"{'PASS' if met else 'FAIL'}  {text}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"fewer offsets, repeats and beats ({QUICK.beats} instead of {DEFAULT.beats})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="keep scratch files here (its decode/, beats/ and project/ are "
        "overwritten); default: a temporary folder, deleted afterwards",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else DEFAULT
    if args.out:
        run(args.out.resolve(), sizes)
        return
    with tempfile.TemporaryDirectory(prefix="curator-bench-") as scratch:
        run(Path(scratch), sizes)


if __name__ == "__main__":
    main()
