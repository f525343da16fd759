"""The learned tagger starting from a tagger's own probabilities (the trap tagger's prior)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.stats import spearmanr
from test_trap_weights import random_weights

import curator.plugins.learned as learned_plugin
import curator.plugins.trap as trap_plugin
from curator.api import Tagger
from curator.catalogue.ingest import ingest
from curator.curation.prior import PriorProbe, fit_with_prior, prior_columns
from curator.curation.probes import LearnOptions, apply_learned, learn, load_model
from curator.curation.review import set_labels
from curator.project import Project, init_project, open_project
from curator.registry import Registry
from curator.storage import HumanLabel
from curator.testing import registry_of

TAGS = ("snare", "808")
OPTIONS = LearnOptions(facet="instruments", tags=TAGS, min_labels=4, folds=3)
TRACKS = 12
SR = 22050


def trap_registry() -> Registry:
    return registry_of(learned_plugin, trap_plugin)


# ---------------------------------------------------------------- the probe itself


def rows_with_prior(
    rng: np.random.Generator, rows: int, prior: np.ndarray | None = None
) -> np.ndarray:
    """Noise features with the prior's probability in column 0, as trap's cache holds it."""
    x = rng.standard_normal((rows, 12))
    x[:, 0] = rng.uniform(0.03, 0.97, rows) if prior is None else prior
    return x


def test_a_probe_with_nothing_to_learn_gives_the_prior_back() -> None:
    rng = np.random.default_rng(0)
    x = rows_with_prior(rng, 300)
    y = rng.random(300) < x[:, 0]  # the prior is right: labels drawn from it
    probe = fit_with_prior(0, np.arange(300) // 2)(x, y, np.arange(300))
    fresh = rows_with_prior(rng, 500)
    p = probe.predict_proba(fresh)[:, 1]
    assert np.abs(p - fresh[:, 0]).mean() < 0.04, np.abs(p - fresh[:, 0]).mean()
    assert spearmanr(p, fresh[:, 0]).statistic > 0.98
    # A handful of corrections barely move it.
    few = fit_with_prior(0, np.arange(10))(x[:10], y[:10], np.arange(10))
    assert np.abs(few.predict_proba(fresh)[:, 1] - fresh[:, 0]).max() < 0.1


def test_corrections_that_contradict_the_prior_move_it() -> None:
    rng = np.random.default_rng(1)
    x = rows_with_prior(rng, 120, prior=np.full(120, 0.1))  # the tagger says absent
    y = x[:, 3] > 0.3  # but a curator finds it wherever feature 3 is high
    probe = fit_with_prior(0, np.arange(120) // 2)(x, y, np.arange(120))
    fresh = rows_with_prior(rng, 400, prior=np.full(400, 0.1))
    p = probe.predict_proba(fresh)[:, 1]
    truth = fresh[:, 3] > 0.3
    assert p[truth].mean() > 0.7 and p[~truth].mean() < 0.3, (p[truth].mean(), p[~truth].mean())


def test_few_corrections_move_it_less_than_many() -> None:
    rng = np.random.default_rng(2)
    x = rows_with_prior(rng, 200, prior=np.full(200, 0.1))
    y = x[:, 3] > 0.3
    fresh = rows_with_prior(rng, 400, prior=np.full(400, 0.1))
    truth = fresh[:, 3] > 0.3

    def gap(count: int) -> float:
        p = fit_with_prior(0, np.arange(count) // 2)(x[:count], y[:count], np.arange(count))
        found = p.predict_proba(fresh)[:, 1]
        return float(found[truth].mean() - found[~truth].mean())

    assert gap(8) < gap(200)


# ---------------------------------------------------------------- learn() on trap's cache


def tone_track(path: Path, freq: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(25 * SR) / SR
    hits = (np.sin(2 * np.pi * 2 * t) > 0.95) * rng.standard_normal(t.size)
    audio = 0.2 * np.sin(2 * np.pi * freq * t) + 0.1 * hits
    sf.write(str(path), audio.astype(np.float32), SR)


@pytest.fixture(scope="module")
def trap_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose tracks the trap tagger (random weights) tagged, caching its rows."""
    from curator.tagging.runs import run_plugin

    root = tmp_path_factory.mktemp("trap-prior")
    weights = random_weights(root / "weights")
    audio = root / "audio"
    audio.mkdir()
    for k in range(TRACKS):
        tone_track(audio / f"track{k:02d}.wav", 60.0 + 40 * k, k)
    project = init_project(root / "project")
    with (project.root / "curator.toml").open("a", encoding="utf-8") as handle:
        handle.write(f'\n[plugins.trap]\nweights = "{weights}"\n')
    project = open_project(project.root)
    ingest(project, [audio])
    summary = run_plugin(project, "tag", "trap", registry=trap_registry())
    assert summary.done >= TRACKS
    return project.root


