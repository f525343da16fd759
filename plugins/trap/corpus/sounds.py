"""Sounds synthesised in numpy where soundfonts have none: 808s, subs, drums, synths, speech.

Every sound takes the random generator that decides its character (so a clip's seed decides
it) and the sample rate, and returns mono float64 at a peak of about 1. Pitched voices take
their notes and return the whole line, so an 808 can glide from one note into the next.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from curator.errors import CuratorError

Sound = np.ndarray


@dataclass(frozen=True)
class Note:
    """A note or a drum hit: start and length in seconds, MIDI pitch, velocity from 0 to 1.

    `glide` marks a note the pitch slides into from the note before (808 slides).
    """

    start: float
    length: float
    pitch: int
    velocity: float
    glide: bool = False


def hz(pitch: float) -> float:
    return 440.0 * 2 ** ((pitch - 69) / 12)


def decay(n: int, sample_rate: int, seconds: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (seconds * sample_rate))


def normalised(sound: np.ndarray) -> np.ndarray:
    peak = float(np.abs(sound).max(initial=0.0))
    return sound / peak if peak > 0 else sound


def filtered(
    sound: np.ndarray, kind: str, cutoff: float | Sequence[float], sr: int, order: int = 2
):
    """A zero-phase Butterworth-shaped filter ("lowpass", "highpass", "bandpass").

    Applied in the frequency domain with numpy: scipy.signal would add seconds to every
    worker's start.
    """
    edges = np.atleast_1d(np.asarray(cutoff, float))

    def gain(freqs: np.ndarray) -> np.ndarray:
        f = np.maximum(freqs, 1e-3)
        low = 1 / np.sqrt(1 + (edges[-1] / f) ** (2 * order))
        high = 1 / np.sqrt(1 + (f / edges[-1]) ** (2 * order))
        if kind == "lowpass":
            return high
        if kind == "highpass":
            return low
        return 1 / np.sqrt(1 + (edges[0] / f) ** (2 * order)) * high

    return spectral(sound, gain, sr)


def spectral(sound: np.ndarray, gain: Callable[[np.ndarray], np.ndarray], sr: int) -> np.ndarray:
    """`sound` with its spectrum multiplied by `gain(frequencies)`, zero-padded so the
    filter's tail does not wrap onto the start."""
    size = 1 << int(np.ceil(np.log2(len(sound) + 2048)))
    spectrum = np.fft.rfft(sound, size) * gain(np.fft.rfftfreq(size, 1 / sr))
    return np.fft.irfft(spectrum, size)[: len(sound)]


def convolved(sound: np.ndarray, impulse: np.ndarray) -> np.ndarray:
    """`sound` convolved with `impulse`, cut to the length of `sound`."""
    size = 1 << int(np.ceil(np.log2(len(sound) + len(impulse))))
    return np.fft.irfft(np.fft.rfft(sound, size) * np.fft.rfft(impulse, size), size)[: len(sound)]


def sweep(freq: np.ndarray, sample_rate: int) -> np.ndarray:
    """A sine whose frequency follows `freq` sample by sample (phase is the running sum)."""
    return np.sin(2 * np.pi * np.cumsum(freq) / sample_rate)


def fades(n: int, sample_rate: int, fade_in: float = 0.003, fade_out: float = 0.02) -> np.ndarray:
    """Short ramps at both ends, so a cut note never clicks."""
    ramp = np.ones(n)
    a, b = min(n, int(fade_in * sample_rate)), min(n, int(fade_out * sample_rate))
    ramp[:a] *= np.linspace(0, 1, a)
    ramp[n - b :] *= np.linspace(1, 0, b)
    return ramp


# ---------------------------------------------------------------------------- drums


def kick(rng: np.random.Generator, sr: int) -> Sound:
    """A sine swept down onto its body pitch, a beater click, and some drive."""
    n = int(rng.uniform(0.25, 0.6) * sr)
    low, high = rng.uniform(42, 62), rng.uniform(110, 260)
    body = sweep(low + (high - low) * decay(n, sr, rng.uniform(0.015, 0.05)), sr)
    body *= decay(n, sr, rng.uniform(0.08, 0.3))
    click = filtered(rng.standard_normal(n), "highpass", rng.uniform(1500, 5000), sr)
    click *= decay(n, sr, rng.uniform(0.001, 0.004)) * rng.uniform(0.1, 0.6)
    drive = rng.uniform(1.0, 4.0)
    return normalised(np.tanh(drive * (body + click)) * fades(n, sr, 0.0005))


