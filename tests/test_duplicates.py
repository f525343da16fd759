"""Finding duplicates on real audio files: the same recording through re-encodes, gain and
trims ('same'), a drum loop shared by two beats ('near'), and the command that does it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from curator.catalogue.ingest import ingest
from curator.duplicates.finding import find_duplicates
from curator.duplicates.fingerprint import METHOD, fingerprint_missing, score_alignment
from curator.project import Project
from curator.storage.duplicates import duplicate_groups, fingerprints, track_segments

RATE = 22050
SECONDS = 24.0
TEMPO = 92.0
SCALE = (0, 2, 3, 5, 7, 8, 10)


def _note(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    partials = sum(np.sin(2 * np.pi * freq * k * t) / k for k in (1, 2, 3, 4))
    return partials * np.exp(-3 * t)


def _drum_loop(seed: int) -> np.ndarray:
    """A bar of kick, snare and hats whose sounds and kick pattern come from `seed`, looped."""
    rng = np.random.default_rng(seed)
    step = 60 / TEMPO / 4
    t = np.arange(int(0.25 * RATE)) / RATE
    kick = np.sin(2 * np.pi * (rng.uniform(45, 70) + 90 * np.exp(-t * 30)) * t) * np.exp(-t * 12)
    snare = rng.standard_normal(len(t)) * np.exp(-t * rng.uniform(15, 30))
    hat = np.diff(rng.standard_normal(len(t) + 1)) * np.exp(-t * 80)
    pattern = {0, 10} | set(rng.choice([3, 6, 7, 11, 14], size=2).tolist())
    loop = np.zeros(int(SECONDS * RATE))
    for i in range(int(SECONDS / step)):
        start = int(i * step * RATE)
        for sound, gain, hit in (
            (kick, 0.9, i % 16 in pattern),
            (snare, 0.4, i % 16 in (4, 12)),
            (hat, 0.2, i % 2 == 0),
        ):
            if hit:
                part = sound[: len(loop) - start]
                loop[start : start + len(part)] += gain * part
    return loop


def beat(melody: int, drums: int) -> np.ndarray:
    """A music-like beat: a seeded melody and bass over a seeded drum loop, mono float32."""
    rng = np.random.default_rng(1000 + melody)
    root = rng.uniform(180, 260)
    audio = _drum_loop(drums)
    step = 60 / TEMPO / 2
    for i in range(int(SECONDS / step)):
        start = int(i * step * RATE)
        freq = root * 2 ** (SCALE[int(rng.integers(7))] / 12)
        part = 0.3 * _note(freq, 2 * step)[: len(audio) - start]
        audio[start : start + len(part)] += part
    return (0.9 * audio / np.abs(audio).max()).astype(np.float32)


def write(folder: Path, name: str, audio: np.ndarray, **options) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    sf.write(path, audio, RATE, **options)
    return path


def tracks_by_file(project: Project) -> dict[str, str]:
    """File name -> track id."""
    rows = project.catalog.segment_rows(include_unusable=True)
    return {Path(r["source"]).name: r["track_id"] for r in rows}


def groups_as_files(project: Project, level: str) -> list[set[str]]:
    by_track = {t: f for f, t in tracks_by_file(project).items()}
    segments = {s: by_track[t] for t, ids in track_segments(project.catalog).items() for s in ids}
    return [{segments[s] for s in g.members} for g in duplicate_groups(project.catalog, level)]


@pytest.fixture(scope="module")
def same_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One beat and its copies (quieter, trimmed 1.5 s, OGG Vorbis, MP3), and another beat."""
    folder = tmp_path_factory.mktemp("same")
    original = beat(1, 1)
    write(folder, "original.wav", original)
    write(folder, "quieter.wav", original * 0.5)
    write(folder, "trimmed.wav", original[int(1.5 * RATE) :])
    write(folder, "reencoded.ogg", original, format="OGG", subtype="VORBIS")
    write(folder, "reencoded.mp3", original, format="MP3")
    write(folder, "other.wav", beat(2, 2))
    return folder


@pytest.fixture
def same_project(project: Project, same_audio: Path) -> Project:
    ingest(project, [same_audio])
    return project


