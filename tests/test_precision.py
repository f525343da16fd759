"""Inference precision of CLAP and the trap tagger: bf16 gives fp32's labels, fp16 needs a GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from curator.api import PluginContext, SegmentAudio
from curator.errors import SettingsError
from curator.plugins.clap import ClapTagger
from curator.plugins.trap.corpus import CorpusSettings
from curator.plugins.trap.corpus.build import sources
from curator.plugins.trap.corpus.clip import render_clip
from curator.plugins.trap.tagger import TrapTagger
from curator.tagging.runs import model_labels
from curator.vocabulary import Vocabulary


@pytest.fixture(scope="module")
def beats() -> list[SegmentAudio]:
    """Three 12 s trap beats from the held-out sounds (the weights never heard them)."""
    held_out = sources(CorpusSettings(), "test")
    tags = [("kick", "snare", "hi-hat", "808"), ("kick", "clap", "hi-hat", "piano"), ("808",)]
    segments = []
    for seed, chosen in enumerate(tags):
        rng = np.random.default_rng(200 + seed)
        clip = render_clip(rng, held_out, 12.0, 22050, chosen, tempo=140)
        segments.append(SegmentAudio(f"beat-{seed}", clip.audio.reshape(-1, 1), 22050))
    return segments


def label_set(tagger, scores: np.ndarray) -> set[tuple[int, str, str]]:
    labels = model_labels(tagger, tagger.tag_order(), scores)
    return set(zip(labels.rows.tolist(), labels.facets, labels.tags, strict=True))


def trap(precision: str) -> TrapTagger:
    tagger = TrapTagger()
    tagger.setup(PluginContext(settings={"precision": precision}, device="cpu"))
    return tagger


def trap_scores(tagger: TrapTagger, batch: list[SegmentAudio]) -> np.ndarray:
    order = tagger.tag_order()
    results = tagger.tag(batch)
    return np.array([[r.scores[f][t] for f, t in order] for r in results], dtype=np.float32)


def test_trap_in_bf16_gives_the_labels_of_fp32(beats: list[SegmentAudio]) -> None:
    full, half = trap("fp32"), trap("bf16")
    exact, fast = trap_scores(full, beats), trap_scores(half, beats)
    assert np.abs(exact - fast).max() < 0.05
    assert label_set(full, exact) == label_set(half, fast)
    assert label_set(full, exact)  # the beats do have labels to agree on


def clap(tiny_clap: Path, vocabulary: Vocabulary, cache: Path, precision: str) -> ClapTagger:
    tagger = ClapTagger()
    settings = {"model": str(tiny_clap), "precision": precision}
    tagger.setup(PluginContext(settings=settings, vocabulary=vocabulary, cache_dir=cache))
    return tagger


def test_clap_in_bf16_gives_the_labels_of_fp32(
    tiny_clap: Path, vocabulary: Vocabulary, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    batch = [
        SegmentAudio(
            f"s{i}", (0.1 * rng.standard_normal((48000 * 12, 1))).astype(np.float32), 48000
        )
        for i in range(3)
    ]
    full = clap(tiny_clap, vocabulary, tmp_path, "fp32")
    half = clap(tiny_clap, vocabulary, tmp_path, "bf16")
    exact = full.score_matrix(full.embed_segments(batch))
    fast = half.score_matrix(half.embed_segments(batch))
    assert not np.array_equal(exact, fast)  # bf16 did run
    assert np.abs(exact - fast).max() < 0.01
    assert label_set(full, exact) == label_set(half, fast)


def test_fp16_on_a_cpu_is_refused_by_name(tiny_clap: Path, vocabulary: Vocabulary) -> None:
    with pytest.raises(SettingsError, match=r'\[plugins.trap\] precision = "fp16" runs on a GPU'):
        trap("fp16")
    with pytest.raises(SettingsError, match=r'\[plugins.clap\] precision = "fp16" runs on a GPU'):
        clap(tiny_clap, vocabulary, Path("unused"), "fp16")
    with pytest.raises(SettingsError, match="precision"):
        trap("fp8")


def test_precision_is_part_of_the_runs_identity_unless_fp32(
    tiny_clap: Path, vocabulary: Vocabulary, tmp_path: Path
) -> None:
    assert "precision" not in trap("fp32").settings_for_run()
    assert trap("bf16").settings_for_run()["precision"] == "bf16"
    assert "precision" not in clap(tiny_clap, vocabulary, tmp_path, "fp32").settings_for_run()
    assert clap(tiny_clap, vocabulary, tmp_path, "bf16").settings_for_run()["precision"] == "bf16"
