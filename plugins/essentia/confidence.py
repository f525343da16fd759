"""How sure each measurement is, in 0..1, from evidence in the audio and the estimators' own."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME, HOP = 2048, 512
BAND_EDGES = np.geomspace(40.0, 16000.0, 13)  # 12 log-spaced bands for the onset curve, Hz
FLOOR_DB = -80.0  # band energies this far below the loudest count as silence
TOLERANCE = 0.04  # the usual tempo tolerance (MIREX Acc1): periods within 4% agree
CLEAR_PERIODICITY = 0.5  # autocorrelation at the beat period that counts as a clear pulse
CLEAR_ONSET_DB = 1.0  # spread of the onset curve (dB per frame) that counts as real onsets
MAX_BEAT_CV = 0.1  # beat-interval variation at which steadiness reaches 0
DISAGREEMENT = 0.6  # kept when the second estimator reads another tempo: below the 0.7 bar
# Essentia documents RhythmExtractor2013's multifeature confidence (0-5.32 bits of mutual
# agreement between its trackers) as very low below 1, low to 1.5, good to 3.5, excellent
# above; where it starts calling the tracking good is mapped onto Curator's 0.7 bar.
MULTIFEATURE_BITS = (0.0, 1.5, 3.5, 5.32)
MULTIFEATURE_SCORE = (0.0, 0.7, 0.95, 1.0)
NOISE_FLATNESS = 0.4  # median spectral flatness at which a segment counts as pure noise
KEY_BAND = (60.0, 5000.0)  # where key-bearing partials are, Hz
# Octave: the slowest tempo music is written at (half a tempo below it is no rival), and the
# pulse halfway between beats, as a share of the beat's own, from which the beats count as
# subdivided (below the first, the beats may be the 8ths of a beat at half the tempo). Both
# chosen on the benchmark's tuning set (bench/analyzer_bench.py), not on its held-out one.
SLOWEST_BPM = 60.0
SUBDIVIDED = (0.3, 0.8)
# Key: the Krumhansl-Kessler profiles (1982), from the tonic up, as a second opinion beside
# the estimator's own; and the lead in correlation over the key's relative and fifths at which
# the choice counts as clear (chosen on the tuning set, like SUBDIVIDED).
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
CLEAR_KEY_MARGIN = 0.1


@dataclass(frozen=True)
class OnsetCurve:
    """Mean rise in dB across bands from frame to frame (a band-wise spectral flux)."""

    values: np.ndarray
    frame_rate: float


def power_frames(mono: np.ndarray, sample_rate: int) -> np.ndarray:
    """Hann-windowed power spectra, one row per hop (none when shorter than a frame)."""
    if len(mono) < FRAME + HOP:
        return np.zeros((0, FRAME // 2 + 1))
    frames = np.lib.stride_tricks.sliding_window_view(mono, FRAME)[::HOP] * np.hanning(FRAME)
    return np.abs(np.fft.rfft(frames, axis=1)) ** 2


def onset_curve(power: np.ndarray, sample_rate: int) -> OnsetCurve:
    """Band levels in dB, then their frame-to-frame rises, averaged over the bands."""
    starts = np.searchsorted(np.fft.rfftfreq(FRAME, 1 / sample_rate), BAND_EDGES[:-1])
    bands = np.add.reduceat(power, starts, axis=1)[:, : len(starts)] if len(power) else power
    # A floor relative to the loudest band makes the curve independent of the gain.
    floor = bands.max(initial=0.0) * 10 ** (FLOOR_DB / 10) + 1e-30
    rises = np.maximum(np.diff(10 * np.log10(bands + floor), axis=0), 0.0)
    return OnsetCurve(rises.mean(axis=1) if rises.size else np.zeros(0), sample_rate / HOP)


def autocorrelation(values: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation of the mean-removed values (1 at lag 0; all 0 if flat)."""
    centred = values - values.mean() if len(values) else values
    spectrum = np.fft.rfft(centred, 2 * len(centred))
    ac = np.fft.irfft(np.abs(spectrum) ** 2)[: len(centred)]
    return ac / ac[0] if len(ac) and ac[0] > 0 else np.zeros(len(centred))


