"""Tests for the demo beats (sampled instruments and synthesised 808s): files, truth.json,
and that the truth is audible."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from curator import demo

# Krumhansl-Kessler key profiles, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
ANALYSIS_RATE = 22050  # the measurements need no more, and it halves their cost
TRUTH_FIELDS = {"tempo", "key", "scale", "instruments", "hat_division", "genre", "mood", "duration"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "beats"
    demo.render_demo_dataset(out, 2, seed=11)
    return out


def measured_specs(count: int, seed: int) -> list[demo.BeatSpec]:
    """Specs as the dataset draws them, cut to 20 s (a few progression loops) to stay fast."""
    return [
        dataclasses.replace(demo.random_spec(np.random.default_rng([seed, i]), i), duration=20.0)
        for i in range(count)
    ]


# ---------------------------------------------------------------------------- files


def test_dataset_writes_wavs_and_truth(dataset: Path) -> None:
    names = sorted(p.name for p in dataset.iterdir())
    assert names == ["beat_0000.wav", "beat_0001.wav", "truth.json"]
    text = (dataset / "truth.json").read_text()
    truth = json.loads(text)
    assert text == json.dumps(truth, sort_keys=True, indent=2) + "\n"
    assert sorted(truth) == names[:2]
    assert all(set(fields) == TRUTH_FIELDS for fields in truth.values())


def test_wavs_are_16_bit_stereo_44k_of_the_stated_length(dataset: Path) -> None:
    truth = json.loads((dataset / "truth.json").read_text())
    for name, fields in truth.items():
        info = sf.info(dataset / name)
        assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "PCM_16")
        assert info.frames == round(fields["duration"] * 44100)
        assert abs(info.duration - fields["duration"]) < 1e-4


def test_wavs_are_loud_clean_and_peak_near_minus_1_dbfs(dataset: Path) -> None:
    for path in sorted(dataset.glob("*.wav")):
        audio, _ = sf.read(path)
        assert np.isfinite(audio).all()
        assert np.sqrt(np.mean(audio**2)) > 0.05
        assert 0.85 < np.abs(audio).max() < 0.9  # -1 dBFS is 0.891
        assert np.abs(audio[:, 0] - audio[:, 1]).max() > 0.01  # panning makes it really stereo


def test_same_seed_gives_identical_bytes(dataset: Path, tmp_path: Path) -> None:
    again = demo.render_demo_dataset(tmp_path, 2, seed=11)
    for path in again:
        assert path.read_bytes() == (dataset / path.name).read_bytes()
    assert (tmp_path / "truth.json").read_bytes() == (dataset / "truth.json").read_bytes()


def test_a_beat_does_not_depend_on_n_but_on_the_seed(tmp_path: Path) -> None:
    one = demo.render_demo_dataset(tmp_path / "one", 1, seed=4, sample_rate=8000)
    two = demo.render_demo_dataset(tmp_path / "two", 2, seed=4, sample_rate=8000)
    other = demo.render_demo_dataset(tmp_path / "other", 1, seed=5, sample_rate=8000)
    assert one[0].read_bytes() == two[0].read_bytes()
    assert one[0].read_bytes() != other[0].read_bytes()


def test_rerun_overwrites_cleanly_and_reports_progress(tmp_path: Path) -> None:
    demo.render_demo_dataset(tmp_path, 3, seed=1, sample_rate=8000)
    calls: list[tuple[int, int]] = []
    demo.render_demo_dataset(
        tmp_path, 2, seed=2, sample_rate=8000, progress=lambda *a: calls.append(a)
    )
    assert calls == [(1, 2), (2, 2)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "beat_0000.wav",
        "beat_0001.wav",
        "truth.json",
    ]
    assert sorted(demo.load_truth(tmp_path)) == ["beat_0000.wav", "beat_0001.wav"]


def test_load_truth_round_trips_the_specs(tmp_path: Path) -> None:
    demo.render_demo_dataset(tmp_path, 2, seed=3, sample_rate=8000)
    expected = [demo.random_spec(np.random.default_rng([3, i]), i) for i in range(2)]
    assert list(demo.load_truth(tmp_path).values()) == expected


# ---------------------------------------------------------------------------- specs


def test_random_specs_are_plausible_beats() -> None:
    for i in range(300):
        spec = demo.random_spec(np.random.default_rng([0, i]), i)
        tags = set(spec.instruments)
        assert spec.name == f"beat_{i:04d}"
        assert 70 <= spec.tempo <= 160 and spec.tempo == int(spec.tempo)
        assert spec.key in demo.NOTE_NAMES and spec.scale in ("major", "minor")
        assert 45.0 <= spec.duration <= 90.0 and re.fullmatch(r"\d+\.\d", str(spec.duration))
        assert spec.hat_division in (8, 16)
        assert spec.genre in demo.GENRES and spec.mood in demo.MOODS
        assert list(spec.instruments) == [t for t in demo.INSTRUMENTS if t in tags]
        assert {"kick", "hi-hat"} <= tags and tags & {"snare", "clap"}
        assert len(tags & {"808", "deep sub"}) == 1
        assert 1 <= len(tags & set(demo.MELODIC)) <= 3


def test_random_specs_cover_every_genre_key_scale_and_instrument() -> None:
    specs = [demo.random_spec(np.random.default_rng([0, i]), i) for i in range(300)]
    assert {s.genre for s in specs} == set(demo.GENRES)
    assert {s.key for s in specs} == set(demo.NOTE_NAMES)
    assert {s.scale for s in specs} == {"major", "minor"}
    assert {t for s in specs for t in s.instruments} == set(demo.INSTRUMENTS)


def test_render_beat_is_float32_stereo_without_nan() -> None:
    spec = measured_specs(1, seed=9)[0]
    audio = demo.render_beat(spec, sample_rate=ANALYSIS_RATE)
    assert audio.dtype == np.float32 and audio.shape == (20 * ANALYSIS_RATE, 2)
    assert np.isfinite(audio).all()
    assert np.abs(audio).max() == pytest.approx(10 ** (-1 / 20), rel=1e-3)


def test_every_tag_has_its_own_audible_stem() -> None:
    spec = dataclasses.replace(measured_specs(1, seed=9)[0], instruments=demo.INSTRUMENTS)
    stems = demo.render_stems(spec, sample_rate=ANALYSIS_RATE)
    # "hi-hat rolls" plays inside the hi-hat stem, and one bass is enough for a beat.
    assert set(stems) == set(demo.INSTRUMENTS) - {"hi-hat rolls", "deep sub"}
    assert all(np.abs(stem).max() > 0.05 for stem in stems.values())


# ---------------------------------------------------------------------------- ground truth


def onset_envelope(mono: np.ndarray, rate: int, hop: int = 256, size: int = 1024) -> np.ndarray:
    """Log-magnitude spectral flux: how much new energy each frame brings."""
    frames = np.lib.stride_tricks.sliding_window_view(mono, size)[::hop] * np.hanning(size)
    magnitude = np.log1p(100 * np.abs(np.fft.rfft(frames, axis=1)))
    flux = np.maximum(np.diff(magnitude, axis=0), 0).sum(axis=1)
    return flux - flux.mean()


def comb_tempo(envelope: np.ndarray, frames_per_second: float) -> float:
    """The BPM whose first eight beat periods line up best with the envelope's autocorrelation."""
    n = len(envelope)
    autocorrelation = np.fft.irfft(np.abs(np.fft.rfft(envelope, 2 * n)) ** 2)[:n]
    candidates = np.arange(60.0, 200.0, 0.25)
    lags = frames_per_second * 60 / candidates[:, None] * np.arange(1, 9)
    scores = np.interp(lags, np.arange(n), autocorrelation).mean(axis=1)
    return float(candidates[np.argmax(scores)])


