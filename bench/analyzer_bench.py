"""Benchmarks tempo and key analyzers on rendered beats: Essentia (both trackers) vs librosa."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr

# The plugin first: essentia must be imported before anything that may import TensorFlow.
from curator.plugins.essentia import EssentiaAnalyzer, EssentiaSettings  # isort: skip
from curator.api import Measurement, PluginContext, SegmentAudio
from curator.catalogue.audio import decode_window
from curator.demo import NOTE_NAMES, BeatSpec, load_truth, render_demo_dataset
from curator.plugins.essentia.analyzer import fold_tempo

RATE = 44100
START, SECONDS = 2.0, 25.0  # one window per beat, past the fade-in
TOLERANCE = 0.04
BAR = 0.7  # Curator keeps values below this confidence but never uses them as labels
DEFAULTS = EssentiaSettings()
LIBROSA_RATE = 22050  # librosa's default rate; its resampling is timed with it
# Krumhansl-Schmuckler key profiles (Krumhansl & Kessler 1982), from the tonic up.
KS_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KS_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class Estimate:
    """One method's reading of one segment; confidences are None where a method has none."""

    tempo: float
    key: str
    scale: str
    tempo_confidence: float | None = None
    key_confidence: float | None = None


@dataclass
class Scores:
    """Per-segment outcomes for one method."""

    acc1: list[bool] = field(default_factory=list)
    acc2: list[bool] = field(default_factory=list)
    key_exact: list[bool] = field(default_factory=list)
    key_weighted: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    tempo_conf: list[float | None] = field(default_factory=list)
    key_conf: list[float | None] = field(default_factory=list)


# ------------------------------------------------------------------------------ scoring


def tempo_matches(estimate: float, truth: float, factors: tuple[float, ...]) -> bool:
    """Within 4% of the true tempo times one of the factors (MIREX Acc1 / Acc2)."""
    return any(abs(estimate - truth * f) <= TOLERANCE * truth * f for f in factors)


def acc1(estimate: float, truth: float) -> bool:
    return tempo_matches(estimate, truth, (1.0,))


def acc2(estimate: float, truth: float) -> bool:
    return tempo_matches(estimate, truth, (1.0, 2.0, 0.5, 3.0, 1 / 3))


def key_score(key: str, scale: str, true_key: str, true_scale: str) -> float:
    """MIREX weights, as in mir_eval: exact 1, fifth above 0.5, relative 0.3, parallel 0.2."""
    up = (NOTE_NAMES.index(key) - NOTE_NAMES.index(true_key)) % 12
    if up == 0:
        return 1.0 if scale == true_scale else 0.2
    if scale == true_scale:
        return 0.5 if up == 7 else 0.0
    relative = 9 if true_scale == "major" else 3
    return 0.3 if up == relative else 0.0


def record(scores: Scores, estimate: Estimate, spec: BeatSpec, seconds: float) -> None:
    scores.acc1.append(acc1(estimate.tempo, spec.tempo))
    scores.acc2.append(acc2(estimate.tempo, spec.tempo))
    weighted = key_score(estimate.key, estimate.scale, spec.key, spec.scale)
    scores.key_exact.append(weighted == 1.0)
    scores.key_weighted.append(weighted)
    scores.seconds.append(seconds)
    scores.tempo_conf.append(estimate.tempo_confidence)
    scores.key_conf.append(estimate.key_confidence)


# ------------------------------------------------------------------------------ methods


def essentia_method(bpm_method: str, loudness: bool = False) -> Callable[[np.ndarray], Estimate]:
    """The plugin as Curator runs it (loudness off: librosa measures none, so times compare)."""
    analyzer = EssentiaAnalyzer()
    analyzer.setup(PluginContext(settings={"bpm_method": bpm_method, "loudness": loudness}))

    def run(audio: np.ndarray) -> Estimate:
        found = analyzer.analyze([SegmentAudio("bench", audio[:, None], RATE)])[0]
        return _from_measurements({m.name: m for m in found})

    return run


def _from_measurements(found: dict[str, Measurement]) -> Estimate:
    tempo = found.get("tempo", Measurement("tempo", value=0.0, confidence=0.0))
    return Estimate(
        tempo=tempo.value or 0.0,
        key=found["key"].text or "",
        scale=found["scale"].text or "",
        tempo_confidence=tempo.confidence,
        key_confidence=found["key"].confidence,
    )


def librosa_method(audio: np.ndarray) -> Estimate:
    """librosa's tempo (onset autocorrelation) and a Krumhansl-Schmuckler key from chroma_cqt.

    Its tempo is folded into the plugin's default range, so Acc1 compares like with like.
    """
    import librosa

    y = soxr.resample(audio, RATE, LIBROSA_RATE)
    onsets = librosa.onset.onset_strength(y=y, sr=LIBROSA_RATE)
    raw = float(librosa.feature.tempo(onset_envelope=onsets, sr=LIBROSA_RATE)[0])
    tempo = fold_tempo(raw, DEFAULTS.tempo_min, DEFAULTS.tempo_max)  # as the plugin reports
    chroma = librosa.feature.chroma_cqt(y=y, sr=LIBROSA_RATE).mean(axis=1)
    key, scale = krumhansl_key(chroma)
    return Estimate(tempo, key, scale)


def krumhansl_key(chroma: np.ndarray) -> tuple[str, str]:
    """The key whose rotated profile correlates best with the mean chroma (C first)."""
    best = max(
        (np.corrcoef(chroma, np.roll(profile, tonic))[0, 1], NOTE_NAMES[tonic], scale)
        for scale, profile in (("major", KS_MAJOR), ("minor", KS_MINOR))
        for tonic in range(12)
    )
    return best[1], best[2]


