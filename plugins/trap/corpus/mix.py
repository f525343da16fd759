"""Mixing stems as a producer would, and labelling the ones a listener can hear.

Each stem gets its own level, EQ, saturation and reverb; the bus compressor's gain is applied
to every stem alike, so each stem's contribution to the final mix stays known. A stem is
audible when, for long enough, it holds a fair share of the mix's energy in some frequency
band: a hat 25 dB under the mix overall still owns the top octave, while a pad 35 dB down is
masked everywhere; and it must be within AUDIBLE_LEVEL_DB of the whole mix where it plays.
The MIDI saying it played is not enough.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from .sounds import convolved, filtered, spectral

# How far under the mix, in a band and a frame, a stem may be and still count as heard.
AUDIBLE_MARGIN_DB = 10.0
# How far under the whole mix, where it plays, a stem may be and still count as heard: a sub
# alone in its octave 35 dB down is not.
AUDIBLE_LEVEL_DB = -24.0
# How long a stem must be heard in a clip to be labelled.
AUDIBLE_SECONDS = 0.1
# A stem's level is measured over the frames where it plays: within this of its loudest frame.
ACTIVE_RANGE_DB = 30.0
ENCODINGS = ("none", "mp3", "ogg")


@dataclass
class Stem:
    """One part of a clip: the tags it gives when heard, its audio, where its sound came from."""

    name: str
    tags: tuple[str, ...]
    audio: np.ndarray  # mono float
    source: str  # a soundfont's name, "synth" or "espeak-ng"


@dataclass(frozen=True)
class Heard:
    """What a stem contributes to the mix."""

    level_db: float  # its energy relative to the mix's, where it plays
    audible_seconds: float


# ---------------------------------------------------------------------------- per stem


def equalised(audio: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Random shelves and a bell, applied as a smooth zero-phase gain curve."""
    low, high = rng.uniform(-6, 6), rng.uniform(-8, 6)
    centre, width, bell = rng.uniform(150, 6000), rng.uniform(0.5, 2.0), rng.uniform(-8, 8)

    def gain(freqs: np.ndarray) -> np.ndarray:
        f = np.maximum(freqs, 1.0)
        curve = low / (1 + (f / 200) ** 2) + high * (f / 4000) ** 2 / (1 + (f / 4000) ** 2)
        curve += bell * np.exp(-(np.log2(f / centre) ** 2) / (2 * width**2))
        return 10 ** (curve / 20)

    return spectral(audio, gain, sr)


