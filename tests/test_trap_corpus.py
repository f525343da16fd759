"""The trap tagger's corpus: reproducible, labelled by what is heard, resumable, and true."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from curator.errors import CuratorError
from curator.plugins.trap.corpus import (
    CorpusSettings,
    build,
    make_corpus,
    mix,
    patterns,
    read_corpus,
    soundfonts,
    sounds,
)
from curator.plugins.trap.corpus.clip import render_clip
from curator.plugins.trap.tags import TAGS

SR = 22050
TINY = CorpusSettings(clips=7, test_clips=2, seed=3, seconds=2.0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("corpus") / "trap"
    make_corpus(out, TINY)
    return out


def decoded(path: Path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32")
    assert rate == SR
    return audio


# ---------------------------------------------------------------------------- the folder


def test_the_corpus_has_its_clips_labels_and_settings(corpus: Path) -> None:
    clips = read_corpus(corpus)
    assert [c.split for c in clips].count("test") == 2
    assert {c.split for c in clips} == {"train", "valid", "test"}
    assert len(clips) == 9
    for clip in clips:
        info = sf.info(corpus / clip.file)
        assert (info.samplerate, info.channels, info.frames) == (SR, 1, 2 * SR)
        assert set(clip.tags) <= set(TAGS) and list(clip.tags) == sorted(clip.tags)
        assert set(clip.tags) <= set(clip.levels_db)
        assert 60 <= clip.tempo <= 180 and clip.encoding in ("none", "mp3", "ogg")
        assert clip.file == f"clips/{clip.split}/{int(Path(clip.file).stem):05d}.flac"
    description = json.loads((corpus / "corpus.json").read_text())
    assert description["settings"] == TINY.as_dict()
    assert description["held_out_soundfont"] == "MuseScore_General_Full"
    assert all(len(font["sha256"]) == 64 for font in description["soundfonts"])


def test_the_held_out_soundfont_plays_only_in_test(corpus: Path) -> None:
    clips = read_corpus(corpus)
    for clip in clips:
        if clip.split == "test":
            assert set(clip.soundfont) <= {"MuseScore_General_Full"}
        else:
            assert "MuseScore_General_Full" not in clip.soundfont
    assert any(clip.soundfont for clip in clips if clip.split == "test")


def test_the_same_settings_give_the_same_labels_and_audio(corpus: Path, tmp_path: Path) -> None:
    again = make_corpus(tmp_path / "again", TINY)
    assert again == read_corpus(corpus)
    for clip in again:
        assert np.array_equal(decoded(tmp_path / "again" / clip.file), decoded(corpus / clip.file))


@pytest.mark.slow
def test_a_clip_is_the_same_from_worker_processes(
    corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    """Whichever process renders it and whatever it rendered before (no test clips: the
    held-out soundfont would be loaded in each worker)."""
    # Spawned workers run the parent's __main__ file again; earlier AppTests in the same
    # session leave an app page there (as the `curator` script never does).
    monkeypatch.delattr(sys.modules["__main__"], "__file__", raising=False)
    settings = CorpusSettings(clips=4, test_clips=0, seed=TINY.seed, seconds=TINY.seconds)
    clips = make_corpus(tmp_path / "workers", settings, workers=2)
    assert clips == [c for c in read_corpus(corpus) if c.file in {k.file for k in clips}]
    for clip in clips:
        assert np.array_equal(
            decoded(tmp_path / "workers" / clip.file), decoded(corpus / clip.file)
        )


def test_another_seed_gives_another_corpus(corpus: Path, tmp_path: Path) -> None:
    other = CorpusSettings(clips=2, test_clips=0, seed=4, seconds=2.0)
    clips = make_corpus(tmp_path / "other", other)
    assert [c.seed for c in clips] != [c.seed for c in read_corpus(corpus)[:2]]


def test_an_interrupted_corpus_resumes_without_duplicates(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed"

    def interrupt(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_corpus(out, TINY, interrupt)
    assert len(read_corpus(out)) == 3
    # A kill in the middle of appending a line leaves half a line: that clip is redone.
    with (out / "labels.jsonl").open("a") as labels:
        labels.write('{"file": "clips/train/000')
    (out / "clips" / "train" / "00004.partial.flac").write_bytes(b"half")
    make_corpus(out, TINY)
    lines = (out / "labels.jsonl").read_text().splitlines()
    files = [json.loads(line)["file"] for line in lines]
    assert len(files) == len(set(files)) == 9
    assert read_corpus(out) == read_corpus(corpus)
    assert not list(out.glob("clips/*/*.partial.flac"))


def test_a_folder_of_another_corpus_is_refused(corpus: Path) -> None:
    with pytest.raises(CuratorError, match="other settings"):
        make_corpus(corpus, CorpusSettings(clips=8, test_clips=2, seed=3, seconds=2.0))


def test_a_missing_soundfont_names_itself_and_the_fix(monkeypatch, tmp_path: Path) -> None:
    gone = soundfonts.Soundfont(
        "FluidR3_GM", tmp_path / "FluidR3_GM.sf2", "fluid-soundfont-gm", True, ()
    )
    monkeypatch.setitem(soundfonts.SOUNDFONTS, "FluidR3_GM", gone)
    with pytest.raises(CuratorError) as error:
        make_corpus(tmp_path / "out", TINY)
    message = str(error.value)
    assert "FluidR3_GM.sf2" in message and "fluid-soundfont-gm" in message
    assert "bash scripts/system-deps.sh" in message and "\n" not in message
    assert not (tmp_path / "out" / "labels.jsonl").exists()


def test_a_drum_kit_cannot_be_held_out(tmp_path: Path) -> None:
    with pytest.raises(CuratorError, match="only drums"):
        make_corpus(tmp_path, CorpusSettings(clips=1, holdout="Black_Pearl_4_LV2"))


# ---------------------------------------------------------------------------- labels


def stem(name: str, audio: np.ndarray) -> mix.Stem:
    return mix.Stem(name, (name,), audio, "synth")


def test_a_stem_mixed_far_below_the_rest_is_not_labelled() -> None:
    rng = np.random.default_rng(0)
    beat = patterns.arrangement(rng, 4.0, tempo=90)
    frames = 4 * SR
    kick = sounds.hits_stem(patterns.kick(beat, rng), sounds.kick(rng, SR), frames, SR)
    chords = patterns.held_chords(beat, rng, 55)
    pad = sounds.notes_stem(chords, sounds.pad(rng), frames, SR, 8.0)
    for pad_db, heard in ((-16.0, True), (-50.0, False)):
        stems = [stem("kick", kick.copy()), stem("synth pad", pad.copy())]
        mix.set_level(stems[0], -12.0, SR // 100)
        mix.set_level(stems[1], pad_db, SR // 100)
        tags, levels = mix.labels(stems, mix.heard(stems, SR))
        assert ("synth pad" in tags) is heard
        assert "kick" in tags
        assert levels["synth pad"] < levels["kick"]


def test_a_quiet_hat_that_owns_the_top_octave_is_heard() -> None:
    """Broadband it is far below the 808, but nothing else plays up there."""
    rng = np.random.default_rng(1)
    beat = patterns.arrangement(rng, 4.0, tempo=140)
    frames = 4 * SR
    hats = sounds.hits_stem(patterns.hats(beat, rng, set()), sounds.hat(rng, SR), frames, SR)
    bass = sounds.bass_line(sounds.eight_o_eight(rng), patterns.sub(beat, rng), frames, SR)
    stems = [stem("hi-hat", hats), stem("808", bass)]
    mix.set_level(stems[0], -30.0, SR // 100)
    mix.set_level(stems[1], -10.0, SR // 100)
    tags, levels = mix.labels(stems, mix.heard(stems, SR))
    assert tags == ["808", "hi-hat"]
    assert levels["hi-hat"] < -12


# ---------------------------------------------------------------------------- the audio is true


def spectrum_share(audio: np.ndarray, low: float, high: float) -> float:
    power = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / SR)
    return float(power[(freqs >= low) & (freqs < high)].sum() / power.sum())


def rendered(tags: list[str], seed: int, split: str = "train") -> np.ndarray:
    sources = build.sources(TINY, split)
    return render_clip(np.random.default_rng(seed), sources, 2.0, SR, tags=tags).audio


def test_a_sub_only_clip_lives_below_100_hz() -> None:
    for seed in range(3):
        assert spectrum_share(rendered(["deep sub"], seed), 0, 100) > 0.8


def test_snare_clips_have_a_drum_body_that_clap_clips_lack() -> None:
    """Snares ring at 150-300 Hz (the head) under their wires; claps are noise bursts."""
    body = {
        tag: np.mean([spectrum_share(rendered([tag], seed), 120, 350) for seed in range(4)])
        for tag in ("snare", "clap")
    }
    assert body["snare"] > 2 * body["clap"]


def test_hats_are_bright_and_kicks_are_low() -> None:
    assert spectrum_share(rendered(["hi-hat"], 0), 4000, SR / 2) > 0.5
    assert spectrum_share(rendered(["kick"], 0), 0, 250) > 0.5


# ---------------------------------------------------------------------------- the command


def test_trap_corpus_help(run_curator) -> None:
    result = run_curator("trap-corpus", "--help")
    assert result.returncode == 0
    for option in ("--clips", "--test-clips", "--seed", "--seconds", "--holdout", "--workers"):
        assert option in result.stdout


@pytest.mark.slow
def test_trap_corpus_renders_a_tiny_corpus(run_curator, tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    result = run_curator("trap-corpus", out, "--clips", "2", "--test-clips", "0", "--seconds", "1")
    assert result.returncode == 0, result.stderr
    assert "2 clips in" in result.stderr
    assert len(read_corpus(out)) == 2
    again = run_curator("trap-corpus", out, "--clips", "3", "--test-clips", "0", "--seconds", "1")
    assert again.returncode == 1
    assert "other settings" in again.stderr and "Traceback" not in again.stderr


def test_trap_corpus_names_an_unknown_holdout(run_cli, tmp_path: Path) -> None:
    result = run_cli("trap-corpus", tmp_path / "x", "--clips", "1", "--holdout", "Nope", expect=1)
    assert "unknown soundfont 'Nope'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()