def garbage_signals(count: int = 4) -> list[tuple[str, np.ndarray]]:
    """Signals with no beat: white noise, and sustained tones with a few harmonics."""
    rng = np.random.default_rng(3)
    t = np.arange(int(SECONDS * RATE)) / RATE
    signals = [("white noise", 0.2 * rng.standard_normal(len(t))) for _ in range(count)]
    for _ in range(count):
        f0 = 55 * 2 ** (rng.uniform(0, 48) / 12)
        tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, int(rng.integers(2, 6))))
        signals.append(("sustained tone", 0.3 * tone / np.abs(tone).max()))
    return [(name, signal.astype(np.float32)) for name, signal in signals]


# ------------------------------------------------------------------------------ running


def segments(folder: Path) -> list[tuple[BeatSpec, np.ndarray]]:
    truth = load_truth(folder)
    return [
        (spec, decode_window(folder / name, START, SECONDS, sample_rate=RATE, channels=1)[:, 0])
        for name, spec in sorted(truth.items())
    ]


def run_method(method: Callable[[np.ndarray], Estimate], data: list) -> Scores:
    scores = Scores()
    method(data[0][1])  # warm-up: first calls build FFT plans and caches
    for spec, audio in data:
        started = time.perf_counter()
        estimate = method(audio)
        record(scores, estimate, spec, time.perf_counter() - started)
    return scores


# ------------------------------------------------------------------------------ printing


def share(flags: list[bool]) -> str:
    return f"{100 * sum(flags) / max(1, len(flags)):5.1f}%"


def print_accuracy(results: dict[str, Scores]) -> None:
    print(f"{'method':26s} {'tempo Acc1':>10s} {'Acc2':>7s} {'key exact':>10s} {'MIREX':>6s}"
          f" {'s/segment':>10s} {'x degara':>9s}")  # fmt: skip
    base = np.mean(results["essentia degara"].seconds)
    for name, s in results.items():
        mean = float(np.mean(s.seconds))
        print(
            f"{name:26s} {share(s.acc1):>10s} {share(s.acc2):>7s} {share(s.key_exact):>10s}"
            f" {np.mean(s.key_weighted):6.3f} {mean:10.3f} {mean / base:9.2f}"
        )


def passing(confidences: list[float | None], correct: list[bool], want: bool) -> str:
    chosen = [c for c, ok in zip(confidences, correct, strict=True) if ok == want]
    passed = sum(1 for c in chosen if c is not None and c >= BAR)
    return f"{passed}/{len(chosen)}" + (f" ({100 * passed / len(chosen):.0f}%)" if chosen else "")


def print_confidence(results: dict[str, Scores]) -> None:
    print(f"\nconfidence >= {BAR} (Curator's bar for using a value as a label):")
    print(f"{'method':26s} {'tempo correct':>15s} {'tempo wrong':>12s} {'key correct':>15s}"
          f" {'key wrong':>10s}")  # fmt: skip
    for name, s in results.items():
        if s.tempo_conf[0] is None:
            continue
        print(
            f"{name:26s} {passing(s.tempo_conf, s.acc2, True):>15s}"
            f" {passing(s.tempo_conf, s.acc2, False):>12s}"
            f" {passing(s.key_conf, s.key_exact, True):>15s}"
            f" {passing(s.key_conf, s.key_exact, False):>10s}"
        )
    print("(tempo 'correct' is Acc2: the pulse is right, whatever its octave)")


def print_garbage(methods: dict[str, Callable[[np.ndarray], Estimate]]) -> None:
    print(f"\non audio with no beat, values passing {BAR}:")
    for name, method in methods.items():
        counts: dict[str, list[int]] = {}
        for kind, signal in garbage_signals():
            estimate = method(signal)
            tally = counts.setdefault(kind, [0, 0, 0])
            tally[0] += 1
            tally[1] += (estimate.tempo_confidence or 0.0) >= BAR
            tally[2] += (estimate.key_confidence or 0.0) >= BAR
        summary = ", ".join(f"{k}: tempo {t}/{n}, key {c}/{n}" for k, (n, t, c) in counts.items())
        print(f"  {name:24s} {summary}")


def print_loudness_cost(data: list, count: int = 6) -> None:
    """What the loudness measurement adds, so the `loudness` setting can be judged."""
    timed = {
        on: np.mean(run_method(essentia_method("degara", loudness=on), data[:count]).seconds)
        for on in (False, True)
    }
    print(f"\nloudness (EBU R128) adds {timed[True] - timed[False]:.3f} s per segment to degara's"
          f" {timed[False]:.3f} s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=32, help="beats to render (default 32)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="render into (or reuse) this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.out or Path(tmp)
        if not (folder / "truth.json").exists() or len(load_truth(folder)) != args.n:
            render_demo_dataset(folder, args.n, seed=args.seed)
        data = segments(folder)
        print(f"{len(data)} rendered beats, one {SECONDS:g} s window each, mono {RATE} Hz\n")
        report(data)


def report(data: list) -> None:
    methods = {
        "essentia degara": essentia_method("degara"),
        "essentia multifeature": essentia_method("multifeature"),
        "librosa": librosa_method,
    }
    results = {name: run_method(method, data) for name, method in methods.items()}
    print_accuracy(results)
    print_confidence(results)
    print_garbage({k: v for k, v in methods.items() if k != "librosa"})
    print_loudness_cost(data)


if __name__ == "__main__":
    main()
