"""The learned tagger: probes trained on curators' labels, its plugin, CLI, page and queue."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from test_suspects import EMBEDDING, TAGS, Catalogue, add_catalogue

import curator.plugins.learned as learned_plugin
from curator import app as app_package
from curator.curation.probes import (
    LearnOptions,
    apply_learned,
    current_version,
    informative_ranking,
    learn,
    learned_diff,
    load_model,
)
from curator.curation.review import ReviewFilter, review_page, set_labels
from curator.errors import CuratorError
from curator.plugins.learned import LearnedTagger
from curator.project import Project
from curator.registry import load_registry
from curator.storage import HumanLabel
from curator.testing import registry_of

PAGES = Path(app_package.__file__).parent / "pages"
OPTIONS = LearnOptions(facet="instruments", tags=TAGS, min_labels=4, folds=3)


def verify(catalogue: Catalogue, segments: range) -> None:
    """A curator reviews these segments: every tag of TAGS set to the truth."""
    changes = [
        HumanLabel(catalogue.ids[i], "instruments", tag, bool(catalogue.truth[i, k]))
        for i in segments
        for k, tag in enumerate(TAGS)
    ]
    set_labels(catalogue.project, changes, actor="ana")


@pytest.fixture
def reviewed(project: Project) -> Catalogue:
    catalogue = add_catalogue(project, flips=12)
    verify(catalogue, range(40))  # the first 20 tracks
    return catalogue


# ---------------------------------------------------------------- training and keeping


def test_learns_from_verified_labels_and_keeps_the_probes(reviewed: Catalogue) -> None:
    model = learn(reviewed.project, OPTIONS)
    assert current_version(reviewed.project) == model.version
    folder = reviewed.project.root / "models" / "learned" / model.version
    assert (folder / "model.joblib").is_file()
    report = json.loads((folder / "report.json").read_text())
    assert report["embedding"] == EMBEDDING and report["source_plugin"] == "seed"
    rows = {r["tag"]: r for r in report["tags"]}
    for k, tag in enumerate(TAGS):
        # Only the 40 verified segments count, whatever the tagger said about the others.
        assert rows[tag]["positives"] == int(reviewed.truth[:40, k].sum())
        assert rows[tag]["positives"] + rows[tag]["negatives"] == 40
        assert rows[tag]["needed"] == max(0, 20 - rows[tag]["positives"]) + max(
            0, 20 - rows[tag]["negatives"]
        )
        # Each tag moves 3 dimensions by 2 standard deviations: cross-validated on other
        # tracks, a linear probe finds most of them.
        assert rows[tag]["precision"] > 0.7 and rows[tag]["recall"] > 0.7, rows[tag]


def test_version_is_the_training_data_s_hash(reviewed: Catalogue) -> None:
    first = learn(reviewed.project, OPTIONS).version
    assert learn(reviewed.project, OPTIONS).version == first, "same data, same version"
    set_labels(reviewed.project, [HumanLabel(reviewed.ids[50], "instruments", "snare", True)])
    assert learn(reviewed.project, OPTIONS).version != first


def test_too_few_verified_labels_says_what_to_do(project: Project) -> None:
    catalogue = add_catalogue(project)
    verify(catalogue, range(4))
    with pytest.raises(CuratorError, match="Review segments in the app"):
        learn(project, OPTIONS)


def test_too_few_labels_names_the_way_to_add_model_labels_of_each_front_end(
    project: Project, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogue = add_catalogue(project)
    verify(catalogue, range(4))
    said = run_cli("learn", "--project", project.root, expect=1).output
    assert "Review segments in the app, or pass --include-model-labels" in said
    monkeypatch.setenv("CURATOR_PROJECT", str(project.root))
    page = AppTest.from_file(str(PAGES / "9_Learned_tagger.py"), default_timeout=60).run()
    page.button(key="learn-train").click().run()
    (error,) = [e.value for e in page.error]
    assert error.endswith('Review segments in the app, or tick "Also train on confident model '
                          'labels".')  # fmt: skip
    assert "--include" not in error


def test_confident_model_labels_can_join_and_are_counted(reviewed: Catalogue) -> None:
    from curator.curation.suspects import tagger_uncertainty

    plain = learn(reviewed.project, OPTIONS)
    more = learn(reviewed.project, LearnOptions(**{**OPTIONS.__dict__, "include_model_labels":
                                                    True}), tagger_uncertainty)  # fmt: skip
    by_tag = {r.tag: r for r in more.report}
    assert all(r.from_models > 0 for r in by_tag.values())
    assert all(by_tag[r.tag].positives + by_tag[r.tag].negatives > r.positives + r.negatives
               for r in plain.report)  # fmt: skip
    assert more.version != plain.version


# ---------------------------------------------------------------- the plugin


def test_the_plugin_tags_from_cache_under_its_version(reviewed: Catalogue) -> None:
    model = learn(reviewed.project, OPTIONS)
    registry = registry_of(learned_plugin)
    version, diffs = learned_diff(reviewed.project, registry)
    assert version == model.version
    summary = apply_learned(reviewed.project, registry)
    assert summary.done == len(reviewed.ids)
    labels = [x for x in reviewed.project.catalog.labels() if x["source"].startswith("learned")]
    assert {x["source"] for x in labels} == {f"learned@{model.version}"}
    # The diff said exactly what the run changed in the effective labels.
    _, after = learned_diff(reviewed.project, registry)
    assert all(not d.added and not d.removed for d in after)
    added = {(s, d.tag) for d in diffs for s in d.added}
    assert added <= {(x["segment_id"], x["tag"]) for x in labels}


def test_people_s_labels_never_change_in_the_diff(reviewed: Catalogue) -> None:
    learn(reviewed.project, OPTIONS)
    _, diffs = learned_diff(reviewed.project, registry_of(learned_plugin))
    verified = set(reviewed.ids[:40])
    assert all(not (set(d.added) | set(d.removed)) & verified for d in diffs)


def test_the_plugin_is_installed_and_needs_a_trained_version(project: Project) -> None:
    from curator.api import PluginContext

    tagger = load_registry().tagger("learned")
    assert isinstance(tagger, LearnedTagger) and tagger.version == "untrained"
    with pytest.raises(CuratorError, match="curator learn"):
        LearnedTagger().setup(PluginContext(project_root=project.root))


# ---------------------------------------------------------------- active learning


def test_most_informative_first_skips_what_people_labelled(reviewed: Catalogue) -> None:
    learn(reviewed.project, OPTIONS)
    ranking = informative_ranking(reviewed.project, "instruments", "snare")
    assert not set(ranking) & set(reviewed.ids[:40]), "those already have a human snare label"
    assert set(ranking) == set(reviewed.ids[40:])
    model = load_model(reviewed.project.root)
    ids, features = reviewed.project.catalog.embeddings(EMBEDDING)
    p = model.probabilities(features)[:, model.pairs.index(("instruments", "snare"))]
    most = ids[int(np.argmin(np.where(np.isin(ids, reviewed.ids[40:]), np.abs(p - 0.5), 9)))]
    page = review_page(
        reviewed.project, ReviewFilter("instruments", "snare", order="informative"), 1, 5
    )
    assert page.segments[0]["id"] == most
    values = [row["informativeness"] for row in page.segments]
    assert values == sorted(values, reverse=True)


# ---------------------------------------------------------------- CLI and page


def test_cli_learn_prints_per_tag_figures_and_labels_needed(run_cli, reviewed) -> None:
    root = reviewed.project.root
    result = run_cli("learn", "--project", root, "--facet", "instruments", "--json")
    report = json.loads(result.stdout)
    assert report["version"] == current_version(reviewed.project)
    trained = {r["tag"] for r in report["tags"] if r["trained"]}
    assert trained == set(TAGS)
    untrained = [r for r in report["tags"] if not r["trained"]]
    # Nothing verified yet: 20 positives and 20 negatives wanted. Segments reviewed for other
    # tags are not its negatives: only a tag a person decided is verified.
    assert untrained and all(r["needed"] == 40 and r["precision"] is None for r in untrained)
    table = run_cli("learn", "--project", root, "--tag", "snare", "--tag", "808")
    assert "precision" in table.output and "needed" in table.output and "snare" in table.output


def test_cli_learn_diff_then_apply(run_cli, reviewed: Catalogue) -> None:
    root = reviewed.project.root
    run_cli("learn", "--project", root, "--facet", "instruments")
    diff = json.loads(run_cli("learn", "--project", root, "--diff", "--json").stdout)
    assert not [x for x in reviewed.project.catalog.labels() if x["source"].startswith("learned")]
    assert diff["version"] == current_version(reviewed.project)
    applied = run_cli("learn", "--project", root, "--apply")
    assert "would change" in applied.output and "tagged from cache" in applied.output
    assert [x for x in reviewed.project.catalog.labels() if x["source"].startswith("learned")]


def test_cli_learn_without_embeddings_is_a_clear_error(run_cli, project: Project) -> None:
    result = run_cli("learn", "--project", project.root, expect=1)
    assert "no cached audio embeddings yet" in result.output


def test_learned_tagger_page_trains_reports_diffs_and_applies(
    reviewed: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CURATOR_PROJECT", str(reviewed.project.root))
    page = AppTest.from_file(str(PAGES / "9_Learned_tagger.py"), default_timeout=60).run()
    assert not page.exception, page.exception
    assert any("No learned tagger yet" in i.value for i in page.info)
    page.button(key="learn-train").click().run()
    assert not page.exception, page.exception
    version = current_version(reviewed.project)
    assert any(version in s.value for s in page.success)
    assert any(f"Version {version}" in h.value for h in page.subheader)
    report = page.dataframe[0].value
    assert set(TAGS) <= set(report["tag"])
    page.button(key="learn-diff").click().run()
    assert any("would change" in m.value for m in page.markdown)
    assert not [x for x in reviewed.project.catalog.labels() if x["source"].startswith("learned")]
    page.button(key="learn-apply").click().run()
    assert not page.exception, page.exception
    assert any("tagged from cache" in s.value for s in page.success)
    assert [x for x in reviewed.project.catalog.labels() if x["source"].startswith("learned")]


# ---------------------------------------------------------------- beats: against a fair baseline


@pytest.fixture(scope="module")
def corrected_beats(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, dict, list, list]:
    """60 rendered beats, one 20 s segment each, tagged by the real musicnn (MTT model,
    penultimate embeddings) and trap (shipped weights); curators correct the instruments of
    the first 40."""
    from curator.catalogue.ingest import ingest
    from curator.demo import load_truth, render_demo_dataset
    from curator.plugins.musicnn.settings import default_graph_folder
    from curator.project import init_project
    from curator.tagging.runs import run_tagger

    if not (default_graph_folder() / "MTT_musicnn.pb").is_file():
        pytest.skip("no frozen musicnn graphs: `make setup` makes them")
    folder = tmp_path_factory.mktemp("learned-beats")
    render_demo_dataset(folder / "beats", 60, seed=3, sample_rate=16000)
    project = init_project(folder / "project")
    settings = project.root / "curator.toml"
    text = settings.read_text().replace("segments_per_track = 2", "segments_per_track = 1")
    text = text.replace("segment_max_seconds = 35.0", "segment_max_seconds = 20.0")
    settings.write_text(
        text + '\n[plugins.musicnn]\nmodel = "MTT_musicnn"\nembedding = "penultimate"\n'
    )
    project = init_project(project.root)
    ingest(project, [folder / "beats"])
    run_tagger(project, "musicnn")
    run_tagger(project, "trap")  # the baseline that scores every demo instrument
    truth = {name: spec.instruments for name, spec in load_truth(folder / "beats").items()}
    rows = review_page(project, ReviewFilter(), 1, 100).segments
    by_name = {Path(r["source"]).name: r for r in rows}
    names = sorted(by_name)
    train, held_out = names[:40], names[40:]
    for name in train:
        correct(project, by_name[name], truth[name])
    return (
        project,
        truth,
        [by_name[n]["id"] for n in train],
        [(by_name[n]["id"], n) for n in held_out],
    )


def correct(project: Project, row: dict, instruments: tuple[str, ...]) -> None:
    """What a curator does on the Review page: fix the instruments, verify the right ones,
    and reject every other instrument of the vocabulary (only a tag a person decided counts
    as verified, so the negatives are said out loud)."""
    from curator.curation.review import effective_tags, model_only_tags, save_segment, tag_changes

    before = effective_tags(row).get("instruments", [])
    changes = tag_changes(row["id"], "instruments", before, list(instruments), model_only_tags(row))
    decided = {c.tag for c in changes} | set(instruments)
    vocabulary = [t.name for t in project.vocabulary().facet("instruments").tags]
    changes += [
        HumanLabel(row["id"], "instruments", tag, present=False)
        for tag in vocabulary
        if tag not in decided
    ]
    save_segment(project, row["id"], changes, actor="ana")


def balanced_accuracy(said: np.ndarray, truth: np.ndarray) -> float:
    return float((said[truth].mean() + (~said[~truth]).mean()) / 2)


def learned_labels(project: Project, embedding: str, prior: bool) -> set[tuple[str, str]]:
    """Train the learned tagger on `embedding`, re-tag with it; its instrument labels."""
    import curator.plugins.trap as trap_plugin

    learn(project, LearnOptions(facet="instruments", embedding=embedding, prior=prior))
    apply_learned(project, registry_of(learned_plugin, trap_plugin))
    return present_labels(project, "learned")


def present_labels(project: Project, plugin: str) -> set[tuple[str, str]]:
    """(segment, tag) of every instrument a plugin's labels say is present."""
    return {
        (x["segment_id"], x["tag"])
        for x in project.catalog.labels()
        if x["source"].split("@")[0] == plugin and x["present"] and x["facet"] == "instruments"
    }


