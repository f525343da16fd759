"""The trap tagger on rendered beats: it tells a snare backbeat from a clap one and finds 808s.

The beats are rendered with the held-out soundfont (MuseScore General) and the corpus's
test voices, sounds the shipped weights never trained on, and tagged through the real CLI
into a real catalogue. Margins, not exact scores: retrained weights must pass them too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from curator.catalogue.ingest import ingest
from curator.plugins.trap.corpus import CorpusSettings
from curator.plugins.trap.corpus.build import sources
from curator.plugins.trap.corpus.clip import render_clip
from curator.plugins.trap.model import file_version, load_weights, shipped_weights
from curator.plugins.trap.tags import TAGS
from curator.project import Project, init_project

SECONDS = 24.0
BEATS = {
    "snare-backbeat": ("kick", "snare", "hi-hat", "808", "piano"),
    "clap-backbeat": ("kick", "clap", "hi-hat", "808", "piano"),
    "snare-no-808": ("kick", "snare", "hi-hat", "strings"),
    "clap-no-808": ("kick", "clap", "hi-hat", "synth pad"),
}


def render(name: str, tags: tuple[str, ...], seed: int) -> tuple[np.ndarray, list[str]]:
    held_out = sources(CorpusSettings(), "test")
    clip = render_clip(np.random.default_rng(seed), held_out, SECONDS, 22050, tags, tempo=140)
    return clip.audio, clip.tags


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, dict[str, dict[str, float]]]:
    """The four beats, ingested and tagged by `curator tag --plugin trap`; scores per beat."""
    from click.testing import CliRunner

    from curator.cli import cli

    root = tmp_path_factory.mktemp("trap")
    (root / "beats").mkdir()
    heard: dict[str, list[str]] = {}
    for seed, (name, tags) in enumerate(BEATS.items()):
        audio, heard[name] = render(name, tags, 100 + seed)
        sf.write(root / "beats" / f"{name}.wav", audio, 22050)
    project = init_project(root / "project")
    ingest(project, [root / "beats"])
    result = CliRunner().invoke(cli, ["tag", "--plugin", "trap", "--project", str(project.root)])
    assert result.exit_code == 0, result.output
    run = project.catalog.runs()[-1]
    ids, matrix = project.catalog.scores(run["id"])
    order = project.catalog.run_tags(run["id"])
    files = {r["id"]: Path(r["source"]).stem for r in project.catalog.segment_rows()}
    scores: dict[str, dict[str, float]] = {}
    for segment, row in zip(ids, matrix, strict=True):  # one segment per 24 s beat
        scores[files[segment]] = {tag: float(v) for (_, tag), v in zip(order, row, strict=True)}
    for name, tags in BEATS.items():  # the renders hold what the test says they hold
        assert {"snare", "clap", "808"} & set(tags) <= set(heard[name]), (name, heard[name])
    return project, scores


def test_the_shipped_weights_file_is_the_plugins_version(tagged) -> None:
    project, _ = tagged
    run = project.catalog.runs()[-1]
    version = file_version(shipped_weights())
    assert run["plugin"] == "trap" and run["plugin_version"] == version
    assert shipped_weights().stat().st_size < 4_000_000  # "a few MB at most"


def test_it_tells_a_snare_backbeat_from_a_clap_one(tagged) -> None:
    _, scores = tagged
    for snare, clap in (("snare-backbeat", "clap-backbeat"), ("snare-no-808", "clap-no-808")):
        assert scores[snare]["snare"] - scores[clap]["snare"] >= 0.3, scores
        assert scores[clap]["clap"] - scores[snare]["clap"] >= 0.3, scores
        assert scores[snare]["snare"] > scores[snare]["clap"]
        assert scores[clap]["clap"] > scores[clap]["snare"]


def test_it_finds_the_808(tagged) -> None:
    _, scores = tagged
    with_808 = min(scores[n]["808"] for n in ("snare-backbeat", "clap-backbeat"))
    without = max(scores[n]["808"] for n in ("snare-no-808", "clap-no-808"))
    assert with_808 - without >= 0.3, scores


def test_its_labels_are_the_tags_at_or_over_their_own_thresholds(tagged) -> None:
    project, scores = tagged
    weights = load_weights(shipped_weights())
    files = {r["id"]: Path(r["source"]).stem for r in project.catalog.segment_rows()}
    labelled = {
        (files[row["segment_id"]], row["tag"])
        for row in project.catalog.labels()
        if row["source"] == f"trap@{weights.version}" and row["present"]
    }
    expected = {
        (name, tag)
        for name, by_tag in scores.items()
        for tag, score in by_tag.items()
        if score >= weights.thresholds[tag]
    }
    assert labelled == expected
    assert ("clap-backbeat", "clap") in labelled and ("snare-no-808", "snare") in labelled
    assert ("snare-backbeat", "808") in labelled and ("clap-backbeat", "808") in labelled


@pytest.mark.slow
def test_the_corpus_and_training_path_runs_end_to_end(tmp_path: Path, run_cli) -> None:
    """The reproduction commands of docs/trap-tagger.md, tiny: a few dozen clips, one epoch."""
    corpus, weights = tmp_path / "corpus", tmp_path / "weights"
    run_cli("trap-corpus", corpus, "--clips", 24, "--test-clips", 6, "--seconds", 2)
    result = run_cli("trap-train", corpus, "--out", weights, "--epochs", 1, "--batch", 8)
    [made] = weights.glob("trap-*.pt")
    assert f"version {file_version(made)}" in result.output
    report = (weights / f"{made.stem}.json").read_text()
    assert '"test"' in report and "curator trap-train" in report
    # The new weights tag a project when named in its settings.
    (tmp_path / "beats").mkdir()
    noise = 0.1 * np.random.default_rng(0).standard_normal((22050 * 21, 1))
    sf.write(tmp_path / "beats" / "beat.wav", noise, 22050)  # silence would not be tagged
    project = init_project(tmp_path / "project")
    with (project.root / "curator.toml").open("a") as handle:
        handle.write(f'\n[plugins.trap]\nweights = "{made}"\n')
    ingest(project, [tmp_path / "beats"])
    run_cli("tag", "--plugin", "trap", "--project", project.root)
    assert project.catalog.runs()[-1]["plugin_version"] == file_version(made)
    assert len(project.catalog.run_tags(project.catalog.runs()[-1]["id"])) == len(TAGS)


def test_trap_commands_have_help(run_cli) -> None:
    assert "held-out soundfont" in run_cli("trap-corpus", "--help").output
    assert "labels.jsonl" in run_cli("trap-train", "--help").output


@pytest.mark.slow
def test_the_demo_catalogue_has_trap_instruments_and_prompts_name_them(tmp_path: Path, run_cli):
    """`make demo`'s steps on four demo beats: trap labels most segments' instruments, and
    the prompts written from them name instruments (before trap, they named none)."""
    from curator.demo import render_demo_dataset
    from curator.storage.prompts import effective_prompts

    render_demo_dataset(tmp_path / "beats", 4, seed=0)
    project = init_project(tmp_path / "project")
    ingest(project, [tmp_path / "beats"])
    run_cli("tag", "--plugin", "trap", "--project", project.root)
    run_cli("prompts", "--project", project.root)
    segments = {r["id"] for r in project.catalog.segment_rows()}
    instruments: dict[str, set[str]] = {}
    for segment, facet, tag, present, _, _ in project.catalog.effective_labels():
        if facet == "instruments" and present:
            instruments.setdefault(segment, set()).add(tag)
    assert len(instruments) >= 0.75 * len(segments), instruments
    prompts = effective_prompts(project.catalog)
    naming = [s for s, text in prompts.items() if any(t in text for t in instruments.get(s, ()))]
    assert len(prompts) == len(segments) and len(naming) >= 0.75 * len(segments), prompts
