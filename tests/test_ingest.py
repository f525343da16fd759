"""Ingest on real files: every kind of bad input, dedupe, incremental re-runs."""

from __future__ import annotations

import ctypes
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from tests_support import reasons_by_name, status_by_name

from curator.catalogue.ingest import ingest
from curator.project import Project

SEGMENT_MIN = 20.0


def write_raw(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def truncated_copy(source: Path, target: Path, keep: float = 0.5) -> Path:
    data = source.read_bytes()
    return write_raw(target, data[: int(len(data) * keep)])


def nan_wav(path: Path) -> Path:
    # 25 s long, NaN from 5 s to 20 s: every 20-25 s window of it contains NaN.
    data = np.full((25 * 8000, 1), 0.2, dtype=np.float32)
    data[5 * 8000 : 20 * 8000] = np.nan
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, 8000, subtype="FLOAT")
    return path


@pytest.fixture
def zoo(tmp_path: Path, write_audio) -> Path:
    """A folder with one file of each kind a real collection holds, good and bad."""
    root = tmp_path / "zoo"
    good = write_audio("good.wav", 50, root=root)
    write_raw(root / "empty.wav", b"")
    truncated_copy(write_audio("src/full.wav", 50, seed=1), root / "truncated.wav")
    truncated_copy(write_audio("src/full.mp3", 50, seed=2), root / "truncated.mp3", keep=0.3)
    sf.write(str(root / "header_only.wav"), np.zeros((0, 2), np.float32), 44100)
    write_raw(root / "notes.flac", b"These are my notes, not audio.\n" * 40)
    write_raw(root / "fake.mp3", b"<html>404 Not Found</html>" * 40)
    os.symlink(root / "gone.wav", root / "dangling.wav")
    write_audio("short.ogg", 5, root=root)
    write_audio("silent.flac", 30, level=0.0, root=root)
    nan_wav(root / "nan.wav")
    write_audio("eight_bit.wav", 30, subtype="PCM_U8", seed=3, root=root)
    write_audio("hires.wav", 30, sr=96000, seed=4, root=root)
    write_audio("surround.wav", 30, channels=6, seed=5, root=root)
    write_audio("long.wav", 20 * 60, sr=16000, channels=1, seed=6, root=root)
    write_audio("bêat 日本語 ☆.flac", 40, seed=7, root=root)
    write_audio("UPPER.WAV", 40, seed=8, root=root)
    write_audio("deep/deeper/nested.aiff", 40, seed=9, root=root)
    write_raw(root / "readme.txt", b"not scanned")
    shutil.copy(good, root / "z_copy_of_good.wav")
    return root


EXPECTED = {
    "good.wav": ("ingested", None),
    "z_copy_of_good.wav": ("duplicate", "same audio as"),
    "empty.wav": ("failed", "empty file (0 bytes)"),
    "truncated.wav": ("failed", "truncated: the header promises 50.0 s"),
    "truncated.mp3": ("failed", "truncated"),
    "header_only.wav": ("failed", "no audio in the file"),
    "notes.flac": ("failed", "not a readable audio file"),
    "fake.mp3": ("failed", "not an MP3 file"),
    "dangling.wav": ("failed", "broken link"),
    "short.ogg": ("skipped", "5.0 s long, shorter than one 20 s segment"),
    "silent.flac": ("ingested", "silent"),
    "nan.wav": ("failed", "contains NaN or infinite samples"),
    "eight_bit.wav": ("ingested", None),
    "hires.wav": ("ingested", None),
    "surround.wav": ("ingested", None),
    "long.wav": ("ingested", None),
    "bêat 日本語 ☆.flac": ("ingested", None),
    "UPPER.WAV": ("ingested", None),
    "nested.aiff": ("ingested", None),
}