def snare(rng: np.random.Generator, sr: int) -> Sound:
    """One or two drum-head tones under band-passed noise (the wires)."""
    n = int(rng.uniform(0.18, 0.45) * sr)
    t = np.arange(n) / sr
    f = rng.uniform(160, 260)
    tone = np.sin(2 * np.pi * f * t) + rng.uniform(0, 0.6) * np.sin(2 * np.pi * f * 1.6 * t)
    tone *= decay(n, sr, rng.uniform(0.03, 0.09))
    centre = rng.uniform(2500, 7000)
    wires = filtered(rng.standard_normal(n), "bandpass", (centre / 3, min(centre * 2, 10500)), sr)
    wires = normalised(wires) * decay(n, sr, rng.uniform(0.06, 0.2))
    mix = rng.uniform(0.3, 0.8)
    return normalised((1 - mix) * tone + mix * wires) * fades(n, sr, 0.0005)


def clap(rng: np.random.Generator, sr: int) -> Sound:
    """Three to five hand-clap bursts a few ms apart, the last one ringing out."""
    n = int(rng.uniform(0.2, 0.45) * sr)
    t = np.arange(n) / sr
    bursts = int(rng.integers(3, 6))
    gap = rng.uniform(0.006, 0.015)
    envelope = np.zeros(n)
    for i in range(bursts):
        start = i * gap * rng.uniform(0.8, 1.2)
        tau = rng.uniform(0.05, 0.2) if i == bursts - 1 else rng.uniform(0.002, 0.006)
        envelope += np.where(t >= start, np.exp(-np.clip(t - start, 0, None) / tau), 0.0)
    centre = rng.uniform(900, 2200)
    noise = filtered(rng.standard_normal(n), "bandpass", (centre * 0.6, centre * 2.2), sr)
    return normalised(noise * envelope) * fades(n, sr, 0.0005)


def layered_clap(rng: np.random.Generator, sr: int) -> Sound:
    """Two or three claps stacked a few ms apart, as producers thicken a backbeat."""
    layers = [clap(rng, sr) for _ in range(int(rng.integers(2, 4)))]
    offsets = [0] + [int(rng.uniform(0, 0.012) * sr) for _ in layers[1:]]
    out = np.zeros(max(len(x) + o for x, o in zip(layers, offsets, strict=True)))
    for layer, offset in zip(layers, offsets, strict=True):
        out[offset : offset + len(layer)] += layer * rng.uniform(0.5, 1.0)
    return normalised(out)


def hat(rng: np.random.Generator, sr: int, open_hat: bool = False) -> Sound:
    """Metallic square partials (as the TR-808 made them) and noise, high-passed.

    Open hats ring for a quarter to half a second; closed ones are gone in a few tens of ms.
    """
    seconds = rng.uniform(0.2, 0.55) if open_hat else rng.uniform(0.015, 0.06)
    n = int(max(seconds * 5, 0.08) * sr)
    t = np.arange(n) / sr
    metal = np.zeros(n)
    base = rng.uniform(300, 600)
    for ratio in (1.0, 1.4471, 1.6170, 1.9265, 2.5028, 2.6637):
        metal += np.sign(np.sin(2 * np.pi * base * ratio * t + rng.uniform(0, 6.3)))
    noise = rng.standard_normal(n)
    mix = rng.uniform(0.0, 0.7)
    raw = mix * metal / 6 + (1 - mix) * noise
    cutoff = rng.uniform(5000, 8500) if sr > 20000 else rng.uniform(4500, 7000)
    bright = filtered(raw, "highpass", min(cutoff, sr * 0.4), sr, order=4)
    return normalised(bright * decay(n, sr, seconds)) * fades(n, sr, 0.0003)


# ---------------------------------------------------------------------------- basses


@dataclass(frozen=True)
class BassVoice:
    """How a bass line sounds: an 808 (punch, glide, drive, long decay) or a clean sub."""

    punch: float  # semitones the attack starts above the note
    punch_seconds: float
    glide_seconds: float
    decay_seconds: float  # 0 means held for the note's length
    drive: float  # 0 means clean
    attack_seconds: float
    second_harmonic: float


