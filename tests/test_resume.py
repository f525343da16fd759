"""Interrupting ingest (Ctrl-C or kill) and running it again: complete, no duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import soundfile as sf
from conftest import curator_command, tone

from curator.catalogue.ingest import ingest
from curator.project import init_project, open_project

# Enough files that the run outlasts the poll that sees the first ones done, even on an idle
# machine where ingest takes a few ms a file (24 were all done before a SIGKILL landed in CI).
N_FILES = 64


@pytest.fixture(scope="module")
def beats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Small files (mono, 11.025 kHz, room for two segments) keep the runs short; they are
    # only read, never changed, so the tests share them.
    folder = tmp_path_factory.mktemp("beats")
    for i in range(N_FILES):
        sf.write(str(folder / f"beat{i:02d}.wav"), tone(42, sr=11025, channels=1, seed=i), 11025)
    return folder


def slow_project(root: Path):
    # One worker and one file per transaction, so the run is long enough to interrupt
    # mid-way and every finished file is already on disk when the signal arrives.
    init_project(root)
    settings = (root / "curator.toml").read_text()
    settings = settings.replace("workers = 0", "workers = 1").replace(
        "commit_every = 32", "commit_every = 1"
    )
    (root / "curator.toml").write_text(settings)
    return open_project(root)


def start_ingest(beats: Path, root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        curator_command("ingest", beats, "--project", root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_some_files(project, at_least: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = sum(f.status == "ingested" for f in project.catalog.known_files().values())
        if done >= at_least:
            return done
        time.sleep(0.05)
    raise AssertionError("ingest made no progress")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_interrupted_ingest_resumes_without_duplicates(tmp_path: Path, beats: Path, sig) -> None:
    reference = init_project(tmp_path / "reference")
    ingest(reference, [beats])
    expected = {r["id"]: (r["start"], r["duration"]) for r in reference.catalog.segment_rows()}

    project = slow_project(tmp_path / "project")
    process = start_ingest(beats, project.root)
    wait_for_some_files(project, at_least=3)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    if sig != signal.SIGKILL:
        assert process.returncode == 130, stderr
        assert "Interrupted" in stderr

    partial = len(project.catalog.segment_rows())
    print(f"interrupted with {partial} of {len(expected)} segments in")
    assert 0 < partial < len(expected), "the run was interrupted mid-way"

    resumed = ingest(project, [beats])
    assert resumed.unchanged + resumed.added == N_FILES
    got = {r["id"]: (r["start"], r["duration"]) for r in project.catalog.segment_rows()}
    assert got == expected
    assert project.catalog.duplicate_rows() == {"tracks": 0, "files": 0, "segments": 0}
    assert project.catalog.counts()["files"] == {"ingested": N_FILES}


def test_second_ingest_of_the_same_folder_changes_nothing(tmp_path: Path, beats: Path) -> None:
    project = init_project(tmp_path / "project")
    ingest(project, [beats])
    before = project.catalog.segment_rows()
    summary = ingest(project, [beats])
    assert summary.unchanged == N_FILES and summary.added == 0
    assert project.catalog.segment_rows() == before


def test_two_processes_ingesting_at_once_both_land(tmp_path: Path, write_audio) -> None:
    for i in range(6):
        write_audio(f"a/one{i}.wav", 40, seed=i, root=tmp_path)
        write_audio(f"b/two{i}.wav", 40, seed=100 + i, root=tmp_path)
    project = slow_project(tmp_path / "project")
    runs = [start_ingest(tmp_path / part, project.root) for part in ("a", "b")]
    for run in runs:
        _, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr
    assert project.catalog.counts()["tracks"] == {"ingested": 12}
    assert project.catalog.duplicate_rows() == {"tracks": 0, "files": 0, "segments": 0}


def test_kill_leaves_a_catalogue_that_opens(tmp_path: Path, beats: Path) -> None:
    project = slow_project(tmp_path / "project")
    process = start_ingest(beats, project.root)
    wait_for_some_files(project, at_least=2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert project.catalog.applied_migrations()
