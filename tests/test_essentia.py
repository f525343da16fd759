"""The Essentia analyzer: real Essentia algorithms on rendered beats, confidences, settings."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest

# The plugin first: essentia must be imported before anything that may import TensorFlow.
import curator.plugins.essentia as essentia_plugin  # isort: skip
from curator.api import Measurement, PluginContext, SegmentAudio
from curator.catalogue.audio import decode_window
from curator.demo import BeatSpec, load_truth, render_demo_dataset
from curator.errors import SettingsError
from curator.music import NOTE_NAMES
from curator.plugins.essentia import EssentiaAnalyzer, EssentiaSettings, analyzer, confidence
from curator.registry import load_registry
from curator.registry.manager import get_plugin_manager

RATE = 44100
SECONDS = 25.0
BAR = 0.7  # Curator uses a value as a label only at or above this confidence


def segment(audio: np.ndarray, name: str = "s", rate: int = RATE) -> SegmentAudio:
    return SegmentAudio(
        name, (audio if audio.ndim == 2 else audio[:, None]).astype(np.float32), rate
    )


def by_name(found: list[Measurement]) -> dict[str, Measurement]:
    return {m.name: m for m in found}


def acc2(estimate: float, truth: float) -> bool:
    """MIREX Acc2: within 4% of the tempo or of its double, half, triple or third."""
    return any(abs(estimate - truth * f) <= 0.04 * truth * f for f in (1, 2, 0.5, 3, 1 / 3))


def noise(seed: int, seconds: float = SECONDS) -> np.ndarray:
    return 0.2 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))


def sustained_tone(f0: float, seconds: float = SECONDS) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return 0.3 * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 4))


def click_track(bpm: float, hats: bool, seconds: float = 12.0) -> np.ndarray:
    """A kick on every beat, every other one softer (a half-time accent), and 8th hats if asked."""
    t = np.arange(int(0.08 * RATE)) / RATE
    kick = np.sin(2 * np.pi * 60 * t) * np.exp(-t / 0.03)
    hat = np.diff(np.random.default_rng(0).standard_normal(len(t)), prepend=0) * np.exp(-t / 0.01)
    out, period = np.zeros(int(seconds * RATE)), 60.0 / bpm
    for i, at in enumerate(np.arange(0.0, seconds - 0.1, period / 2)):
        start = int(at * RATE)
        if i % 2 == 0:
            out[start : start + len(t)] += kick * (1.0 if i % 4 == 0 else 0.4)
        if hats:
            out[start : start + len(t)] += 0.6 * hat
    return 0.5 * out / np.abs(out).max()


def scale_tones(weights: dict[int, float], seconds: float = 8.0) -> np.ndarray:
    """Pitch classes (0 = C) played as plucked notes in turn over two octaves, at these levels."""
    t = np.arange(int(0.5 * RATE)) / RATE
    out, at = np.zeros(int(seconds * RATE)), 0
    while at + len(t) <= len(out):
        for pc, level in weights.items():
            for octave in (48, 60):
                f0 = 440.0 * 2 ** ((octave + pc - 69) / 12)
                note = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in (1, 2, 3))
                if at + len(t) <= len(out):
                    out[at : at + len(t)] += level * note * np.exp(-t / 0.25)
            at += len(t) // 2
    return 0.3 * out / np.abs(out).max()


def irregular_notes(seed: int, seconds: float = SECONDS) -> np.ndarray:
    """Plucked notes 0.25-1.1 s apart at random: onsets, but no steady beat (rubato at worst)."""
    rng = np.random.default_rng(seed)
    out, t, at = np.zeros(int(seconds * RATE)), np.arange(RATE) / RATE, 0.0
    while at < seconds - 1:
        start, f0 = int(at * RATE), 110 * 2 ** (rng.integers(0, 24) / 12)
        out[start : start + RATE] += np.sin(2 * np.pi * f0 * t) * np.exp(-t / 0.3)
        at += rng.uniform(0.25, 1.1)
    return 0.3 * out


@pytest.fixture(scope="module")
def beats(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[BeatSpec, np.ndarray]]:
    folder = tmp_path_factory.mktemp("essentia-beats")
    render_demo_dataset(folder, 8, seed=5)
    return [
        (spec, decode_window(folder / name, 2.0, SECONDS, sample_rate=RATE, channels=1)[:, 0])
        for name, spec in sorted(load_truth(folder).items())
    ]


@pytest.fixture(scope="module")
def degara() -> EssentiaAnalyzer:
    plugin = EssentiaAnalyzer()
    plugin.setup(PluginContext())
    return plugin


@pytest.fixture(scope="module")
def measured(beats, degara) -> list[dict[str, Measurement]]:
    return [by_name(found) for found in degara.analyze([segment(a) for _, a in beats])]


# ------------------------------------------------------------------------- registration


def test_registered_through_its_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURATOR_LOAD_PLUGINS", "essentia")
    registry = load_registry()
    if "essentia" not in registry.names("analyzers"):  # entry point not installed in this env
        pm = get_plugin_manager(load_entry_points=False)
        pm.register(essentia_plugin, name="essentia")
        registry = load_registry(pm)
    assert isinstance(registry.analyzer("essentia"), EssentiaAnalyzer)
    assert "essentia" not in registry.errors


def test_analyzer_contract_attributes() -> None:
    plugin = EssentiaAnalyzer()
    assert (plugin.name, plugin.sample_rate, plugin.channels) == ("essentia", 44100, 1)
    assert plugin.measures == ("tempo", "key", "scale")


# ------------------------------------------------------------------------- accuracy


def test_tempo_within_4_percent_of_truth_or_its_octave(beats, measured) -> None:
    hits = [
        acc2(m["tempo"].value, spec.tempo) for (spec, _), m in zip(beats, measured, strict=True)
    ]
    assert sum(hits) >= len(beats) - 1, [
        (s.tempo, m["tempo"].value) for (s, _), m in zip(beats, measured, strict=True)
    ]


def test_tempo_is_folded_into_the_range(measured) -> None:
    assert all(75 <= m["tempo"].value <= 150 for m in measured)


def test_key_and_scale_exact_on_most_beats(beats, measured) -> None:
    exact = [
        (m["key"].text, m["scale"].text) == (spec.key, spec.scale)
        for (spec, _), m in zip(beats, measured, strict=True)
    ]
    assert sum(exact) >= len(beats) - 2


def test_keys_are_spelled_with_sharps(measured) -> None:
    assert all(m["key"].text in NOTE_NAMES for m in measured)
    assert analyzer.SHARPS["Eb"] == "D#"


# ------------------------------------------------------------------------- confidence


def test_correct_estimates_mostly_pass_the_bar(beats, measured) -> None:
    tempo = [
        m["tempo"].confidence
        for (s, _), m in zip(beats, measured, strict=True)
        if acc2(m["tempo"].value, s.tempo)
    ]
    key = [m["key"].confidence for m in measured]
    assert sum(c >= BAR for c in tempo) >= len(tempo) - 1
    assert sum(c >= BAR for c in key) >= len(key) - 1
    assert all(
        0.0 <= c <= 1.0 for m in measured for c in (m["tempo"].confidence, m["key"].confidence)
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_white_noise_gets_low_confidence(degara, seed) -> None:
    found = by_name(degara.analyze([segment(noise(seed))])[0])
    assert found["tempo"].confidence < 0.3
    assert found["key"].confidence < BAR
    assert found["scale"].confidence == found["key"].confidence


@pytest.mark.parametrize("f0", [110.0, 247.0, 523.0])
def test_sustained_tone_gets_low_tempo_confidence(degara, f0) -> None:
    found = by_name(degara.analyze([segment(sustained_tone(f0))])[0])
    assert found["tempo"].confidence < 0.3


@pytest.mark.parametrize("seed", [1, 2])
def test_irregular_notes_get_low_tempo_confidence(degara, seed) -> None:
    found = by_name(degara.analyze([segment(irregular_notes(seed))])[0])
    assert found["tempo"].confidence < 0.3


def test_steadiness_separates_a_metronome_from_rubato() -> None:
    metronome = np.arange(40) * 0.5
    rubato = np.cumsum(np.random.default_rng(0).uniform(0.35, 0.65, 40))
    assert confidence.steadiness(metronome) == pytest.approx(1.0)
    assert confidence.steadiness(rubato) < 0.2
    assert confidence.steadiness(np.array([0.0, 0.5])) == 0.0


def test_agreement_allows_double_and_half_but_not_three_quarters() -> None:
    assert confidence.agreement(140.0, 70.5) == 1.0
    assert confidence.agreement(70.0, 139.0) == 1.0
    assert confidence.agreement(81.0, 108.0) == confidence.DISAGREEMENT < BAR


def test_unsubdivided_beats_doubt_their_octave(degara) -> None:
    """Kicks at 140 with nothing between them may be the 8ths of a beat at 70; with 8th hats
    between them they are beats. At 100 BPM half the tempo (50) is no tempo: no doubt."""
    ambiguous, subdivided, slow = (
        by_name(degara.analyze([segment(click_track(bpm, hats))])[0])["tempo"]
        for bpm, hats in ((140.0, False), (140.0, True), (100.0, False))
    )
    assert ambiguous.value == pytest.approx(140.0, rel=0.04)
    assert subdivided.value == pytest.approx(140.0, rel=0.04)
    assert ambiguous.confidence < BAR <= slow.confidence
    assert subdivided.confidence > ambiguous.confidence + 0.3


def test_a_key_as_likely_as_its_relative_gets_low_confidence(degara) -> None:
    """The seven notes of C major at one level fit A minor as well; the C major triad loud
    over the same scale does not."""
    diatonic = {pc: 1.0 for pc in (0, 2, 4, 5, 7, 9, 11)}
    ambiguous = by_name(degara.analyze([segment(scale_tones(diatonic))])[0])
    clear = by_name(degara.analyze([segment(scale_tones(diatonic | {0: 3.0, 4: 2.0, 7: 2.5}))])[0])
    assert (clear["key"].text, clear["scale"].text) == ("C", "major")
    assert clear["key"].confidence >= BAR > ambiguous["key"].confidence


def test_key_margin_is_the_lead_over_the_relative_and_fifths() -> None:
    c_major = confidence.KK_MAJOR  # a profile exactly like the reference: a clear lead
    assert confidence.key_margin(c_major, 0, "major") == 1.0
    assert confidence.key_margin(c_major, 9, "minor") == 0.0  # the relative fits worse
    assert confidence.rivals(9, "minor") == [(0, "major"), (4, "minor"), (2, "minor")]
    flat = np.array([1.0, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1])  # C major's notes, none louder
    assert 0.0 < confidence.key_margin(flat, 0, "major") < 0.5
    assert confidence.key_margin(flat, 9, "minor") == 0.0
    assert confidence.key_margin(np.zeros(12), 0, "major") == 0.0


def test_multifeature_confidence_is_essentias_own(beats) -> None:
    plugin = EssentiaAnalyzer()
    plugin.setup(PluginContext(settings={"bpm_method": "multifeature"}))
    (spec, audio), white = beats[0], segment(noise(3))
    beat_found, noise_found = (by_name(f) for f in plugin.analyze([segment(audio), white]))
    assert acc2(beat_found["tempo"].value, spec.tempo)
    assert beat_found["tempo"].confidence >= BAR > noise_found["tempo"].confidence


# ------------------------------------------------------------------------- edge cases


def test_empty_segment_has_no_measurements(degara) -> None:
    assert degara.analyze([segment(np.zeros(0))]) == [[]]


def test_silence_is_measured_with_zero_confidence(degara) -> None:
    found = by_name(degara.analyze([segment(np.zeros(5 * RATE))])[0])
    assert found["tempo"].confidence == 0.0
    assert found["key"].confidence == 0.0


def test_stereo_at_another_rate_gives_the_same_reading(beats, degara, measured) -> None:
    import soxr

    stereo = np.repeat(soxr.resample(beats[0][1], RATE, 48000)[:, None], 2, axis=1)
    found = by_name(degara.analyze([segment(stereo, rate=48000)])[0])
    assert found["tempo"].value == pytest.approx(measured[0]["tempo"].value, rel=0.02)
    assert found["key"].text == measured[0]["key"].text


def test_decodes_at_the_configured_rate(beats, measured) -> None:
    import soxr

    plugin = EssentiaAnalyzer()
    plugin.setup(PluginContext(settings={"sample_rate": 48000}))
    assert plugin.sample_rate == 48000
    found = by_name(
        plugin.analyze([segment(soxr.resample(beats[0][1], RATE, 48000), rate=48000)])[0]
    )
    assert found["tempo"].value == pytest.approx(measured[0]["tempo"].value, rel=0.02)


def test_loudness_of_a_sine_at_minus_20_dbfs_is_minus_20_lufs() -> None:
    plugin = EssentiaAnalyzer()
    plugin.setup(PluginContext(settings={"loudness": True}))
    assert "loudness" in plugin.measures
    t = np.arange(10 * RATE) / RATE
    found = by_name(plugin.analyze([segment(0.1 * np.sin(2 * np.pi * 997 * t))])[0])
    # A mono file plays on both speakers, so a -20 dBFS sine measures -20 LUFS (BS.1770).
    assert found["loudness"].value == pytest.approx(-20.0, abs=0.3)
    assert found["loudness"].confidence == 1.0


def test_fold_tempo() -> None:
    assert analyzer.fold_tempo(172.0, 70, 160) == 86.0
    assert analyzer.fold_tempo(66.0, 70, 160) == 132.0
    assert analyzer.fold_tempo(150.0, 70, 160) == 150.0
    assert analyzer.fold_tempo(75.0, 70, 160) == 75.0


# ------------------------------------------------------------------------- TempoCNN


class FakeTempoCnn:
    """Stands in for es.TempoCNN: no graph can be downloaded here, so the wiring is checked."""

    def __init__(self, graphFilename: str) -> None:
        self.graph, self.lengths = graphFilename, []

    def __call__(self, audio: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        self.lengths.append(len(audio))
        # beats[1] is at 75 BPM: three patches read it, one reads half of it.
        return 75.0, np.array([75.0, 75.0, 75.0, 37.5]), np.array([0.9, 0.9, 0.9, 0.5])


def test_tempocnn_graph_is_used_when_given(beats, monkeypatch, tmp_path: Path) -> None:
    graph = tmp_path / "deeptemp-k16-3.pb"
    graph.write_bytes(b"stand-in")
    monkeypatch.setattr(
        analyzer, "es", types.SimpleNamespace(**{**vars(analyzer.es), "TempoCNN": FakeTempoCnn})
    )
    plugin = EssentiaAnalyzer()
    plugin.setup(PluginContext(settings={"tempocnn_graph": str(graph)}))
    found = by_name(plugin.analyze([segment(beats[1][1])])[0])
    assert plugin._tempo.predict.graph == str(graph)
    assert plugin._tempo.predict.lengths == [int(SECONDS * analyzer.TEMPOCNN_RATE)]
    assert found["tempo"].value == 75.0
    # Three of four patches agree with probability 0.9: at most 0.675, scaled by the pulse check.
    assert 0.0 < found["tempo"].confidence <= 0.675 + 1e-9


# ------------------------------------------------------------------------- settings


def test_settings_defaults() -> None:
    settings = EssentiaSettings.from_mapping({})
    assert (settings.bpm_method, settings.key_profile, settings.sample_rate) == (
        "degara",
        "edma",
        44100,
    )
    assert (settings.tempo_min, settings.tempo_max, settings.tempocnn_graph) == (75.0, 150.0, None)


def test_unknown_setting_is_named() -> None:
    with pytest.raises(SettingsError, match="bpm_metod"):
        EssentiaSettings.from_mapping({"bpm_metod": "degara"})


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"bpm_method": "percival"}, "bpm_method"),
        ({"key_profile": "nope"}, "key_profile"),
        ({"tempo_min": 100, "tempo_max": 160}, "tempo_min/tempo_max"),
        ({"tempo_min": "fast"}, "tempo_min"),
        ({"sample_rate": 44100.5}, "sample_rate"),
        ({"tempocnn_graph": "/no/such/deeptemp-k16-3.pb"}, "tempocnn_graph"),
        ({"loudness": "yes"}, "loudness"),
    ],
)
def test_bad_setting_values_are_named(table, named) -> None:
    with pytest.raises(SettingsError, match=named.replace("/", ".")):
        EssentiaSettings.from_mapping(table)


def test_setup_rejects_bad_settings() -> None:
    with pytest.raises(SettingsError, match=r"\[plugins\.essentia\]"):
        EssentiaAnalyzer().setup(PluginContext(settings={"tempo_max": 100}))


def test_settings_for_run_records_every_setting(degara) -> None:
    recorded = degara.settings_for_run()
    assert recorded["bpm_method"] == "degara" and recorded["tempo_min"] == 75.0
    assert set(recorded) == {f for f in EssentiaSettings.__dataclass_fields__}