def eight_o_eight(rng: np.random.Generator) -> BassVoice:
    return BassVoice(
        punch=float(rng.uniform(3, 24)),
        punch_seconds=float(rng.uniform(0.008, 0.04)),
        glide_seconds=float(rng.uniform(0.04, 0.18)),
        decay_seconds=float(rng.choice([rng.uniform(0.5, 1.2), rng.uniform(1.2, 4.0)])),
        drive=float(rng.choice([rng.uniform(1.5, 4), rng.uniform(4, 12)])),
        attack_seconds=0.002,
        second_harmonic=float(rng.uniform(0, 0.3)),
    )


def deep_sub(rng: np.random.Generator) -> BassVoice:
    return BassVoice(
        punch=0.0,
        punch_seconds=0.01,
        glide_seconds=float(rng.uniform(0.03, 0.1)),
        decay_seconds=0.0,
        drive=0.0,
        attack_seconds=float(rng.uniform(0.01, 0.05)),
        second_harmonic=float(rng.uniform(0, 0.04)),
    )


def bass_line(voice: BassVoice, notes: Sequence[Note], frames: int, sr: int) -> Sound:
    """One oscillator for the whole line: a glide note slides from the pitch before it."""
    freq = np.full(frames, hz(36))
    amp = np.zeros(frames)
    previous = None
    for note in sorted(notes, key=lambda x: x.start):
        a = max(0, int(note.start * sr))
        b = min(frames, int((note.start + note.length) * sr))
        if b <= a:
            continue
        n = b - a
        target = hz(note.pitch)
        if note.glide and previous is not None:
            slide = 1 - decay(n, sr, voice.glide_seconds / 3)
            freq[a:b] = previous * (target / previous) ** slide
        else:
            freq[a:b] = target * 2 ** (voice.punch * decay(n, sr, voice.punch_seconds) / 12)
        envelope = decay(n, sr, voice.decay_seconds) if voice.decay_seconds else np.ones(n)
        envelope *= fades(n, sr, voice.attack_seconds, 0.03)
        if note.glide:
            envelope = np.maximum(envelope, amp[a - 1] if a else 0) * fades(n, sr, 0, 0.03)
        amp[a:b] = note.velocity * envelope
        previous = target
    phase = 2 * np.pi * np.cumsum(freq) / sr
    tone = np.sin(phase) + voice.second_harmonic * np.sin(2 * phase)
    if voice.drive:
        return np.tanh(voice.drive * tone * amp) / np.tanh(voice.drive)
    return tone * amp


# ---------------------------------------------------------------------------- synths


Voice = Callable[[int, int, int], Sound]  # (pitch, frames, sample rate) -> one note


def fm_bell(rng: np.random.Generator) -> Voice:
    """FM bells: an inharmonic modulator ratio whose index fades, leaving a purer tone."""
    ratio = float(rng.choice([1.4, 2.0, 3.5, 4.0, 5.19, 7.0]))
    index, fade = rng.uniform(1.0, 4.0), rng.uniform(0.05, 0.3)
    ring = rng.uniform(0.4, 2.0)

    def voice(pitch: int, n: int, sr: int) -> Sound:
        f, t = hz(pitch), np.arange(n) / sr
        mod = index * np.exp(-t / fade) * np.sin(2 * np.pi * ratio * f * t)
        return np.sin(2 * np.pi * f * t + mod) * np.exp(-t / ring)

    return voice


def saw(f: float, n: int, sr: int, phase: float = 0.0) -> np.ndarray:
    """Band-limited sawtooth (PolyBLEP), so high notes do not alias."""
    dt = f / sr
    ph = (phase + dt * np.arange(n)) % 1.0
    out = 2 * ph - 1
    head, tail = ph < dt, ph > 1 - dt
    x = ph[head] / dt
    out[head] -= 2 * x - x * x - 1
    x = (ph[tail] - 1) / dt
    out[tail] -= x * x + 2 * x + 1
    return out