def test_every_kind_of_file_ends_with_a_status_and_a_reason(project: Project, zoo: Path) -> None:
    summary = ingest(project, [zoo])
    statuses, reasons = status_by_name(project), reasons_by_name(project)
    assert set(statuses) == set(EXPECTED), "readme.txt is not scanned; every audio file is"
    for name, (status, reason) in EXPECTED.items():
        assert statuses[name] == status, (name, reasons.get(name))
        if reason:
            assert reason in (reasons.get(name) or ""), (name, reasons.get(name))
    assert summary.found == len(EXPECTED)
    assert (summary.added, summary.duplicates, summary.skipped) == (9, 1, 1), summary
    assert summary.failed == 8
    assert not summary.nothing_readable


def test_silent_segments_are_flagged_and_not_usable(project: Project, zoo: Path) -> None:
    ingest(project, [zoo])
    rows = project.catalog.segment_rows(include_unusable=True)
    silent = [r for r in rows if r["source"].endswith("silent.flac")]
    assert silent and all(r["silent"] for r in silent)
    assert all(not r["silent"] for r in rows if not r["source"].endswith("silent.flac"))
    usable = {r["id"] for r in project.catalog.segment_rows()}
    assert usable.isdisjoint(r["id"] for r in silent)


def test_unusual_but_valid_files_get_segments_inside_the_track(project: Project, zoo: Path) -> None:
    ingest(project, [zoo])
    rows = project.catalog.segment_rows(include_unusable=True)
    by_source = {}
    for row in rows:
        by_source.setdefault(Path(row["source"]).name, []).append(row)
    assert by_source["hires.wav"][0]["sample_rate"] == 96000
    assert by_source["surround.wav"][0]["channels"] == 6
    long = by_source["long.wav"]
    assert len(long) == 2 and long[0]["track_duration"] == pytest.approx(1200)
    for segments in by_source.values():
        for seg in segments:
            assert seg["start"] >= 0 and seg["start"] + seg["duration"] <= seg["track_duration"]


def _without_root_file_access() -> None:
    # Root reads any file; dropping CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the
    # bounding set makes the child obey file permissions like any other user.
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_unreadable_file_fails_with_permission_denied(
    tmp_path: Path, write_audio, run_curator
) -> None:
    root = tmp_path / "shared"
    write_audio("open.wav", 30, root=root)
    write_audio("locked.wav", 30, seed=1, root=root).chmod(0)
    assert run_curator("init", tmp_path / "project").returncode == 0
    result = run_curator(
        "ingest", root, "--project", tmp_path / "project", preexec_fn=_without_root_file_access
    )
    assert result.returncode == 0, result.stderr
    assert "permission denied" in result.stderr
    assert "1 added" in result.stderr and "1 failed" in result.stderr


def test_same_audio_at_two_paths_is_one_track(project: Project, write_audio) -> None:
    original = write_audio("a/beat.wav", 40)
    shutil.copy(original, original.parent.parent / "b_copy.flac.wav")
    ingest(project, [original.parent.parent])
    counts = project.catalog.counts()
    assert counts["tracks"] == {"ingested": 1}
    assert counts["files"] == {"ingested": 1, "duplicate": 1}
    assert project.catalog.segment_count() == 2


def test_rerun_is_incremental(project: Project, write_audio) -> None:
    for i in range(3):
        write_audio(f"beat{i}.wav", 45, seed=i)
    folder = write_audio("beat3.wav", 45, seed=3).parent
    first = ingest(project, [folder])
    assert (first.added, first.unchanged) == (4, 0)
    segments_before = {r["id"]: r for r in project.catalog.segment_rows()}

    second = ingest(project, [folder])
    assert (second.added, second.unchanged, second.missing) == (0, 4, 0)

    write_audio("beat4.wav", 45, seed=4)
    (folder / "beat0.wav").unlink()
    third = ingest(project, [folder])
    assert (third.added, third.unchanged, third.missing) == (1, 3, 1)
    statuses = status_by_name(project)
    assert statuses["beat0.wav"] == "missing" and statuses["beat4.wav"] == "ingested"
    assert project.catalog.counts()["tracks"] == {"ingested": 4, "missing": 1}
    after = {r["id"]: r for r in project.catalog.segment_rows(include_unusable=True)}
    assert all(after[k]["start"] == v["start"] for k, v in segments_before.items())
    assert project.catalog.duplicate_rows() == {"tracks": 0, "files": 0, "segments": 0}