def pulse(curve: OnsetCurve, bpm: float) -> float:
    """0..1: the onset curve repeats at the beat period, and it has real onsets.

    Both are needed: white noise and irregular notes have onsets that do not repeat, and
    a sustained tone's curve can repeat (its partials beat) while hardly moving at all.
    """
    if bpm <= 0 or len(curve.values) < 4:
        return 0.0
    repeats = _periodicity(autocorrelation(curve.values), 60.0 / bpm * curve.frame_rate)
    onsets = float(np.std(curve.values)) / CLEAR_ONSET_DB
    return float(np.clip(repeats / CLEAR_PERIODICITY, 0.0, 1.0) * min(1.0, onsets))


def _periodicity(ac: np.ndarray, lag: float) -> float:
    """The autocorrelation's peak within the tempo tolerance of `lag` frames."""
    low, high = max(1, int(lag * (1 - TOLERANCE))), int(np.ceil(lag * (1 + TOLERANCE)))
    window = ac[low : high + 1]
    return float(window.max()) if len(window) else 0.0


def steadiness(ticks: np.ndarray) -> float:
    """0..1 from the regularity of the beat intervals: 1 for a metronome, 0 at 10% variation."""
    intervals = np.diff(np.asarray(ticks, dtype=float))
    if len(intervals) < 4 or intervals.mean() <= 0:
        return 0.0
    variation = intervals.std() / intervals.mean()
    return float(max(0.0, 1.0 - (variation / MAX_BEAT_CV) ** 2))


def curve_tempo(curve: OnsetCurve, low: float = 60.0, high: float = 200.0) -> float:
    """A second, independent estimate: the curve's strongest period between low and high BPM."""
    ac = autocorrelation(curve.values)
    first = int(curve.frame_rate * 60 / high)
    lags = np.arange(first, min(len(ac), int(curve.frame_rate * 60 / low) + 1))
    return float(60.0 * curve.frame_rate / lags[np.argmax(ac[lags])]) if len(lags) else 0.0


def agreement(bpm: float, other: float) -> float:
    """1 when two tempos agree within the tolerance, at the same, double or half tempo."""
    ratio = other / bpm if bpm > 0 and other > 0 else 0.0
    close = any(abs(ratio / factor - 1) <= TOLERANCE for factor in (0.5, 1.0, 2.0))
    return 1.0 if close else DISAGREEMENT


def degara_confidence(curve: OnsetCurve, bpm: float, ticks: np.ndarray) -> float:
    """pulse x steadiness x agreement, since the degara tracker reports no confidence.

    A tracker finds a plausible beat even in noise or under a sustained chord, so the
    audio is checked on its own (pulse), the tracker's beats must be regular (steadiness),
    and a second estimator must find the same tempo up to an octave (agreement): the usual
    failure of a working tracker is a 3:4 reading, which the second one rarely shares.
    """
    steady = steadiness(ticks)
    return pulse(curve, bpm) * steady * agreement(bpm, curve_tempo(curve)) if steady else 0.0


def multifeature_confidence(curve: OnsetCurve, bpm: float, bits: float) -> float:
    """Essentia's own multifeature confidence mapped to 0..1, times the pulse check."""
    score = float(np.interp(bits, MULTIFEATURE_BITS, MULTIFEATURE_SCORE))
    return score * pulse(curve, bpm)


def tempocnn_confidence(
    curve: OnsetCurve, bpm: float, local_bpm: np.ndarray, probabilities: np.ndarray
) -> float:
    """TempoCNN's probability mass on patches that agree with its global tempo, times pulse."""
    if len(local_bpm) == 0 or bpm <= 0:
        return 0.0
    agreeing = np.abs(np.asarray(local_bpm) / bpm - 1) <= TOLERANCE
    share = float(np.asarray(probabilities)[agreeing].sum() / len(local_bpm))
    return min(1.0, share) * pulse(curve, bpm)