def pad(rng: np.random.Generator) -> Voice:
    """Detuned saws or sines, low-passed, with a slow swell."""
    detune = rng.uniform(4, 15)
    cutoff = rng.uniform(600, 2500)
    attack = rng.uniform(0.2, 0.9)
    sines = bool(rng.random() < 0.35)

    def voice(pitch: int, n: int, sr: int) -> Sound:
        f, t = hz(pitch), np.arange(n) / sr
        if sines:
            tone = sum(np.sin(2 * np.pi * f * 2 ** (c / 1200) * t) for c in (-detune, detune))
            tone = tone + 0.3 * np.sin(4 * np.pi * f * t)
        else:
            tone = sum(saw(f * 2 ** (c / 1200), n, sr, c / 50) for c in (-detune, 0, detune))
            tone = filtered(tone, "lowpass", cutoff, sr)
        return tone * np.minimum(1.0, t / attack)

    return voice


def lead(rng: np.random.Generator) -> Voice:
    """A saw or square lead with vibrato and a filter, sustained."""
    square = bool(rng.random() < 0.4)
    cutoff = rng.uniform(1500, 6000)
    vibrato, rate = rng.uniform(0, 0.4), rng.uniform(4.5, 6.5)

    def voice(pitch: int, n: int, sr: int) -> Sound:
        t = np.arange(n) / sr
        freq = hz(pitch) * 2 ** (
            vibrato * np.minimum(1, t / 0.3) * np.sin(2 * np.pi * rate * t) / 12
        )
        phase = np.cumsum(freq) / sr
        tone = np.sign(np.sin(2 * np.pi * phase)) if square else 2 * (phase % 1.0) - 1
        return filtered(tone, "lowpass", cutoff, sr) * fades(n, sr, 0.01, 0.05)

    return voice


