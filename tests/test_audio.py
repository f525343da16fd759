"""Windowed decode: the same samples as a whole-file decode, resampled and mixed on request."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from curator.catalogue.audio import decode_whole, decode_window, level_db, probe, to_channels


@pytest.mark.parametrize("ext", ["wav", "flac", "aiff"])
def test_window_equals_the_slice_of_the_whole_file(write_audio, ext: str) -> None:
    path = write_audio(f"beat.{ext}", 60)
    whole, sr = decode_whole(path)
    window = decode_window(path, 12.5, 20.0)
    start = int(12.5 * sr)
    np.testing.assert_array_equal(window, whole[start : start + 20 * sr])


@pytest.mark.parametrize("ext", ["mp3", "ogg"])
def test_lossy_window_matches_the_whole_file_closely(write_audio, ext: str) -> None:
    path = write_audio(f"beat.{ext}", 60)
    whole, sr = decode_whole(path)
    window = decode_window(path, 12.5, 20.0)
    start = int(12.5 * sr)
    assert window.shape == (20 * sr, 2)
    reference = whole[start : start + 20 * sr]
    correlation = np.corrcoef(window[:, 0], reference[:, 0])[0, 1]
    assert correlation > 0.99


def test_resample_and_mix(write_audio) -> None:
    path = write_audio("beat.wav", 30, sr=96000, channels=6)
    audio = decode_window(path, 5.0, 10.0, sample_rate=48000, channels=2)
    assert audio.shape == (480000, 2) and audio.dtype == np.float32
    mono = decode_window(path, 5.0, 10.0, sample_rate=16000, channels=1)
    assert mono.shape == (160000, 1)


def test_resampling_keeps_the_pitch(tmp_path) -> None:
    sr = 44100
    t = np.arange(sr * 3) / sr
    sf.write(str(tmp_path / "a440.wav"), 0.5 * np.sin(2 * np.pi * 440 * t), sr)
    audio = decode_window(tmp_path / "a440.wav", 1.0, 1.0, sample_rate=48000, channels=1)
    spectrum = np.abs(np.fft.rfft(audio[:, 0]))
    assert np.argmax(spectrum) == pytest.approx(440, abs=1)  # 1 s long: bin = Hz


def test_channel_mixing_rules() -> None:
    stereo = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(to_channels(stereo, 1), [[0.5], [0.5]])
    np.testing.assert_allclose(to_channels(stereo[:, :1], 2), [[1.0, 1.0], [0.0, 0.0]])
    centre_only = np.zeros((1, 6), dtype=np.float32)
    centre_only[0, 2] = 1.0
    np.testing.assert_allclose(to_channels(centre_only, 2), [[0.7071, 0.7071]], atol=1e-4)


def test_window_past_the_end_is_short_not_an_error(write_audio) -> None:
    path = write_audio("beat.wav", 30)
    assert len(decode_window(path, 25.0, 10.0)) == 5 * 44100


def test_probe_and_levels(write_audio) -> None:
    info = probe(write_audio("beat.flac", 30, sr=48000))
    assert (info.format, info.sample_rate, info.channels) == ("FLAC", 48000, 2)
    assert info.duration == pytest.approx(30.0)
    assert level_db(np.zeros((10, 2), np.float32)) == (-200.0, -200.0)
    rms, peak = level_db(np.full((10, 1), 0.5, np.float32))
    assert rms == pytest.approx(-6.02, abs=0.01) and peak == pytest.approx(-6.02, abs=0.01)


def test_spectrogram_puts_subs_low_and_hats_high() -> None:
    from curator.catalogue.audio import spectrogram_image

    rate = 22050
    t = np.arange(rate * 4) / rate
    sub = (0.5 * np.sin(2 * np.pi * 50 * t)).astype(np.float32)[:, None]
    hats = np.diff(np.random.default_rng(0).standard_normal(t.size + 1)).astype(np.float32)[:, None]
    for audio, low_is_louder in ((sub, True), (hats, False)):
        image = spectrogram_image(audio, rate)
        assert image.shape == (64, 480) and image.dtype == np.uint8
        top, bottom = image[:16].mean(), image[-16:].mean()
        assert (bottom > top) == low_is_louder
