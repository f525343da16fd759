"""Shared fixtures: fresh projects, real audio files of every kind, and the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner, Result

from curator.cli import cli
from curator.project import Project, init_project
from curator.testing.tiny_clap import build_tiny_clap
from curator.vocabulary import Vocabulary, default_vocabulary_dir, load_vocabulary

SR = 44100


@pytest.fixture(scope="module")
def tiny_clap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CLAP (random weights, a tokenizer of a few words) in a model folder, per module."""
    return build_tiny_clap(tmp_path_factory.mktemp("models") / "tiny-clap")


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    """The default vocabulary a new project starts with."""
    return load_vocabulary(default_vocabulary_dir())


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return init_project(tmp_path / "project")


def tone(
    seconds: float,
    sr: int = SR,
    channels: int = 2,
    freq: float = 220.0,
    level: float = 0.3,
    seed: int = 0,
) -> np.ndarray:
    """A music-like test signal: a tone with a little seeded noise, so each seed differs."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    mono = level * (np.sin(2 * np.pi * freq * t) + 0.2 * rng.standard_normal(t.size))
    return np.repeat(mono[:, None], channels, axis=1).astype(np.float32)


def two_tone_project(audio: Path, root: Path) -> Project:
    """Two 45 s tones (seeds 0 and 1) written to `audio`, ingested into a new project at `root`."""
    from curator.catalogue.ingest import ingest

    for seed in (0, 1):
        sf.write(str(audio / f"beat{seed}.wav"), tone(45, seed=seed), SR)
    project = init_project(root)
    ingest(project, [audio])
    return project


def write_blocks(path: Path, data: np.ndarray, sr: int, subtype: str | None = None) -> None:
    """sf.write in blocks: libsndfile's Vorbis encoder crashes on one very large write."""
    with sf.SoundFile(str(path), "w", sr, data.shape[1], subtype=subtype) as handle:
        for start in range(0, len(data), 1 << 16):
            handle.write(data[start : start + (1 << 16)])


@pytest.fixture
def write_audio(tmp_path: Path) -> Callable[..., Path]:
    """write_audio(relative path, seconds, **tone/soundfile options) -> the written path."""

    def write(
        name: str,
        seconds: float = 45.0,
        sr: int = SR,
        channels: int = 2,
        subtype: str | None = None,
        seed: int = 0,
        level: float = 0.3,
        root: Path | None = None,
    ) -> Path:
        path = (root or tmp_path / "audio") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_blocks(path, tone(seconds, sr, channels, level=level, seed=seed), sr, subtype)
        return path

    return write


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    """Invoke the real click CLI in-process; fails the test on an unexpected exit code."""

    def run(*args: str, expect: int | None = 0) -> Result:
        result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, result.output
        return result

    return run


def curator_command(*args: str) -> list[str]:
    """The installed `curator` console script, run as a separate process."""
    return [sys.executable, "-m", "curator.cli", *map(str, args)]


@pytest.fixture
def run_curator() -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(
        *args: str, timeout: float = 120, env: dict[str, str] | None = None, **kwargs
    ) -> subprocess.CompletedProcess[str]:
        env = {**(env or os.environ), "COLUMNS": "200"}
        return subprocess.run(
            curator_command(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            **kwargs,
        )

    return run


@pytest.fixture(scope="session")
def loud_and_quiet(tmp_path_factory) -> Path:
    """Six tracks: bright noise (hats) and low sines (808s), loud and quiet."""
    import soundfile as sf

    folder = tmp_path_factory.mktemp("loud_and_quiet")
    rng = np.random.default_rng(0)
    t = np.arange(45 * 8000) / 8000
    for i in range(6):
        level = 0.5 if i % 2 else 0.05
        audio = (
            np.diff(rng.standard_normal(t.size + 1)) if i < 3 else np.sin(2 * np.pi * (50 + i) * t)
        )
        sf.write(str(folder / f"track{i}.wav"), (level * audio).astype(np.float32), 8000)
    return folder