def octave_certainty(curve: OnsetCurve, bpm: float) -> float:
    """0..1: the beats at `bpm` are subdivided, so they are not the 8ths of a beat half as fast.

    Trap is written at 60-80 and 130-160 BPM and a tracker can lock onto either octave;
    the onset curve repeats at twice the beat period whatever the tempo (every periodic
    curve does), so a peak there settles nothing. What tells a beat from a subdivision is
    what lies between beats: hats or kicks halfway between them repeat at half the period.
    When nothing does and half the tempo is still a tempo music is written at, the reading
    may be double the true one. The reverse doubt (a beat at 75-80 whose double, 150-160,
    is the true tempo) has no such sign: on rendered beats the pulse at half the period was
    as strong for either, so it is not scored; raise tempo_max for fast trap instead.
    """
    if bpm / 2 < SLOWEST_BPM or len(curve.values) < 4:
        return 1.0
    ac = autocorrelation(curve.values)
    lag = 60.0 / bpm * curve.frame_rate
    beat = _periodicity(ac, lag)
    if beat <= 0:
        return 1.0  # no pulse at all: pulse() already scores that
    low, high = SUBDIVIDED
    return float(np.clip((_periodicity(ac, lag / 2) / beat - low) / (high - low), 0.0, 1.0))


def key_correlations(pcp: np.ndarray) -> dict[tuple[int, str], float]:
    """Pearson correlation of a pitch-class profile (C first) with each of the 24 keys."""
    if not np.ptp(pcp) > 0:
        return {(tonic, scale): 0.0 for tonic in range(12) for scale in ("major", "minor")}
    return {
        (tonic, scale): float(np.corrcoef(pcp, np.roll(profile, tonic))[0, 1])
        for scale, profile in (("major", KK_MAJOR), ("minor", KK_MINOR))
        for tonic in range(12)
    }


def rivals(tonic: int, scale: str) -> list[tuple[int, str]]:
    """The keys most often mistaken for this one: its relative, and its fifths up and down."""
    relative = ((tonic + 9) % 12, "minor") if scale == "major" else ((tonic + 3) % 12, "major")
    return [relative, ((tonic + 7) % 12, scale), ((tonic + 5) % 12, scale)]


def key_margin(pcp: np.ndarray, tonic: int, scale: str) -> float:
    """0..1: how clearly the profile prefers the key over its relative and its fifths.

    A loop such as i-VI-III-VII holds exactly the notes of its relative major, and key
    estimators pick either with a high strength; what separates them is how much better
    one fits. Scored with other profiles (Krumhansl-Kessler) than the estimator's, so a
    choice they do not share counts as unclear too. 1 from a lead of CLEAR_KEY_MARGIN.
    """
    scores = key_correlations(pcp)
    lead = scores[(tonic, scale)] - max(scores[key] for key in rivals(tonic, scale))
    return float(np.clip(lead / CLEAR_KEY_MARGIN, 0.0, 1.0))


def tonality(power: np.ndarray, sample_rate: int) -> float:
    """0..1: 1 when the spectrum has peaks (partials), 0 for white noise.

    KeyExtractor correlates whatever chroma it finds with the key profiles, and white noise
    scores a strength of 0.7-0.9 that way. Its median spectral flatness is 0.56, that of
    rendered beats (drums included) below 0.002, so the quadratic barely touches music.
    """
    if len(power) == 0:
        return 0.0
    freqs = np.fft.rfftfreq(FRAME, 1 / sample_rate)
    band = power[:, (freqs >= KEY_BAND[0]) & (freqs < KEY_BAND[1])] + 1e-30
    heard = power.sum(axis=1) > 1e-6 * power.sum(axis=1).max(initial=0.0)
    if not heard.any():
        return 0.0
    flatness = np.exp(np.log(band).mean(axis=1)) / band.mean(axis=1)
    return float(max(0.0, 1.0 - (np.median(flatness[heard]) / NOISE_FLATNESS) ** 2))