def test_copies_of_one_recording_are_one_group_with_their_offsets(same_project: Project) -> None:
    finding = find_duplicates(same_project, "same")[0]
    copies = {"original.wav", "quieter.wav", "trimmed.wav", "reencoded.ogg", "reencoded.mp3"}
    assert groups_as_files(same_project, "same") == [copies]
    group = duplicate_groups(same_project.catalog, "same")[0]
    assert set(group.members) == set(finding.groups[0].members)
    tracks = tracks_by_file(same_project)
    # Every segment of the matched tracks is a member, the other beat's are not.
    segments = track_segments(same_project.catalog)
    assert set(group.members) == {s for f in copies for s in segments[tracks[f]]}
    trim = next(p for p in group.evidence["pairs"] if tracks["trimmed.wav"] in p["tracks"])
    offset = trim["offset_seconds"] * (1 if trim["tracks"][1] == tracks["trimmed.wav"] else -1)
    assert offset == pytest.approx(1.5, abs=0.15)  # the trimmed copy starts 1.5 s in
    assert all(p["bit_error_rate"] < 0.1 for p in group.evidence["pairs"])


def test_fingerprints_are_made_once_and_a_bad_file_is_named(same_project: Project) -> None:
    tracks = tracks_by_file(same_project)
    broken = Path(same_project.catalog.segment_rows()[0]["source"])
    saved = broken.read_bytes()
    broken.write_bytes(b"not audio at all")
    try:
        first = fingerprint_missing(same_project)
    finally:
        broken.write_bytes(saved)
    assert first.done == len(tracks) - 1
    assert [path for path, _ in first.failed] == [str(broken)]
    assert "cannot be fingerprinted" in first.failed[0][1]
    before = fingerprints(same_project.catalog, METHOD)
    second = fingerprint_missing(same_project)  # only the file that failed is tried again
    assert second.done == 1 and not second.failed
    after = fingerprints(same_project.catalog, METHOD)
    assert all(np.array_equal(after[t][1], codes) for t, (_, codes) in before.items())


def test_an_interrupted_fingerprinting_keeps_what_it_made(same_project: Project) -> None:
    calls = []

    def interrupt_after_two(done: int, total: int, path: str) -> None:
        calls.append(path)
        if done == 2:
            raise KeyboardInterrupt

    first = fingerprint_missing(same_project, interrupt_after_two, commit_every=1)
    assert first.interrupted and first.done >= 2
    assert not find_duplicates(same_project, "same")[0].fingerprinting.interrupted  # type: ignore[union-attr]
    assert len(fingerprints(same_project.catalog, METHOD)) == len(tracks_by_file(same_project))


def test_alignment_needs_an_overlap() -> None:
    codes = np.random.default_rng(0).integers(0, 2**32, size=200, dtype=np.uint32)
    assert score_alignment(codes, codes, 0).bit_error_rate == 0.0  # type: ignore[union-attr]
    assert score_alignment(codes, codes, 190) is None  # 10 items in common prove nothing


def test_a_shared_drum_loop_is_near_and_a_shared_style_is_not(project: Project, tmp_path) -> None:
    folder = tmp_path / "near"
    write(folder, "loop_a.wav", beat(3, 7))
    write(folder, "loop_b.wav", beat(4, 7))  # the same drum loop under another melody
    write(folder, "style_a.wav", beat(5, 8))  # same tempo, same kind of kit and grid
    write(folder, "style_b.wav", beat(6, 9))
    ingest(project, [folder])
    find_duplicates(project, "near")
    assert groups_as_files(project, "near") == [{"loop_a.wav", "loop_b.wav"}]
    pair = duplicate_groups(project.catalog, "near")[0].evidence["pairs"][0]
    assert pair["share"] >= 0.012 and pair["shared_landmarks"] > 0


def test_duplicates_command_lists_groups_as_json(same_project: Project, run_cli: Callable) -> None:
    result = run_cli("duplicates", "--level", "same", "--json", "--project", same_project.root)
    found = json.loads(result.stdout)
    assert list(found) == ["same"]
    [group] = found["same"]["groups"]
    assert len(group["members"]) >= 5 and group["evidence"]["method"] == METHOD
    stored = run_cli("duplicates", "--stored", "--json", "--project", same_project.root)
    assert json.loads(stored.stdout)["same"]["groups"] == [group]
    refused = run_cli("duplicates", "--threshold", "0.1", "--project", same_project.root, expect=2)
    assert "--threshold needs --level same or --level near" in refused.output


def test_duplicates_help_and_ingest_fingerprint(
    project: Project, same_audio: Path, run_cli: Callable
) -> None:
    shown = run_cli("duplicates", "--help")
    assert "--level [same|near|both]" in shown.output and "docs/duplicates.md" in shown.output
    done = run_cli("ingest", same_audio, "--fingerprint", "--project", project.root)
    assert "Fingerprinted 6 track(s), 0 failed." in done.output
    assert len(fingerprints(project.catalog, METHOD)) == 6