def chroma(signal: np.ndarray, rate: int) -> np.ndarray:
    """Spectral power from 50 Hz to 2 kHz folded onto the 12 pitch classes (C = 0)."""
    power = np.abs(np.fft.rfft(signal)) ** 2
    freqs = np.fft.rfftfreq(len(signal), 1 / rate)
    band = (freqs > 50) & (freqs < 2000)
    pitch_classes = np.round(12 * np.log2(freqs[band] / 440) + 9).astype(int) % 12
    return np.bincount(pitch_classes, weights=power[band], minlength=12)


def krumhansl_key(profile: np.ndarray) -> tuple[str, str]:
    """The key and scale whose rotated Krumhansl profile correlates best with a chroma."""
    scored = [
        (np.corrcoef(profile, np.roll(template, tonic))[0, 1], tonic, scale)
        for scale, template in (("major", MAJOR_PROFILE), ("minor", MINOR_PROFILE))
        for tonic in range(12)
    ]
    _, tonic, scale = max(scored)
    return demo.NOTE_NAMES[tonic], scale


def test_krumhansl_helper_finds_a_plain_scale() -> None:
    a_minor = np.zeros(12)
    a_minor[[9, 11, 0, 2, 4, 5, 7]] = [3, 1, 2, 1, 2, 1, 1]
    assert krumhansl_key(a_minor) == ("A", "minor")


def test_onsets_repeat_at_the_stated_tempo() -> None:
    """The comb-filter tempo of the mix is the stated BPM, or its double or half."""
    specs = measured_specs(8, seed=5)
    hits = 0
    for spec in specs:
        mono = demo.render_beat(spec, sample_rate=ANALYSIS_RATE).mean(axis=1)
        bpm = comb_tempo(onset_envelope(mono, ANALYSIS_RATE), ANALYSIS_RATE / 256)
        ratio = bpm / spec.tempo
        hits += min(abs(ratio - m) for m in (0.5, 1.0, 2.0)) < 0.02
    assert hits >= 7, f"tempo found in {hits} of {len(specs)} beats"


