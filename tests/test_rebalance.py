"""Rebalance: budgets hold, splits keep tracks whole, the budgeted method evens tags out."""

from __future__ import annotations

import json
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from curator.catalogue.metadata import import_metadata
from curator.errors import CuratorError
from curator.project import Project, init_project, open_project
from curator.rebalance.methods import Budget, systematic_round
from curator.rebalance.metrics import mean_ir, normalized_entropy
from curator.rebalance.plan import (
    RebalanceRequest,
    parse_budget,
    plan,
    read_targets_file,
    rebalance,
)
from curator.storage import HumanLabel, SegmentRecord, TrackRecord
from curator.storage.selections import selection, selection_items

GENRES = ["trap", "drill", "r&b", "boom bap", "g-funk", "phonk"]


def add_tracks(project: Project, count: int, seconds: list[float] | None = None) -> list[str]:
    """`count` tracks of two segments each (no audio behind them); returns segment ids."""
    tracks = [
        TrackRecord(
            f"{i:016x}",
            f"{i:032x}",
            f"/beats/{i}.wav",
            120.0,
            44100,
            2,
            "WAV",
            "PCM_16",
            "ingested",
            None,
        )
        for i in range(count)
    ]
    lengths = seconds or [30.0]
    segments = [
        SegmentRecord(
            f"{t.id}-{k}",
            t.id,
            k,
            10.0 + 50 * k,
            lengths[(2 * i + k) % len(lengths)],
            -18.0,
            -1.0,
            False,
        )
        for i, t in enumerate(tracks)
        for k in range(2)
    ]
    project.catalog.save_ingest_batch([], tracks, segments)
    return [s.id for s in segments]


def skewed_genres(index: int) -> list[str]:
    """A long tail: trap nearly everywhere, boom bap and phonk on a few tracks."""
    track = index // 2
    tags = ["trap"] if track % 10 else ["drill"]
    if track % 3 == 0:
        tags.append("r&b")
    if track % 8 == 0:
        tags.append("boom bap")
    if track % 13 == 0:
        tags.append("g-funk")
    if track % 20 == 0:
        tags.append("phonk")
    return tags


def import_model_tags(project: Project, tags_of: dict[str, dict[str, list[str]]]) -> None:
    path = project.root / "model-tags.json"
    path.write_text(
        json.dumps({s: {f"{f}_tags": t for f, t in v.items()} for s, v in tags_of.items()})
    )
    import_metadata(project, path, source="seed-clap", human=False)


