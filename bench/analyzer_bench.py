"""Benchmarks tempo and key analyzers on rendered trap beats: Essentia (both trackers) vs librosa.

The beats are not the demo's: trap tempos (60-80 and 130-160 BPM), modal loops with even
chord lengths and no tonic pedal, played by several soundfonts. Confidences are tuned on
one set (seeds 1-2, FluidR3_GM and sf_GMbank) and reported on a held-out one (seeds 3-4,
MuseScore_General_Full, which nothing here was tuned on).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import soxr

# The plugin first: essentia must be imported before anything that may import TensorFlow.
from curator.plugins.essentia import EssentiaAnalyzer, EssentiaSettings  # isort: skip
from curator.api import Measurement, PluginContext, SegmentAudio
from curator.demo import NOTE_NAMES, Arrangement, BeatSpec, random_spec, render_beat
from curator.plugins.essentia import confidence
from curator.plugins.essentia.analyzer import fold_tempo

RATE = 44100
START, SECONDS = 2.0, 25.0  # one window per beat, past the fade-in
TOLERANCE = 0.04
BAR = 0.7  # Curator keeps values below this confidence but never uses them as labels
BARS = (0.5, 0.7, 0.9)
TRAP_TEMPOS = ((60, 80), (130, 160))  # half time and full time, as trap is written
# Loops producers use, by scale degree (0 = i or I), each chord one bar: i-VI-III-VII,
# i-iv-VI-VII, i-VII-VI-VII, VI-VII-i-i, i-iv-v-i; I-V-vi-IV, vi-IV-I-V, I-vi-IV-V, I-IV-V-IV.
MODAL_LOOPS = {
    "minor": ((0, 5, 2, 6), (0, 3, 5, 6), (0, 6, 5, 6), (5, 6, 0, 0), (0, 3, 4, 0)),
    "major": ((0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4), (0, 3, 4, 3)),
}


@dataclass(frozen=True)
class RenderedSet:
    """Beats drawn from these seeds, each soundfont playing `per_font` of them."""

    name: str
    seeds: tuple[int, ...]
    soundfonts: tuple[str, ...]
    per_font: int


TUNE = RenderedSet("tune", (1, 2), ("FluidR3_GM", "sf_GMbank"), 8)
HELD_OUT = RenderedSet("held-out", (3, 4), ("MuseScore_General_Full",), 12)
DEFAULTS = EssentiaSettings()
LIBROSA_RATE = 22050  # librosa's default rate; its resampling is timed with it


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
    octave: list[bool] = field(default_factory=list)
    key_exact: list[bool] = field(default_factory=list)
    key_relative: list[bool] = field(default_factory=list)
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


RELATIVE = 0.3  # MIREX's weight for the relative key, which marks that error


def key_score(key: str, scale: str, true_key: str, true_scale: str) -> float:
    """MIREX weights, as in mir_eval: exact 1, fifth above 0.5, relative 0.3, parallel 0.2."""
    up = (NOTE_NAMES.index(key) - NOTE_NAMES.index(true_key)) % 12
    if up == 0:
        return 1.0 if scale == true_scale else 0.2
    if scale == true_scale:
        return 0.5 if up == 7 else 0.0
    relative = 9 if true_scale == "major" else 3
    return RELATIVE if up == relative else 0.0


def record(scores: Scores, estimate: Estimate, spec: BeatSpec, seconds: float) -> None:
    scores.acc1.append(acc1(estimate.tempo, spec.tempo))
    scores.acc2.append(acc2(estimate.tempo, spec.tempo))
    scores.octave.append(tempo_matches(estimate.tempo, spec.tempo, (2.0, 0.5)))
    weighted = key_score(estimate.key, estimate.scale, spec.key, spec.scale)
    scores.key_exact.append(weighted == 1.0)
    scores.key_relative.append(weighted == RELATIVE)
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


def previous_confidences() -> Callable[[np.ndarray], Estimate]:
    """Degara's readings with the confidences it had before the octave and key-margin checks
    (the estimator's own for tempo; key strength x tonality), to show what the checks change."""
    analyzer = EssentiaAnalyzer()
    analyzer.setup(PluginContext())
    measure = essentia_method("degara")

    def run(audio: np.ndarray) -> Estimate:
        power = confidence.power_frames(audio, RATE)
        tempo = analyzer._tempo(audio, RATE, confidence.onset_curve(power, RATE))
        key = analyzer._key(audio)
        return replace(
            measure(audio),
            tempo_confidence=tempo.confidence,
            key_confidence=key.strength * confidence.tonality(power, RATE),
        )

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
    """The key whose rotated Krumhansl-Kessler profile correlates best with the mean chroma."""
    scores = confidence.key_correlations(chroma)
    tonic, scale = max(scores, key=scores.__getitem__)
    return NOTE_NAMES[tonic], scale


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


def trap_spec(seed: int, font_index: int, index: int) -> BeatSpec:
    """A demo spec (key, scale, instruments) at a trap tempo, long enough for one window."""
    rng = np.random.default_rng([seed, font_index, index])
    spec = random_spec(rng, index)
    low, high = TRAP_TEMPOS[int(rng.integers(len(TRAP_TEMPOS)))]
    name = f"s{seed}_f{font_index}_{index:03d}"
    tempo = float(rng.integers(low, high + 1))
    return replace(spec, name=name, tempo=tempo, duration=START + SECONDS + 0.5)


def render_set(chosen: RenderedSet) -> list[tuple[BeatSpec, np.ndarray]]:
    """Every beat of the set: its spec and one mono window, rendered in memory."""
    data = []
    for font_index, font in enumerate(chosen.soundfonts):
        arrangement = Arrangement(font, MODAL_LOOPS, chord_beats=(4, 4, 4, 4), tonic_pedal=False)
        for seed in chosen.seeds:
            for index in range(chosen.per_font):
                spec = trap_spec(seed, font_index, index)
                stereo = render_beat(spec, RATE, seed, arrangement)
                window = stereo[int(START * RATE) : int((START + SECONDS) * RATE)].mean(axis=1)
                data.append((spec, np.ascontiguousarray(window, dtype=np.float32)))
        print(f"  rendered {chosen.name}: {font}", flush=True)
    return data


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
    print(f"{'method':24s} {'tempo Acc1':>10s} {'octave':>7s} {'Acc2':>6s} {'key exact':>10s}"
          f" {'relative':>9s} {'MIREX':>6s} {'s/segment':>10s} {'x degara':>9s}")  # fmt: skip
    base = np.mean(results["essentia degara"].seconds)
    for name, s in results.items():
        mean = float(np.mean(s.seconds))
        print(
            f"{name:24s} {share(s.acc1):>10s} {share(s.octave):>7s} {share(s.acc2):>6s}"
            f" {share(s.key_exact):>10s} {share(s.key_relative):>9s}"
            f" {np.mean(s.key_weighted):6.3f} {mean:10.3f} {mean / base:9.2f}"
        )
    print("(octave: read at double or half the tempo; relative: the relative major or minor)")


def accuracy_of(flags: list[bool]) -> str:
    return f"{100 * sum(flags) / len(flags):3.0f}% of {len(flags):2d}" if flags else "   - of  0"


def reliability_rows(confidences: list[float], correct: list[bool]) -> list[str]:
    """Accuracy of what passes and what fails the bar, and coverage/accuracy at each bar."""
    passed = [ok for c, ok in zip(confidences, correct, strict=True) if c >= BAR]
    dropped = [ok for c, ok in zip(confidences, correct, strict=True) if c < BAR]
    cells = [accuracy_of(passed), accuracy_of(dropped)]
    for bar in BARS:
        kept = [ok for c, ok in zip(confidences, correct, strict=True) if c >= bar]
        cover = 100 * len(kept) / len(correct)
        accurate = f"{100 * sum(kept) / len(kept):3.0f}%" if kept else "   -"
        cells.append(f"{cover:3.0f}% / {accurate}")
    return cells


def print_reliability(results: dict[str, Scores]) -> None:
    """Does the confidence separate right from wrong? Only methods with a confidence."""
    print(f"\nreliability: accuracy of estimates passing the {BAR} bar vs dropped by it;"
          " coverage / accuracy at each bar ('before': the confidence without the octave and"
          " key-margin checks)")  # fmt: skip
    header = f"{'method, measure':42s} {'passing':>11s} {'dropped':>11s}"
    print(header + "".join(f" {f'>= {bar}':>12s}" for bar in BARS))
    for name, s in results.items():
        if s.tempo_conf[0] is None:
            continue
        tempo = [c or 0.0 for c in s.tempo_conf]
        key = [c or 0.0 for c in s.key_conf]
        for measure, confidences, correct in (
            ("tempo (Acc1, octave wrong)", tempo, s.acc1),
            ("tempo (Acc2, any octave)", tempo, s.acc2),
            ("key (exact, relative wrong)", key, s.key_exact),
        ):
            cells = reliability_rows(confidences, correct)
            print(f"{name[9:] + ', ' + measure:42s} {cells[0]:>11s} {cells[1]:>11s}"
                  + "".join(f" {cell:>12s}" for cell in cells[2:]))  # fmt: skip


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
    parser.add_argument(
        "--set", choices=("tune", "held-out", "both"), default="both", help="which rendered set"
    )
    args = parser.parse_args()
    chosen = {"tune": [TUNE], "held-out": [HELD_OUT], "both": [TUNE, HELD_OUT]}[args.set]
    methods = {
        "essentia degara": essentia_method("degara"),
        "essentia multifeature": essentia_method("multifeature"),
        "librosa": librosa_method,
    }
    for rendered in chosen:
        data = render_set(rendered)
        fonts = ", ".join(rendered.soundfonts)
        print(f"\n== {rendered.name} set: {len(data)} beats (seeds {rendered.seeds}; {fonts}),"
              f" one {SECONDS:g} s window each, mono {RATE} Hz\n")  # fmt: skip
        results = {name: run_method(method, data) for name, method in methods.items()}
        print_accuracy(results)
        before = {"essentia degara, before": run_method(previous_confidences(), data)}
        print_reliability(before | results)
    print_garbage({k: v for k, v in methods.items() if k != "librosa"})
    print_loudness_cost(data)


if __name__ == "__main__":
    main()