def test_melodic_parts_are_in_the_stated_key() -> None:
    """The chroma of the melodic stems correlates best with the stated key's profile."""
    specs = measured_specs(10, seed=5)
    hits = 0
    for spec in specs:
        stems = demo.render_stems(spec, sample_rate=ANALYSIS_RATE)
        melodic = sum(
            stem / np.abs(stem).max() for tag, stem in stems.items() if tag in demo.MELODIC
        )
        hits += krumhansl_key(chroma(melodic, ANALYSIS_RATE)) == (spec.key, spec.scale)
    assert hits >= 8, f"key found in {hits} of {len(specs)} beats"


def test_half_time_beats_have_one_snare_per_bar() -> None:
    """Snares land on beat 3 of the bar in half time, on beats 2 and 4 otherwise."""
    kit = ("808", "kick", "snare", "hi-hat", "piano")
    for tempo, expected in ((140.0, [2]), (90.0, [1, 3])):
        spec = dataclasses.replace(measured_specs(1, seed=9)[0], tempo=tempo, instruments=kit)
        snare = demo.render_stems(spec, sample_rate=ANALYSIS_RATE)["snare"]
        sounding = np.abs(snare) > 0  # the stem is exactly silent between hits
        onsets = np.flatnonzero(sounding[1:] & ~sounding[:-1]) + 1
        beat_frames = 60 / tempo * ANALYSIS_RATE
        beats = onsets / beat_frames
        # On the grid, to fluidsynth's 64-frame block (where a sampled drum's note starts).
        assert np.allclose(beats, np.round(beats), atol=64 / beat_frames)
        assert sorted(set((np.round(beats).astype(int) % 4).tolist())) == expected


def band_share(signal: np.ndarray, rate: int, low: float, high: float) -> float:
    power = np.abs(np.fft.rfft(signal)) ** 2
    freqs = np.fft.rfftfreq(len(signal), 1 / rate)
    return float(power[(freqs >= low) & (freqs < high)].sum() / power.sum())


def test_basses_are_low_and_hats_are_bright() -> None:
    """The truth's bass and hats are where a listener expects them in the spectrum."""
    base = measured_specs(1, seed=9)[0]
    for bass in ("808", "deep sub"):
        kit = (bass, "kick", "snare", "hi-hat", "piano")
        stems = demo.render_stems(
            dataclasses.replace(base, instruments=kit, duration=8.0), ANALYSIS_RATE
        )
        assert band_share(stems[bass], ANALYSIS_RATE, 0, 250) > 0.8
        assert band_share(stems["hi-hat"], ANALYSIS_RATE, 3000, ANALYSIS_RATE / 2) > 0.5
        assert band_share(stems["kick"], ANALYSIS_RATE, 0, 300) > 0.5


def test_the_demo_plays_the_held_out_soundfont(monkeypatch, tmp_path: Path) -> None:
    """Its instruments are MuseScore General's samples: without the soundfont, one clear error."""
    from curator.errors import CuratorError
    from curator.plugins.trap.corpus import soundfonts

    assert demo.DEMO_SOUNDFONT == "MuseScore_General_Full"
    font = soundfonts.SOUNDFONTS[demo.DEMO_SOUNDFONT]
    gone = dataclasses.replace(font, path=tmp_path / font.path.name)
    monkeypatch.setitem(soundfonts.SOUNDFONTS, demo.DEMO_SOUNDFONT, gone)
    with pytest.raises(CuratorError, match=r"musescore-general-soundfont.*system-deps\.sh"):
        demo.render_demo_dataset(tmp_path / "beats", 1, sample_rate=8000)
    assert not list((tmp_path / "beats").glob("*.wav"))


def test_an_arrangement_plays_other_loops_from_another_soundfont(monkeypatch) -> None:
    """The analyzer benchmark's beats: its loops, one bar per chord, no tonic pedal, and the
    soundfont it names (the demo's own is not opened)."""
    from curator.plugins.trap.corpus import soundfonts

    spec = dataclasses.replace(measured_specs(1, 3)[0], duration=6.0, tempo=70.0)
    loops = {"minor": ((0, 5, 2, 6),), "major": ((0, 4, 5, 3),)}
    arrangement = demo.Arrangement("FluidR3_GM", loops, (4, 4, 4, 4), tonic_pedal=False)
    grid = demo._grid_for(spec, 8000)
    chords = demo._chords(spec, grid, np.random.default_rng(0), arrangement)
    tonic, steps = demo.NOTE_NAMES.index(spec.key), demo.SCALES[spec.scale]
    degrees = loops[spec.scale][0]
    assert [c.root for c in chords[:4]] == [(tonic + steps[d]) % 12 for d in degrees]
    assert [c.length for c in chords[:4]] == [4, 4, 4, 4]
    assert all(c.tonic is None for c in chords)
    opened: list[str] = []
    original = soundfonts.soundfont

    def opening(name: str) -> soundfonts.Soundfont:
        opened.append(name)
        return original(name)

    monkeypatch.setattr(soundfonts, "soundfont", opening)
    audio = demo.render_beat(spec, 8000, arrangement=arrangement)
    assert audio.shape == (grid.frames, 2) and np.isfinite(audio).all()
    assert np.abs(audio).max() > 0.5
    assert set(opened) == {"FluidR3_GM"}