@pytest.mark.slow
def test_learned_tagger_against_the_trap_tagger_per_tag(corrected_beats) -> None:
    """Per instrument, on 20 held-out beats nobody reviewed, balanced accuracy of the labels
    of: the trap tagger (shipped weights, which score every demo instrument and never heard
    the demo's soundfont: the fair baseline), the learned tagger trained on the corrections of
    40 other beats over trap's embedding with trap's prior (corrected from trap), and the
    learned tagger over musicnn's embedding alone.

    Judged: every instrument with 3 held-out beats of each side (kick and hi-hat are in every
    beat). musicnn is not the baseline: it has no tag map for 10 of the 13 demo instruments,
    so it scores 0.5 there by construction. What this shows (measured: 11 tags judged):
    - corrected from trap, the learned tagger beats trap on at least half of the tags and by
      at least 0.05 on average (measured 8 of 11, mean 0.79 vs 0.66; it loses on open hat
      and synth bells by 0.03);
    - over musicnn's embedding it does not beat trap (measured 0.63 vs 0.66 on average; it
      wins on strings, deep sub and plucked guitar, loses on the drums, whose segment-averaged
      musicnn embedding hardly shows them): asserted is only that it stays within 0.1 of trap.
    """
    from curator.curation.probes import embedding_choices
    from curator.demo import INSTRUMENTS

    project, truth, _, held_out = corrected_beats
    embeddings = {name.split("-")[0]: name for name in embedding_choices(project)}
    said = {
        "trap": present_labels(project, "trap"),
        "from trap": learned_labels(project, embeddings["trap"], prior=True),
        "from musicnn": learned_labels(project, embeddings["musicnn"], prior=False),
    }
    lines, scores = [], []
    for tag in INSTRUMENTS:
        real = np.array([tag in truth[name] for _, name in held_out])
        if min(real.sum(), (~real).sum()) < 3:
            lines.append(f"{tag:15} not judged (held-out + {real.sum()})")
            continue
        row = {
            who: balanced_accuracy(np.array([(s, tag) in said[who] for s, _ in held_out]), real)
            for who in said
        }
        scores.append(row)
        lines.append(f"{tag:15} " + "  ".join(f"{who} {v:.2f}" for who, v in row.items()))
    print("\nbalanced accuracy on held-out beats\n" + "\n".join(lines))
    assert len(scores) >= 8, lines
    mean = {who: float(np.mean([row[who] for row in scores])) for who in said}
    better = [row for row in scores if row["from trap"] > row["trap"]]
    assert len(better) >= len(scores) / 2, lines
    assert mean["from trap"] >= mean["trap"] + 0.05, (mean, lines)
    assert abs(mean["from musicnn"] - mean["trap"]) <= 0.1, (mean, lines)