def test_moved_file_brings_its_track_back(project: Project, write_audio) -> None:
    path = write_audio("beats/old.wav", 45)
    folder = path.parent
    ingest(project, [folder])
    ids = {r["id"] for r in project.catalog.segment_rows()}
    path.rename(folder / "renamed.wav")
    summary = ingest(project, [folder])
    assert (summary.revived, summary.missing, summary.added) == (1, 1, 0)
    rows = project.catalog.segment_rows()
    assert {r["id"] for r in rows} == ids
    assert all(r["source"].endswith("renamed.wav") for r in rows)


def test_changed_content_at_the_same_path_is_a_new_track(project: Project, write_audio) -> None:
    path = write_audio("beats/beat.wav", 45, seed=1)
    ingest(project, [path.parent])
    write_audio("beats/beat.wav", 50, seed=2)
    summary = ingest(project, [path.parent])
    assert summary.added == 1
    assert project.catalog.counts()["tracks"] == {"ingested": 1, "missing": 1}


def test_ingesting_one_folder_does_not_mark_another_missing(project: Project, write_audio) -> None:
    a = write_audio("a/one.wav", 40).parent
    b = write_audio("b/two.wav", 40, seed=1).parent
    ingest(project, [a])
    summary = ingest(project, [b])
    assert summary.missing == 0
    assert project.catalog.counts()["tracks"] == {"ingested": 2}


def test_nothing_readable_is_reported(project: Project, tmp_path: Path) -> None:
    folder = tmp_path / "junk"
    write_raw(folder / "a.wav", b"")
    write_raw(folder / "b.flac", b"text")
    assert ingest(project, [folder]).nothing_readable
    assert ingest(project, [tmp_path / "no-such-folder"]).nothing_readable


def test_segments_follow_the_settings(tmp_path: Path, write_audio) -> None:
    from curator.project import init_project, open_project

    root = tmp_path / "custom"
    init_project(root)
    text = (root / "curator.toml").read_text()
    text = text.replace("segments_per_track = 2", "segments_per_track = 3")
    text = text.replace("segment_min_seconds = 20.0", "segment_min_seconds = 5.0")
    text = text.replace("segment_max_seconds = 35.0", "segment_max_seconds = 8.0")
    (root / "curator.toml").write_text(text)
    project = open_project(root)
    ingest(project, [write_audio("beat.wav", 40).parent])
    rows = project.catalog.segment_rows()
    assert len(rows) == 3
    assert all(5.0 <= r["duration"] <= 8.0 for r in rows)


def test_the_folders_ingest_was_given_are_recorded_once(
    project: Project, write_audio, tmp_path: Path
) -> None:
    # Export refuses to write inside them (the next ingest would take its audio as tracks).
    root = write_audio("R/beats/one.wav", 40).parent.parent
    loose = write_audio("loose/two.wav", 40, seed=1)
    ingest(project, [root, loose, tmp_path / "no-such-folder"])
    ingest(project, [root])  # a re-ingest adds no second record
    assert project.catalog.ingest_sources() == [str(root)]


def test_a_compressed_file_a_little_short_of_its_header_is_not_truncated() -> None:
    from curator.catalogue.audio import tail_missing

    rate = 44100
    # Debian's wesnoth northerners.ogg: its header says 207.15 s, it decodes 207.02 s.
    assert not tail_missing(5 * rate, 5 * rate - round(0.13 * rate), rate)
    assert tail_missing(5 * rate, 3 * rate, rate)  # two seconds gone: a cut-off download
