"""The Essentia analyzer: tempo, key, scale and loudness of each segment, each with a confidence."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import essentia.standard as es
import numpy as np
import soxr

from curator.api import (
    NOTE_NAMES,
    Analyzer,
    Measurement,
    PluginContext,
    SegmentAudio,
    to_channels,
)

from . import confidence
from .settings import EssentiaSettings

RHYTHM_RATE = 44100  # RhythmExtractor2013 is tuned for this rate only
TEMPOCNN_RATE = 11025  # what the TempoCNN models were trained on
# Essentia spells five keys with flats; the rest of Curator (vocabularies, demo truth) sharps.
SHARPS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}
SILENCE_LUFS = -70.0  # EBU R128's absolute gate: nothing quieter counts
KEY_FRAME = 4096  # KeyExtractor's frame and hop
PCP_THRESHOLD = 0.2  # KeyExtractor's: profile bins under this share of the loudest count as 0
A_TO_C = 3  # HPCP bins start at A (its 440 Hz reference), Curator's pitch classes at C


@dataclass(frozen=True)
class TempoEstimate:
    """A tempo as the estimator read it (before folding into the range) and how sure it is."""

    bpm: float
    confidence: float


class EssentiaAnalyzer(Analyzer):
    """Tempo (RhythmExtractor2013 or TempoCNN), key and scale (KeyExtractor's), loudness (R128)."""

    name = "essentia"
    version = "1"
    measures: tuple[str, ...] = ("tempo", "key", "scale")  # and "loudness" when turned on
    sample_rate = 44100
    channels = 1

    def setup(self, context: PluginContext) -> None:
        super().setup(context)
        self.settings = EssentiaSettings.from_mapping(context.settings)
        self.sample_rate = self.settings.sample_rate
        loudness = ("loudness",) if self.settings.loudness else ()
        self.measures = ("tempo", "key", "scale", *loudness)
        self._tempo = _tempo_estimator(self.settings)
        self._key = KeyFinder(self.settings.key_profile, self.sample_rate)
        self._loudness = es.LoudnessEBUR128(sampleRate=self.sample_rate)

    def analyze(self, batch: Sequence[SegmentAudio]) -> list[list[Measurement]]:
        if not hasattr(self, "settings"):  # used without a run: the documented defaults
            self.setup(PluginContext())
        return [self.measure(segment) for segment in batch]

    def settings_for_run(self) -> dict[str, Any]:
        """Every setting in force, defaults included, so a run records what produced it."""
        values = dataclasses.asdict(self.settings) if hasattr(self, "settings") else {}
        return {k: str(v) if k == "tempocnn_graph" and v else v for k, v in values.items()}

    def measure(self, segment: SegmentAudio) -> list[Measurement]:
        """All measurements of one segment; none for a segment without audio."""
        audio = _at_rate(segment.audio, segment.sample_rate, self.sample_rate)
        mono = _mono(audio)
        if len(mono) == 0:
            return []
        power = confidence.power_frames(mono, self.sample_rate)
        found = [*self._tempo_measurements(mono, power), *self._key_measurements(mono, power)]
        if self.settings.loudness:
            found.append(self._loudness_measurement(audio))
        return found

    def _tempo_measurements(self, mono: np.ndarray, power: np.ndarray) -> list[Measurement]:
        """The tempo, folded into the range; none when the estimator found no beat at all.

        The octave is checked on the folded tempo, the one reported, whichever estimator ran.
        """
        curve = confidence.onset_curve(power, self.sample_rate)
        estimate = self._tempo(mono, self.sample_rate, curve)
        if not estimate.bpm > 0:
            return []
        bpm = fold_tempo(estimate.bpm, self.settings.tempo_min, self.settings.tempo_max)
        sure = estimate.confidence * confidence.octave_certainty(curve, bpm)
        return [Measurement("tempo", value=round(bpm, 2), confidence=_unit(sure))]

    def _key_measurements(self, mono: np.ndarray, power: np.ndarray) -> list[Measurement]:
        found = self._key(mono)
        margin = confidence.key_margin(found.pcp, NOTE_NAMES.index(found.key), found.scale)
        sure = _unit(found.strength * confidence.tonality(power, self.sample_rate) * margin)
        return [
            Measurement("key", text=found.key, confidence=sure),
            Measurement("scale", text=found.scale, confidence=sure),
        ]

    def _loudness_measurement(self, audio: np.ndarray) -> Measurement:
        lufs = float(self._loudness(_stereo(audio))[2])
        value = lufs if np.isfinite(lufs) else SILENCE_LUFS
        return Measurement("loudness", value=round(max(value, SILENCE_LUFS), 2), confidence=1.0)


def fold_tempo(bpm: float, low: float, high: float) -> float:
    """Halve or double `bpm` into [low, high]; inside it, the estimator's reading stands."""
    if bpm <= 0:
        return bpm
    while bpm > high:
        bpm /= 2
    while bpm < low:
        bpm *= 2
    return bpm


@dataclass(frozen=True)
class KeyEstimate:
    """A key (spelled with sharps), its strength, and the pitch-class profile it came from."""

    key: str
    scale: str
    strength: float
    pcp: np.ndarray  # 12 bins, C first


class KeyFinder:
    """Essentia's KeyExtractor, its network spelled out with its own parameters.

    Same algorithms, same settings, so the same keys and strengths; written out so that the
    mean HPCP it correlates with the key profile is kept for the confidence (key_margin).
    """

    def __init__(self, profile: str, rate: int) -> None:
        self.window = es.Windowing(type="hann", size=KEY_FRAME)
        self.spectrum = es.Spectrum(size=KEY_FRAME)
        band = {"minFrequency": 25.0, "maxFrequency": 3500.0, "sampleRate": rate}
        self.peaks = es.SpectralPeaks(
            orderBy="magnitude", magnitudeThreshold=1e-4, maxPeaks=60, **band
        )
        self.whitening = es.SpectralWhitening(maxFrequency=3500.0, sampleRate=rate)
        self.hpcp = es.HPCP(
            size=12, referenceFrequency=440.0, harmonics=4, bandPreset=False, nonLinear=False,
            normalized="none", weightType="cosine", windowSize=1.0, maxShifted=False, **band,
        )  # fmt: skip
        self.key = es.Key(
            profileType=profile, pcpSize=12, usePolyphony=False, useThreeChords=False,
            numHarmonics=4, slope=0.6,
        )  # fmt: skip

    def __call__(self, mono: np.ndarray) -> KeyEstimate:
        frames = es.FrameGenerator(mono, frameSize=KEY_FRAME, hopSize=KEY_FRAME)
        profiles = [self._frame_hpcp(frame) for frame in frames]
        mean = np.mean(profiles, axis=0) if profiles else np.zeros(12)
        pcp = mean / mean.max() if mean.max() > 0 else mean
        pcp = np.where(pcp < PCP_THRESHOLD, 0.0, pcp).astype(np.float32)
        key, scale, strength, _ = self.key(pcp)
        return KeyEstimate(SHARPS.get(key, key), scale, float(strength), np.roll(pcp, -A_TO_C))

    def _frame_hpcp(self, frame: np.ndarray) -> np.ndarray:
        spectrum = self.spectrum(self.window(frame))
        frequencies, magnitudes = self.peaks(spectrum)
        return self.hpcp(frequencies, self.whitening(spectrum, frequencies, magnitudes))


def _tempo_estimator(settings: EssentiaSettings) -> Any:
    if settings.tempocnn_graph is not None:
        return TempoCnnTempo(str(settings.tempocnn_graph))
    return RhythmTempo(settings.bpm_method)


class RhythmTempo:
    """RhythmExtractor2013 at 44.1 kHz, with a confidence for either of its beat trackers."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.extract = es.RhythmExtractor2013(method=method)

    def __call__(self, mono: np.ndarray, rate: int, curve: confidence.OnsetCurve) -> TempoEstimate:
        bpm, ticks, bits, _, _ = self.extract(_resampled(mono, rate, RHYTHM_RATE))
        if self.method == "multifeature":
            return TempoEstimate(float(bpm), confidence.multifeature_confidence(curve, bpm, bits))
        return TempoEstimate(float(bpm), confidence.degara_confidence(curve, bpm, ticks))


class TempoCnnTempo:
    """TempoCNN from a local graph, run at 11025 Hz; its patch probabilities give the confidence."""

    def __init__(self, graph: str) -> None:
        self.predict = es.TempoCNN(graphFilename=graph)

    def __call__(self, mono: np.ndarray, rate: int, curve: confidence.OnsetCurve) -> TempoEstimate:
        bpm, local, probabilities = self.predict(_resampled(mono, rate, TEMPOCNN_RATE))
        sure = confidence.tempocnn_confidence(curve, bpm, local, probabilities)
        return TempoEstimate(float(bpm), sure)


def _mono(audio: np.ndarray) -> np.ndarray:
    """Essentia wants one contiguous float32 channel."""
    mono = to_channels(audio, 1)[:, 0] if audio.ndim == 2 else audio
    return np.ascontiguousarray(mono, dtype=np.float32)


def _stereo(audio: np.ndarray) -> np.ndarray:
    """LoudnessEBUR128 takes stereo; mono goes to both speakers, as a mono file is played."""
    audio = audio[:, None] if audio.ndim == 1 else audio
    return np.ascontiguousarray(to_channels(audio, 2), dtype=np.float32)


def _at_rate(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """The host decodes at the analyzer's rate; audio from elsewhere is resampled to it."""
    if rate == target or len(audio) == 0:
        return audio
    return soxr.resample(audio, rate, target, quality="HQ").astype(np.float32)


def _resampled(mono: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return mono
    return np.ascontiguousarray(soxr.resample(mono, rate, target, quality="HQ"), dtype=np.float32)


def _unit(value: float) -> float:
    """Confidences are stored in 0..1 whatever an estimator returns (NaN counts as 0)."""
    return float(np.clip(np.nan_to_num(value), 0.0, 1.0))