def saturated(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    peak = float(np.abs(audio).max(initial=0.0))
    if peak == 0:
        return audio
    drive = rng.uniform(1.5, 5.0)
    return np.tanh(drive * audio / peak) / np.tanh(drive) * peak


def reverberated(audio: np.ndarray, rng: np.random.Generator, sr: int, wet_db: float) -> np.ndarray:
    """A room of decaying, darkening noise (RT60 0.2-2.5 s) after a short pre-delay."""
    rt60 = rng.uniform(0.2, 2.5)
    n = int(rt60 * sr)
    tail = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
    tail = filtered(tail, "lowpass", rng.uniform(2500, 9000), sr)
    impulse = np.concatenate([np.zeros(int(rng.uniform(0.005, 0.04) * sr)), tail])
    impulse *= 10 ** (wet_db / 20) / np.sqrt(np.sum(impulse**2))
    return audio + convolved(audio, impulse)


def produced(stem: Stem, rng: np.random.Generator, sr: int, drums: bool) -> None:
    """EQ, then perhaps saturation, then perhaps reverb (drier on drums), in place."""
    audio = stem.audio
    if rng.random() < 0.6:
        audio = equalised(audio, rng, sr)
    if rng.random() < 0.25:
        audio = saturated(audio, rng)
    if rng.random() < (0.3 if drums else 0.6):
        audio = reverberated(
            audio, rng, sr, rng.uniform(-24, -12) if drums else rng.uniform(-18, -4)
        )
    stem.audio = audio


# ---------------------------------------------------------------------------- levels


def frame_power(audio: np.ndarray, hop: int) -> np.ndarray:
    frames = len(audio) // hop
    return np.mean(audio[: frames * hop].reshape(frames, hop) ** 2, axis=1)


def active_rms(audio: np.ndarray, hop: int) -> float:
    """RMS over the frames where the sound plays, so a sparse snare and a held pad compare."""
    power = frame_power(audio, hop)
    if power.size == 0 or power.max() <= 0:
        return 0.0
    active = power >= power.max() * 10 ** (-ACTIVE_RANGE_DB / 10)
    return float(np.sqrt(power[active].mean()))


def set_level(stem: Stem, level_db: float, hop: int) -> None:
    """Scale the stem so its active RMS sits at `level_db` dBFS."""
    rms = active_rms(stem.audio, hop)
    if rms > 0:
        stem.audio = stem.audio * (10 ** (level_db / 20) / rms)


def compressed(stems: Sequence[Stem], rng: np.random.Generator, sr: int) -> None:
    """A bus compressor: its gain, computed on the sum, is applied to every stem alike."""
    hop = max(1, sr // 200)
    mix = np.sum([s.audio for s in stems], axis=0)
    level = 10 * np.log10(frame_power(mix, hop) + 1e-12)
    if level.size == 0:
        return
    threshold = level.max() - rng.uniform(3, 14)
    ratio = rng.uniform(1.5, 8)
    target = np.minimum(0.0, (threshold - level) * (1 - 1 / ratio))
    smooth = _smoothed(target, attack=np.exp(-1 / 2), release=np.exp(-1 / rng.uniform(10, 60)))
    gain = 10 ** (np.interp(np.arange(len(mix)), np.arange(len(smooth)) * hop, smooth) / 20)
    for stem in stems:
        stem.audio = stem.audio * gain


def _smoothed(target: np.ndarray, attack: float, release: float) -> np.ndarray:
    """Gain reduction follows quickly down and recovers slowly (one-pole, per frame)."""
    out = np.empty_like(target)
    state = 0.0
    for i, value in enumerate(target):
        k = attack if value < state else release
        state = k * state + (1 - k) * value
        out[i] = state
    return out


# ---------------------------------------------------------------------------- hearing


def heard(stems: Sequence[Stem], sr: int) -> dict[str, Heard]:
    """Each stem's level in the mix and for how long it is audible (see the module's note)."""
    size = 1 << round(np.log2(sr * 0.046))  # about 46 ms whatever the rate
    mix = np.sum([s.audio for s in stems], axis=0)
    bands = _band_edges(size, sr)
    mix_bands = _band_power(mix, size, bands)
    floor = mix_bands.max(initial=0.0) * 1e-7  # 70 dB under the loudest band: silence
    hop_seconds = size / 2 / sr
    result = {}
    for stem in stems:
        own = _band_power(stem.audio, size, bands)
        audible = (own >= mix_bands * 10 ** (-AUDIBLE_MARGIN_DB / 10)) & (own > floor)
        seconds = float(audible.any(axis=1).sum() * hop_seconds)
        result[stem.name] = Heard(_level_db(stem.audio, mix, size // 2), seconds)
    return result


def _level_db(audio: np.ndarray, mix: np.ndarray, hop: int) -> float:
    power, total = frame_power(audio, hop), frame_power(mix, hop)
    if power.size == 0 or power.max() <= 0:
        return -120.0
    active = power >= power.max() * 10 ** (-ACTIVE_RANGE_DB / 10)
    ratio = power[active].sum() / max(total[active].sum(), 1e-20)
    return round(float(10 * np.log10(max(ratio, 1e-12))), 1)


def _band_edges(size: int, sr: int) -> np.ndarray:
    """Bin indices of 24 bands, spaced evenly in log frequency from 30 Hz to Nyquist."""
    freqs = np.geomspace(30, sr / 2, 25)
    return np.unique(np.clip(np.round(freqs * size / sr).astype(int), 1, size // 2 + 1))


def _band_power(audio: np.ndarray, size: int, edges: np.ndarray) -> np.ndarray:
    """(frames, bands) power of half-overlapping Hann windows."""
    hop = size // 2
    count = max(0, (len(audio) - size) // hop + 1)
    if count == 0:
        return np.zeros((0, len(edges) - 1))
    frames = np.lib.stride_tricks.sliding_window_view(audio, size)[::hop][:count]
    power = np.abs(np.fft.rfft(frames * np.hanning(size), axis=1)) ** 2
    sums = np.add.reduceat(power, edges[:-1], axis=1)
    return sums


def labels(stems: Sequence[Stem], hearing: dict[str, Heard]) -> tuple[list[str], dict[str, float]]:
    """The tags heard (sorted) and every tag's level in dB (its loudest stem's)."""
    tags: set[str] = set()
    levels: dict[str, float] = {}
    for stem in stems:
        result = hearing[stem.name]
        for tag in stem.tags:
            levels[tag] = max(levels.get(tag, -120.0), result.level_db)
            if result.audible_seconds >= AUDIBLE_SECONDS and result.level_db >= AUDIBLE_LEVEL_DB:
                tags.add(tag)
    return sorted(tags), dict(sorted(levels.items()))


# ---------------------------------------------------------------------------- the file


def peak_normalised(stems: Sequence[Stem], peak_db: float) -> np.ndarray:
    """The mix at `peak_db` dBFS; the stems are scaled with it so levels stay true."""
    mix = np.sum([s.audio for s in stems], axis=0)
    peak = float(np.abs(mix).max(initial=0.0))
    gain = 10 ** (peak_db / 20) / peak if peak > 0 else 1.0
    for stem in stems:
        stem.audio = stem.audio * gain
    return mix * gain


def round_trip(audio: np.ndarray, sr: int, encoding: str, quality: float) -> np.ndarray:
    """The mix after a lossy MP3 or OGG encode and decode, as a downloaded beat would be."""
    if encoding == "none":
        return audio
    buffer = io.BytesIO()
    kind = {"mp3": "MP3", "ogg": "OGG"}[encoding]
    sf.write(buffer, audio.astype(np.float32), sr, format=kind, compression_level=quality)
    buffer.seek(0)
    decoded, _ = sf.read(buffer, dtype="float64")
    out = np.zeros(len(audio))
    out[: min(len(out), len(decoded))] = decoded[: len(out)]
    return out