def pluck(rng: np.random.Generator) -> Voice:
    """Karplus-Strong strings, one period at a time so each step is a vector operation."""
    damping = rng.uniform(0.490, 0.4985)
    brightness = int(rng.integers(1, 6))

    def voice(pitch: int, n: int, sr: int) -> Sound:
        period = max(2, round(sr / hz(pitch) - 0.5))  # the two-point average delays 0.5
        blocks = np.empty((n // period + 2, period))
        noise = np.random.default_rng(pitch).standard_normal(period + brightness - 1)
        first = np.convolve(noise, np.ones(brightness) / brightness, "valid")
        blocks[0] = first - first.mean()  # the loop keeps any DC forever
        before = 0.0
        for b in range(1, len(blocks)):
            prev = blocks[b - 1]
            blocks[b] = damping * (prev + np.concatenate(([before], prev[:-1])))
            before = prev[-1]
        return blocks.ravel()[:n]

    return voice


def notes_stem(notes: Sequence[Note], voice: Voice, frames: int, sr: int, longest: float) -> Sound:
    """Render notes with one voice; each (pitch, length) is synthesised once."""
    stem = np.zeros(frames)
    cache: dict[tuple[int, int], np.ndarray] = {}
    for note in notes:
        start = int(note.start * sr)
        n = max(16, min(int(note.length * sr), int(longest * sr)))
        if start >= frames or start + n <= 0:
            continue
        if (note.pitch, n) not in cache:
            cache[note.pitch, n] = voice(note.pitch, n, sr) * fades(n, sr)
        sound = cache[note.pitch, n]
        place(stem, start, sound, note.velocity)
    return stem


def place(stem: np.ndarray, start: int, sound: np.ndarray, gain: float = 1.0) -> None:
    """Add `sound` into `stem` from frame `start` (which may be negative), cut at both ends."""
    a, b = max(0, start), min(len(stem), start + len(sound))
    if b > a:
        stem[a:b] += gain * sound[a - start : b - start]


def hits_stem(hits: Sequence[Note], sound: Sound, frames: int, sr: int) -> Sound:
    """One drum sound played at every hit, scaled by the hit's velocity."""
    stem = np.zeros(frames)
    for hit in hits:
        place(stem, int(hit.start * sr), sound, hit.velocity)
    return stem


# ---------------------------------------------------------------------------- speech

# Voices are split between training and the held-out test, so the test hears new speakers.
TRAIN_VOICES = ("f1", "f2", "f4", "m1", "m2", "m3", "m5", "m7", "klatt", "croak", "steph", "david")
TEST_VOICES = ("f3", "f5", "m4", "m6", "klatt2", "linda", "robert", "john")
SYLLABLES = (
    "yeah", "hey", "oh", "ah", "uh", "woah", "la", "na", "ooh", "ya", "go", "what",
    "baby", "no", "huh", "okay", "let's go", "ay", "mm", "woo",
)  # fmt: skip
PHRASES = (
    "I told you this would happen",
    "we don't have much time",
    "you have no idea what you are dealing with",
    "this city never sleeps",
    "everything has a price",
    "they are coming for us",
    "I never wanted any of this",
    "listen to me very carefully",
    "the money was never the point",
    "nobody leaves this room",
    "it was all a dream",
    "you can't stop what is coming",
    "welcome to the other side",
    "trust no one",
    "we were kings once",
    "do you know who I am",
)


def speak(text: str, voice: str, speed: int, pitch: int, sr: int) -> Sound:
    """espeak-ng's rendering of `text`, cached on disk: a corpus asks for the same few often."""
    key = hashlib.sha1(f"{text}|{voice}|{speed}|{pitch}".encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "curator-trap-speech"
    path = folder / f"{key}.wav"
    if not path.is_file():
        _espeak_to(path, text, voice, speed, pitch)
    audio, rate = sf.read(path, dtype="float64", always_2d=True)
    audio = audio[:, 0]
    if rate != sr:
        audio = soxr.resample(audio, rate, sr)
    return normalised(np.trim_zeros(audio))


def _espeak_to(path: Path, text: str, voice: str, speed: int, pitch: int) -> None:
    if shutil.which("espeak-ng") is None:
        raise CuratorError("espeak-ng is not installed: run `bash scripts/system-deps.sh`")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{np.random.default_rng().integers(1 << 30)}.partial")
    command = ["espeak-ng", "-w", str(partial), "-v", f"en+{voice}", "-s", str(speed)]
    subprocess.run([*command, "-p", str(pitch), text], check=True, capture_output=True)
    partial.replace(path)  # whole or not at all: workers share the cache


def vocal_chops(
    rng: np.random.Generator, voices: Sequence[str], times: Sequence[Note], frames: int, sr: int
) -> Sound:
    """Short pitched syllables placed on the grid: one or two chopped, re-pitched words."""
    stem = np.zeros(frames)
    words = [
        speak(str(rng.choice(SYLLABLES)), str(rng.choice(voices)), int(rng.integers(120, 220)),
              int(rng.integers(20, 90)), sr)
        for _ in range(int(rng.integers(1, 3)))
    ]  # fmt: skip
    chops = [_chop(rng, word, sr) for word in words for _ in range(2)]
    for note in times:
        chop = chops[int(rng.integers(len(chops)))]
        shifted = _repitch(chop, (note.pitch - 54) % 12 - 6)  # within a tritone of the word
        n = min(len(shifted), int(note.length * sr))
        if n > 32:
            place(
                stem, int(note.start * sr), shifted[:n] * fades(n, sr, 0.002, 0.01), note.velocity
            )
    return stem


def _chop(rng: np.random.Generator, word: Sound, sr: int) -> Sound:
    length = min(len(word), int(rng.uniform(0.08, 0.35) * sr))
    start = int(rng.integers(0, max(1, len(word) - length)))
    chop = word[start : start + length]
    return chop[::-1].copy() if rng.random() < 0.15 else chop


def _repitch(sound: Sound, semitones: float) -> Sound:
    """Re-sample to a new pitch (and length), as a sampler does."""
    ratio = 2 ** (semitones / 12)
    return soxr.resample(sound, 1000 * ratio, 1000) if semitones else sound


def movie_sample(
    rng: np.random.Generator, voices: Sequence[str], start: float, frames: int, sr: int
) -> Sound:
    """A spoken line as if lifted from an old film: band-limited, with hiss and crackle."""
    words = speak(str(rng.choice(PHRASES)), str(rng.choice(voices)), int(rng.integers(110, 170)),
                  int(rng.integers(25, 65)), sr)  # fmt: skip
    low, high = rng.uniform(200, 500), rng.uniform(2500, 4500)
    line = filtered(words, "bandpass", (low, high), sr)
    line = np.tanh(rng.uniform(1, 3) * normalised(line))
    hiss = filtered(rng.standard_normal(len(line)), "highpass", 3000, sr) * rng.uniform(0.01, 0.04)
    crackle = (rng.random(len(line)) < 30 / sr) * rng.uniform(-0.3, 0.3, len(line))
    stem = np.zeros(frames)
    place(stem, int(start * sr), normalised(line) + hiss + crackle)
    return stem
