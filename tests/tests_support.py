"""Helpers the tests share to read what ingest decided, by file name."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from curator import hookimpl
from curator.api import Analyzer, Measurement, Tagger, TagResult
from curator.project import Project


def status_by_name(project: Project) -> dict[str, str]:
    return {Path(p).name: status for p, status, _ in project.catalog.file_rows()}


def reasons_by_name(project: Project) -> dict[str, str]:
    return {Path(p).name: reason or "" for p, _, reason in project.catalog.file_rows()}


def brightness(audio: np.ndarray, rate: int) -> float:
    """Share of spectral energy above 1 kHz: a real, cheap measurement of the audio."""
    spectrum = np.abs(np.fft.rfft(audio[:, 0])) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / rate)
    return float(spectrum[freqs >= 1000].sum() / max(spectrum.sum(), 1e-12))


class HatTagger(Tagger):
    """Scores the vocabulary's "hi-hat" by brightness and "808" by its opposite."""

    name, version, facets, sample_rate = "hats", "1", ("instruments",), 8000
    embedding_model = "hats:brightness"

    def __init__(self) -> None:
        self.calls = 0
        self.fail_on: set[str] = set()
        self.interrupt_after: int | None = None

    def tag_order(self):
        return [("instruments", "hi-hat"), ("instruments", "808")]

    def tag(self, batch):
        self.calls += 1
        if self.interrupt_after is not None and self.calls > self.interrupt_after:
            raise KeyboardInterrupt
        for segment in batch:
            if segment.segment_id in self.fail_on:
                raise ValueError("model choked on this one")
        return [self._result(brightness(s.audio, s.sample_rate)) for s in batch]

    def tag_embeddings(self, embeddings):
        return np.column_stack([embeddings[:, 0], 1 - embeddings[:, 0]])

    def _result(self, bright: float) -> TagResult:
        return TagResult(
            {"instruments": {"hi-hat": bright, "808": 1 - bright}},
            embedding=np.array([bright], dtype=np.float32),
        )


class LevelAnalyzer(Analyzer):
    """Loudness as measured, and a key whose confidence follows the level."""

    name, version, measures, sample_rate = "level", "1", ("loudness", "key"), 8000

    def analyze(self, batch):
        return [self._measure(s.audio) for s in batch]

    def _measure(self, audio):
        rms = float(np.sqrt(np.mean(audio**2)))
        return [
            Measurement("loudness", value=20 * np.log10(rms + 1e-12)),
            Measurement("key", text="C", confidence=0.9 if rms > 0.1 else 0.3),
        ]


class Plugin:
    def __init__(self, *items) -> None:
        self.items = items

    @hookimpl
    def register_taggers(self, register):
        for item in self.items:
            if isinstance(item, Tagger):
                register(item)

    @hookimpl
    def register_analyzers(self, register):
        for item in self.items:
            if isinstance(item, Analyzer):
                register(item)


def hats_review_project(root: Path, audio: Path, monkeypatch) -> Project:
    """The review pages' test catalogue: `audio` ingested into a project at `root`, tagged by
    HatTagger, opened by the app as curator "ana" (CURATOR_PROJECT and CURATOR_USER set)."""
    from curator.catalogue.ingest import ingest
    from curator.project import init_project
    from curator.tagging.runs import run_tagger
    from curator.testing import registry_of

    project = init_project(root)
    ingest(project, [audio])
    run_tagger(project, "hats", registry=registry_of(Plugin(HatTagger())))
    monkeypatch.setenv("CURATOR_PROJECT", str(project.root))
    monkeypatch.setenv("CURATOR_USER", "ana")
    return project