@pytest.fixture
def trap_project(trap_template: Path, tmp_path: Path) -> Project:
    """A copy of the template in which a curator labelled snare and 808 by trap's own
    ranking (top half present): corrections that agree with the prior."""
    root = tmp_path / "project"
    shutil.copytree(trap_template, root)
    project = open_project(root)
    trap = trap_set_up(project)
    ids, rows = project.catalog.embeddings(str(trap.embedding_model))
    columns = trap.score_columns()
    changes = []
    for tag in TAGS:
        p = rows[:, columns[("instruments", tag)]]
        present = p >= np.median(p)
        changes += [
            HumanLabel(s, "instruments", tag, bool(v)) for s, v in zip(ids, present, strict=True)
        ]
    set_labels(project, changes, actor="ana")
    return project


def trap_set_up(project: Project) -> Tagger:
    from curator.tagging.runs import plugin_context

    registry = trap_registry()
    trap = registry.tagger("trap")
    trap.setup(plugin_context(project, "trap", registry))
    return trap


def test_trap_says_where_its_probabilities_are(trap_project: Project) -> None:
    trap = trap_set_up(trap_project)
    columns = trap.score_columns()
    _, rows = trap_project.catalog.embeddings(str(trap.embedding_model))
    [result] = trap.tag_embeddings(rows[:1])
    for tag, score in result.scores["instruments"].items():
        assert rows[0, columns[("instruments", tag)]] == pytest.approx(score)
    embedding = str(trap.embedding_model)
    assert prior_columns(trap_project, embedding, trap_registry()) == columns
    # A tagger that keeps no scores in its embedding gives none, and is not even set up.
    assert prior_columns(trap_project, embedding, registry_of(learned_plugin)) == {}


def test_learn_starts_from_trap_and_saves_a_model_that_tags_from_cache(
    trap_project: Project,
) -> None:
    registry = trap_registry()
    model = learn(trap_project, OPTIONS, registry=registry)
    trap = trap_set_up(trap_project)
    columns = trap.score_columns()
    assert [r.prior for r in model.report if r.trained] == ["trap", "trap"]
    assert all(isinstance(p, PriorProbe) for p in model.probes)
    assert [p.column for p in model.probes] == [columns[pair] for pair in model.pairs]
    # Its probability follows trap's, all else equal: sure-absent to sure-present moves it.
    ids, rows = trap_project.catalog.embeddings(model.embedding)
    learned = model.probabilities(rows)
    for k, pair in enumerate(model.pairs):
        low, high = rows.copy(), rows.copy()
        low[:, columns[pair]], high[:, columns[pair]] = 0.05, 0.95
        moved = model.probabilities(high)[:, k] - model.probabilities(low)[:, k]
        assert (moved > 0.5).all(), moved
    # Saved with joblib, loaded back, and run as a tagger from the cache.
    assert np.allclose(load_model(trap_project.root).probabilities(rows), learned)
    summary = apply_learned(trap_project, registry)
    assert summary.done == len(ids)
    labels = [x for x in trap_project.catalog.labels() if x["source"].startswith("learned")]
    assert {x["source"] for x in labels} == {f"learned@{model.version}"}
    said = {(x["segment_id"], x["tag"]) for x in labels}
    said_by_model = np.nonzero(learned >= 0.5)
    expected = {(ids[i], model.pairs[k][1]) for i, k in zip(*said_by_model, strict=True)}
    assert said == expected


def test_without_the_prior_probes_learn_from_the_embedding_alone(trap_project: Project) -> None:
    registry = trap_registry()
    plain = learn(trap_project, replace(OPTIONS, prior=False), registry=registry)
    assert all(r.prior is None for r in plain.report)
    assert not any(isinstance(p, PriorProbe) for p in plain.probes)
    with_prior = learn(trap_project, OPTIONS, registry=registry)
    assert with_prior.version != plain.version, "the prior is part of what it learned from"


def test_cli_learn_no_prior(run_cli, trap_project: Project) -> None:
    root = trap_project.root
    args = ("learn", "--project", root, "--facet", "instruments", "--tag", "snare")
    plain = json.loads(run_cli(*args, "--no-prior", "--json").stdout)
    assert [r["prior"] for r in plain["tags"] if r["trained"]] == [None]
    started = json.loads(run_cli(*args, "--json").stdout)
    assert [r["prior"] for r in started["tags"] if r["trained"]] == ["trap"]
    assert started["version"] != plain["version"]
    table = run_cli(*args).output
    assert "start from trap's own probabilities" in table
    assert "--no-prior" in run_cli("learn", "--help").output