@pytest.fixture(scope="module")
def skewed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 tracks, 200 segments, genres from trap (most) to phonk (5 tracks)."""
    project = init_project(tmp_path_factory.mktemp("skewed") / "project")
    ids = add_tracks(project, 100, seconds=[20.0, 27.5, 35.0])
    import_model_tags(project, {s: {"genres": skewed_genres(i)} for i, s in enumerate(ids)})
    return project.root


@pytest.fixture
def skewed(skewed_template: Path, tmp_path: Path) -> Project:
    """A fresh copy of the skewed project for each test (building it takes a while)."""
    return open_project(Path(shutil.copytree(skewed_template, tmp_path / "skewed")))


def request(**kwargs) -> RebalanceRequest:
    values = {"name": "balanced", "budget": Budget(copies=120), "facets": ("genres",)}
    return RebalanceRequest(**{**values, **kwargs})


def genre_counts(project: Project, name: str) -> Counter[str]:
    """Copies per genre, counted from the stored items and the effective labels."""
    tags = defaultdict(set)
    for segment, facet, tag, present, _value, _kind in project.catalog.effective_labels():
        if facet == "genres" and present:
            tags[segment].add(tag)
    counts: Counter[str] = Counter()
    for item in selection_items(project.catalog, name):
        for tag in tags[item.segment_id]:
            counts[tag] += item.repeats
    return counts


# -- budgets --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["budgeted", "repeat-factor", "random"])
def test_a_budget_in_copies_is_spent_and_never_exceeded(skewed: Project, method: str) -> None:
    rebalance(skewed, request(method=method, budget=Budget(copies=150)))
    items = selection_items(skewed.catalog, "balanced")
    assert sum(item.repeats for item in items) == 150
    assert max(item.repeats for item in items) <= 4


@pytest.mark.parametrize("method", ["budgeted", "repeat-factor", "random"])
def test_a_budget_in_hours_is_never_exceeded(skewed: Project, method: str) -> None:
    planned = rebalance(skewed, request(method=method, budget=parse_budget("90m")))
    durations = {r["id"]: r["duration"] for r in skewed.catalog.segment_rows()}
    seconds = sum(durations[i.segment_id] * i.repeats for i in planned.items)
    assert 90 * 60 - 35.0 <= seconds <= 90 * 60  # full, within one longest segment
    assert planned.report["after"]["hours"] == pytest.approx(seconds / 3600, abs=1e-3)


def test_budget_strings() -> None:
    assert parse_budget("5000") == Budget(copies=5000)
    assert parse_budget("40h") == Budget(seconds=40 * 3600)
    assert parse_budget("2.5h") == Budget(seconds=9000)
    assert parse_budget("90m") == Budget(seconds=5400)
    for bad in ("lots", "12.5", "-3", "0", "40 hours"):
        with pytest.raises(CuratorError, match="budget"):
            parse_budget(bad)


def test_a_budget_larger_than_the_catalogue_stops_at_max_repeats(skewed: Project) -> None:
    for method in ("budgeted", "random"):
        planned = plan(skewed, request(method=method, budget=Budget(copies=5000), max_repeats=2))
        assert planned.report["after"]["copies"] == 400  # 200 segments x 2


def test_systematic_rounding_keeps_the_total_and_each_within_one() -> None:
    rng = np.random.default_rng(3)
    expected = rng.random(1000) * 3
    expected *= 1234 / expected.sum()
    rounded = systematic_round(expected, rng)
    assert rounded.sum() == 1234
    assert np.all(np.abs(rounded - expected) < 1)


# -- split -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["budgeted", "repeat-factor", "random"])
def test_no_track_is_on_both_sides_of_the_split(skewed: Project, method: str) -> None:
    planned = plan(skewed, request(method=method, budget=Budget(copies=300), validation=0.3))
    sides = defaultdict(set)
    for item in planned.items:
        sides[item.segment_id.split("-")[0]].add(item.split)
    assert all(len(s) == 1 for s in sides.values())
    assert {"train", "validation"} == set().union(*sides.values())
    split = planned.report["split"]
    assert split["train"]["tracks"] + split["validation"]["tracks"] == len(sides)
    assert 0.2 <= split["validation"]["tracks"] / len(sides) <= 0.4


def test_stratification_keeps_rare_tags_on_both_sides(skewed: Project) -> None:
    # boom bap is on 13 tracks, phonk on 5: a validation share of 0.2 wants 2.6 and 1.
    planned = plan(skewed, request(method="random", budget=Budget(copies=200), validation=0.2))
    tags = {row["tag"]: row for row in planned.report["facets"]["genres"]["tags"]}
    for tag in ("boom bap", "phonk", "g-funk", "drill"):
        assert 0 < tags[tag]["validation"] < tags[tag]["after"], tag


def test_no_validation_puts_everything_in_train(skewed: Project) -> None:
    planned = plan(skewed, request(validation=0.0))
    assert {item.split for item in planned.items} == {"train"}


# -- determinism and quality --------------------------------------------------------------------


@pytest.mark.parametrize("method", ["budgeted", "repeat-factor", "random"])
def test_the_same_seed_gives_the_same_selection(skewed: Project, method: str) -> None:
    first = plan(skewed, request(method=method, seed=7)).items
    assert plan(skewed, request(method=method, seed=7)).items == first
    assert plan(skewed, request(method=method, seed=8)).items != first


def test_budgeted_beats_repeat_factor_on_a_skewed_catalogue(skewed: Project) -> None:
    reports = {
        method: plan(skewed, request(method=method, budget=Budget(copies=150))).report
        for method in ("random", "repeat-factor", "budgeted")
    }
    ir = {m: r["facets"]["genres"]["after"]["mean_ir"] for m, r in reports.items()}
    entropy = {m: r["facets"]["genres"]["after"]["entropy"] for m, r in reports.items()}
    before = reports["budgeted"]["facets"]["genres"]["before"]["mean_ir"]
    assert ir["budgeted"] < 0.5 * ir["repeat-factor"] and ir["repeat-factor"] <= before
    assert entropy["budgeted"] > entropy["repeat-factor"] >= entropy["random"] - 0.05
    # The report's counts are the stored items' counts under the effective labels.
    rebalance(skewed, request(budget=Budget(copies=150)))
    tags = reports["budgeted"]["facets"]["genres"]["tags"]
    stored = genre_counts(skewed, "balanced")
    assert {row["tag"]: row["after"] for row in tags if row["after"]} == dict(stored)
    assert mean_ir(np.array(list(stored.values()))) == pytest.approx(ir["budgeted"], abs=1e-3)


def test_rare_tags_are_upsampled_by_repeats(skewed: Project) -> None:
    planned = plan(skewed, request(budget=Budget(copies=150), max_repeats=3))
    tags = {row["tag"]: row for row in planned.report["facets"]["genres"]["tags"]}
    assert tags["phonk"]["after"] > tags["phonk"]["before"]  # 10 segments, more copies
    assert tags["trap"]["after"] < tags["trap"]["before"]
    assert max(item.repeats for item in planned.items) == 3


def test_caps_are_never_exceeded_and_floors_aimed_at(skewed: Project) -> None:
    planned = plan(
        skewed, request(default_target="caps", caps={"trap": 40}, floors={"genres:r&b": 60})
    )
    tags = {row["tag"]: row for row in planned.report["facets"]["genres"]["tags"]}
    assert tags["trap"]["after"] <= 40 and tags["trap"]["cap"] == 40
    assert tags["r&b"]["after"] >= 60 and tags["r&b"]["floor"] == 60
    assert planned.report["after"]["copies"] == 120


def test_metrics_on_known_counts() -> None:
    assert mean_ir(np.array([100, 50, 25, 0])) == pytest.approx((1 + 2 + 4) / 3)
    assert normalized_entropy(np.array([5, 5, 5, 5]), 4) == pytest.approx(1.0)
    assert normalized_entropy(np.array([5, 0]), 2) == pytest.approx(0.0)
    assert mean_ir(np.zeros(3)) is None and normalized_entropy(np.array([3]), 1) is None


# -- what counts: human labels, usable segments ---------------------------------------------------


def test_human_labels_win_over_model_labels_in_the_counts(skewed: Project) -> None:
    trap_segments = [
        s for s, f, t, p, _v, _k in skewed.catalog.effective_labels() if t == "trap" and p
    ][:30]
    changes = [HumanLabel(s, "genres", "trap", present=False) for s in trap_segments]
    changes += [HumanLabel(s, "genres", "phonk") for s in trap_segments]
    skewed.catalog.apply_human_labels(changes, actor="ana", batch_id="b1")
    model_only = {
        row["tag"]: row for row in plan(skewed, request()).report["facets"]["genres"]["tags"]
    }
    assert model_only["phonk"]["before"] == 10 + 30
    assert model_only["trap"]["before"] == 180 - 30


def test_unusable_segments_are_never_selected(project: Project) -> None:
    ids = add_tracks(project, 30)
    tags = {s: {"genres": ["trap"]} for s in ids}
    rare = ids[:6]  # three tracks' segments carry the only phonk
    tags.update({s: {"genres": ["trap", "phonk"]} for s in rare})
    import_model_tags(project, tags)
    with project.catalog.connect() as con:  # as ingest flags a quiet segment
        con.execute("UPDATE segments SET silent = true WHERE id = ?", [rare[0]])
    project.catalog.set_segment_flags(rare[2], "ana", "b2", excluded=True)
    with project.catalog.connect() as con:  # its file went missing
        con.execute("UPDATE tracks SET status = 'missing' WHERE id = ?", [f"{2:016x}"])
    for method in ("budgeted", "repeat-factor", "random"):
        planned = plan(project, request(method=method, budget=Budget(copies=100)))
        chosen = {item.segment_id for item in planned.items}
        assert chosen and not chosen & {rare[0], rare[2], rare[4], rare[5]}
        phonk = next(r for r in planned.report["facets"]["genres"]["tags"] if r["tag"] == "phonk")
        assert phonk["before"] == 2  # rare[1] and rare[3]


def test_an_empty_catalogue_says_what_to_do(project: Project) -> None:
    with pytest.raises(CuratorError, match="ingest"):
        plan(project, request())


# -- names, targets file, value facets ----------------------------------------------------------


def test_an_existing_name_needs_replace(skewed: Project) -> None:
    rebalance(skewed, request())
    with pytest.raises(CuratorError, match="--replace"):
        rebalance(skewed, request(method="random"))
    rebalance(skewed, request(method="random"), replace=True)
    assert selection(skewed.catalog, "balanced")["method"] == "random"


def test_targets_file_sets_kinds_caps_and_floors(skewed: Project, tmp_path: Path) -> None:
    path = tmp_path / "targets.toml"
    path.write_text('target = "sqrt"\n[genres]\ntarget = "caps"\ncap = { trap = 30 }\n')
    spec = read_targets_file(path)
    assert spec == {
        "default_target": "sqrt",
        "targets": {"genres": "caps"},
        "caps": {"genres:trap": 30},
        "floors": {},
    }
    planned = plan(
        skewed,
        request(default_target=spec["default_target"], targets=spec["targets"], caps=spec["caps"]),
    )
    assert planned.report["targets"] == {"genres": "caps"}
    trap = next(r for r in planned.report["facets"]["genres"]["tags"] if r["tag"] == "trap")
    assert trap["after"] <= 30
    path.write_text('[genres]\ntarget = "flat"\n')
    with pytest.raises(CuratorError, match=r"genres\.target"):
        read_targets_file(path)


def test_unknown_tags_and_facets_are_named(skewed: Project) -> None:
    with pytest.raises(CuratorError, match="'nosuchtag'"):
        plan(skewed, request(caps={"nosuchtag": 3}))
    with pytest.raises(CuratorError, match="unknown facet 'colours'"):
        plan(skewed, request(facets=("colours",)))


def test_key_values_can_be_balanced_as_a_facet(skewed: Project) -> None:
    ids = [r["id"] for r in skewed.catalog.segment_rows()]
    keys = ["C", "C", "C", "C", "C", "C", "A", "G"]
    changes = [HumanLabel(s, "key", "key", value=keys[i % len(keys)]) for i, s in enumerate(ids)]
    skewed.catalog.apply_human_labels(changes, actor="ana", batch_id="keys")
    planned = plan(skewed, request(facets=("genres", "key")))
    keys_report = planned.report["facets"]["key"]
    assert {r["tag"]: r["before"] for r in keys_report["tags"]} == {"C": 150, "A": 25, "G": 25}
    assert keys_report["after"]["mean_ir"] < keys_report["before"]["mean_ir"]


# -- the command line -----------------------------------------------------------------------------


def test_cli_rebalance_prints_and_stores_the_report(skewed: Project, run_cli) -> None:
    result = run_cli(
        "rebalance",
        "--project",
        skewed.root,
        "--name",
        "b",
        "--budget",
        "150",
        "--facet",
        "genres",
        "--json",
    )
    report = json.loads(result.output)
    assert report["name"] == "b" and report["after"]["copies"] == 150
    assert set(report["facets"]) == {"genres"}
    assert (
        report["facets"]["genres"]["after"]["mean_ir"]
        < report["facets"]["genres"]["before"]["mean_ir"]
    )
    text = run_cli(
        "rebalance",
        "--project",
        skewed.root,
        "--name",
        "r",
        "--budget",
        "1h",
        "--method",
        "random",
        "--facet",
        "genres",
    ).output
    assert "Selection 'r' (random, budget 1 h)" in text and "MeanIR" in text and "phonk" in text
    listed = json.loads(run_cli("selections", "--project", skewed.root, "--json").output)
    assert {row["name"] for row in listed} == {"b", "r"}
    assert next(r for r in listed if r["name"] == "b")["copies"] == 150
    shown = json.loads(
        run_cli("selections", "show", "b", "--project", skewed.root, "--json").output
    )
    assert shown["report"]["facets"]["genres"]["tags"] == report["facets"]["genres"]["tags"]
    assert "phonk" in run_cli("selections", "show", "r", "--project", skewed.root).output
    run_cli("selections", "delete", "r", "--project", skewed.root)
    assert "r " not in run_cli("selections", "--project", skewed.root).output


def test_cli_errors_name_the_problem(skewed: Project, run_cli) -> None:
    base = ("rebalance", "--project", skewed.root, "--name", "x")
    assert "budget 'lots'" in run_cli(*base, "--budget", "lots", expect=1).output
    output = run_cli(*base, "--budget", "100", "--cap", "nosuchtag=5", expect=1).output
    assert "nosuchtag" in output and "unknown tag" in output
    assert "TAG=N" in run_cli(*base, "--budget", "100", "--floor", "trap", expect=1).output
    run_cli(*base, "--budget", "100")
    assert "--replace" in run_cli(*base, "--budget", "100", expect=1).output
    run_cli(*base, "--budget", "100", "--replace", "--target", "genres=sqrt")
    assert selection(skewed.catalog, "x")["settings"]["targets"] == {"genres": "sqrt"}
    assert (
        "no selection named 'nope'"
        in run_cli("selections", "show", "nope", "--project", skewed.root, expect=1).output
    )


def test_cli_targets_file_and_caps(skewed: Project, run_cli, tmp_path: Path) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_text('[genres]\ntarget = "caps"\ncap = { trap = 30 }\n')
    result = run_cli(
        "rebalance",
        "--project",
        skewed.root,
        "--name",
        "t",
        "--budget",
        "100",
        "--facet",
        "genres",
        "--targets",
        targets,
        "--floor",
        "phonk=25",
        "--json",
    )
    tags = {r["tag"]: r for r in json.loads(result.output)["facets"]["genres"]["tags"]}
    assert tags["trap"]["after"] <= 30 and tags["trap"]["cap"] == 30
    assert tags["phonk"]["after"] >= 25
