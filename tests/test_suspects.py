"""The suspicion queue: confident learning over cached embeddings, its CLI, and the review queue."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from curator import app as app_package
from curator.curation.review import ReviewFilter, review_page, set_labels
from curator.curation.suspects import (
    ConfidentLearning,
    SuspectOptions,
    find_suspects,
    open_suspects,
)
from curator.project import Project
from curator.storage import HumanLabel, RunRecord, SegmentRecord, TrackRecord

PAGES = Path(app_package.__file__).parent / "pages"
TAGS = ("snare", "808", "piano")
EMBEDDING = "fake-audio"


@dataclass
class Catalogue:
    """A catalogue whose every segment's true tags are known, and what was changed."""

    project: Project
    ids: list[str]
    truth: np.ndarray  # (segments, TAGS) bool
    labels: np.ndarray  # what the tagger said
    flipped: set[tuple[str, str]]


def add_catalogue(project: Project, tracks: int = 40, seed: int = 0, flips: int = 6) -> Catalogue:
    """`tracks` tracks of 2 segments, embeddings where each tag moves 3 of 16 dimensions,
    and a tagger "seed" whose labels are the truth with `flips` cells flipped."""
    rng = np.random.default_rng(seed)
    track_rows = [_track(i) for i in range(tracks)]
    segments = [
        SegmentRecord(f"{t.id}-{k}", t.id, k, 5.0 + 40 * k, 30.0, -18.0, -1.0, False)
        for t in track_rows
        for k in range(2)
    ]
    project.catalog.save_ingest_batch([], track_rows, segments)
    ids = [s.id for s in segments]
    truth = np.repeat(rng.random((tracks, len(TAGS))) < 0.4, 2, axis=0)  # a track's 2 share it
    features = rng.normal(0, 0.6, (len(ids), 16))
    for k in range(len(TAGS)):
        features[:, 3 * k : 3 * k + 3] += 2.0 * truth[:, [k]]
    labels = truth.copy()
    cells = rng.choice(truth.size, flips, replace=False)
    labels.flat[cells] = ~labels.flat[cells]
    flipped = {(ids[c // len(TAGS)], TAGS[c % len(TAGS)]) for c in cells}
    scores = np.where(labels, 0.3, 0.1) + rng.uniform(-0.05, 0.05, labels.shape)
    write_tagger_run(project, "seed", ids, labels, scores, features)
    return Catalogue(project, ids, truth, labels, flipped)


def _track(number: int) -> TrackRecord:
    return TrackRecord(
        f"{number:016x}", f"{number:032x}", f"/nowhere/{number}.wav", 90.0, 44100, 2, "WAV",
        "PCM_16", "ingested", None,
    )  # fmt: skip


def write_tagger_run(
    project: Project,
    plugin: str,
    ids: list[str],
    labels: np.ndarray,
    scores: np.ndarray,
    features: np.ndarray | None = None,
) -> None:
    """A finished tag run of `plugin` as `curator tag` leaves it: scores, labels, embeddings."""
    tags = [("instruments", t) for t in TAGS]
    run_id = project.catalog.start_run(
        RunRecord("tag", plugin, "1", {}, f"{plugin}-hash", None, tags, False, "test")
    )
    rows, columns = np.nonzero(labels)
    count = len(rows)
    segment_ids = np.array(ids, dtype=object)
    tables = {
        "scores": {
            "segment_id": segment_ids,
            "run_id": np.full(len(ids), run_id),
            "scores": scores.astype(np.float32),
        },
        "labels": {
            "segment_id": segment_ids[rows],
            "facet": np.full(count, "instruments", dtype=object),
            "tag": np.array([TAGS[c] for c in columns], dtype=object),
            "source": np.full(count, f"{plugin}@1", dtype=object),
            "source_kind": np.full(count, "model", dtype=object),
            "present": np.ones(count, dtype=bool),
            "value": np.full(count, None, dtype=object),
            "run_id": np.full(count, run_id),
            "score": scores[rows, columns].astype(float),
            "actor": np.full(count, None, dtype=object),
        },
    }
    if features is not None:
        tables["embeddings"] = {
            "segment_id": segment_ids,
            "model": np.full(len(ids), EMBEDDING, dtype=object),
            "run_id": np.full(len(ids), run_id),
            "vector": features.astype(np.float32),
        }
    project.catalog.merge_columns(run_id, plugin, tables, ids)
    project.catalog.set_run_status(run_id, "finished")


@pytest.fixture
def catalogue(project: Project) -> Catalogue:
    return add_catalogue(project)


def judge(catalogue: Catalogue, **options) -> list[tuple[str, str]]:
    report = find_suspects(
        catalogue.project, SuspectOptions(facet="instruments", tags=TAGS, **options)
    )
    return [(segment, tag) for segment, _, tag in report.ranking]


# ---------------------------------------------------------------- the ranking


def test_flipped_labels_head_the_queue(catalogue: Catalogue) -> None:
    ranking = judge(catalogue)
    assert len(ranking) == catalogue.truth.size, "every unreviewed cell is ranked"
    head = set(ranking[: len(catalogue.flipped)])
    # Each tag moves its own dimensions by 2 standard deviations, so a probe that never
    # saw the segment's track sees a flip plainly; all but one flip must lead the queue.
    assert len(head & catalogue.flipped) >= len(catalogue.flipped) - 1


def test_flagged_labels_score_from_one_half_and_say_why(catalogue: Catalogue) -> None:
    report = find_suspects(catalogue.project, SuspectOptions(facet="instruments", tags=TAGS))
    flagged = [s for s in report.suspects if s.flagged]
    assert flagged and all(s.score >= 0.5 for s in flagged)
    assert all(s.score < 0.5 for s in report.suspects if not s.flagged)
    top = report.suspects[0]
    assert (top.segment_id, top.tag) in catalogue.flipped
    word = "present" if top.present else "absent"
    assert top.reason.startswith(f"confidently wrong: labelled {word}; a probe on fake-audio")
    assert top.present == bool(catalogue.labels[catalogue.ids.index(top.segment_id),
                                                TAGS.index(top.tag)])  # fmt: skip


def test_people_s_labels_are_never_suspects(catalogue: Catalogue) -> None:
    segment, tag = sorted(catalogue.flipped)[0]
    set_labels(catalogue.project, [HumanLabel(segment, "instruments", tag, present=False)])
    assert (segment, tag) not in judge(catalogue)


def test_a_label_fixed_after_judging_leaves_the_stored_queue(catalogue: Catalogue) -> None:
    judge(catalogue)
    first = open_suspects(catalogue.project, limit=1)[0]
    set_labels(
        catalogue.project,
        [HumanLabel(first["segment_id"], "instruments", first["tag"], not first["present"])],
    )
    remaining = {(r["segment_id"], r["tag"]) for r in open_suspects(catalogue.project)}
    assert (first["segment_id"], first["tag"]) not in remaining
    assert remaining, "the rest of the queue stays"


def test_two_taggers_disagreeing_is_named_and_raises_the_score(catalogue: Catalogue) -> None:
    before = find_suspects(catalogue.project, SuspectOptions(facet="instruments", tags=TAGS))
    scores = {(s.segment_id, s.tag): s.score for s in before.suspects}
    # A second tagger that scores everything but labels "piano" nowhere disagrees with seed
    # wherever seed labels piano.
    ids = catalogue.ids
    write_tagger_run(
        catalogue.project, "other", ids, np.zeros((len(ids), len(TAGS)), bool),
        np.full((len(ids), len(TAGS)), 0.05),
    )  # fmt: skip
    after = find_suspects(catalogue.project, SuspectOptions(facet="instruments", tags=TAGS))
    piano = [s for s in after.suspects if s.tag == "piano" and s.present]
    assert piano and all("seed says present, other absent" in s.reason for s in piano)
    assert all(s.score > scores[(s.segment_id, s.tag)] for s in piano)


def test_a_tagger_without_a_score_for_a_tag_has_no_say_on_it(catalogue: Catalogue) -> None:
    ids = catalogue.ids
    scores = np.full((len(ids), len(TAGS)), np.nan)
    scores[:, 0] = 0.05  # it scores snare (absent everywhere) and nothing else
    write_tagger_run(catalogue.project, "partial", ids, np.zeros(scores.shape, bool), scores)
    report = find_suspects(catalogue.project, SuspectOptions(facet="instruments", tags=TAGS))
    assert not [s for s in report.suspects if s.tag != "snare" and "partial" in s.reason]
    snares = [s for s in report.suspects if s.tag == "snare" and s.present]
    assert snares and all("seed says present, partial absent" in s.reason for s in snares)


def test_tags_with_too_few_labels_are_skipped_and_named(catalogue: Catalogue) -> None:
    report = find_suspects(catalogue.project, SuspectOptions(facet="instruments"))
    skipped = {tag for _, tag, _ in report.skipped}
    assert "flute" in skipped and "snare" not in skipped
    assert {tag for _, tag in report.judged} == set(TAGS)


def test_confident_learning_thresholds_are_the_class_means() -> None:
    probability = np.array([[0.9], [0.8], [0.1], [0.7], [0.2]])
    labels = np.array([[True], [True], [True], [False], [False]])
    signals = ConfidentLearning(probability, labels)
    assert signals.threshold_present[0] == pytest.approx((0.9 + 0.8 + 0.1) / 3)
    assert signals.threshold_absent[0] == pytest.approx((0.3 + 0.8) / 2)
    # Row 2 (present, p = 0.1) is confidently absent; row 3 (absent, p = 0.7) confidently
    # present; the others agree with their labels.
    assert signals.flagged[:, 0].tolist() == [False, False, True, True, False]


def test_no_embeddings_is_a_clear_error(project: Project) -> None:
    from curator.errors import CuratorError

    with pytest.raises(CuratorError, match="no cached audio embeddings yet"):
        find_suspects(project, SuspectOptions())


# ---------------------------------------------------------------- the CLI


def test_cli_prints_the_queue_as_json(run_cli, catalogue: Catalogue) -> None:
    root = catalogue.project.root
    result = run_cli(
        "suspects", "--project", root, "--json", "--limit", "5", "--facet", "instruments"
    )
    rows = json.loads(result.stdout)
    assert len(rows) == 5
    assert set(rows[0]) == {"segment_id", "facet", "tag", "label", "score", "reason"}
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert (rows[0]["segment_id"], rows[0]["tag"]) in catalogue.flipped
    assert rows[0]["label"] in ("present", "absent")


def test_cli_table_filters_by_tag_and_reads_the_stored_queue(run_cli, catalogue) -> None:
    root = catalogue.project.root
    result = run_cli("suspects", "--project", root, "--tag", "808", "--limit", "3")
    assert "Judged 1 tag(s)" in result.output and "808" in result.output
    stored = run_cli("suspects", "--project", root, "--stored", "--json")
    rows = json.loads(stored.stdout)
    assert rows and {r["tag"] for r in rows} == {"808"}


def test_cli_names_an_unknown_tag(run_cli, catalogue: Catalogue) -> None:
    result = run_cli("suspects", "--project", catalogue.project.root, "--tag", "kazoo", expect=1)
    assert "no tag 'kazoo'" in result.output


# ---------------------------------------------------------------- the review queue


def test_review_queue_likely_wrong_first(catalogue: Catalogue) -> None:
    judge(catalogue)
    page = review_page(catalogue.project, ReviewFilter(order="suspects"), 1, 5)
    assert page.total >= 5
    worst = page.segments[0]["suspects"][0]
    assert (worst["segment_id"], worst["tag"]) in catalogue.flipped
    tops = [row["suspects"][0]["score"] for row in page.segments]
    assert tops == sorted(tops, reverse=True)
    only_piano = review_page(
        catalogue.project, ReviewFilter(facet="instruments", tag="piano", order="suspects"), 1, 50
    )
    assert all(x["tag"] == "piano" for row in only_piano.segments for x in row["suspects"])


def test_review_page_shows_the_queue_and_its_reasons(
    catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    judge(catalogue)
    monkeypatch.setenv("CURATOR_PROJECT", str(catalogue.project.root))
    page = AppTest.from_file(str(PAGES / "1_Review.py"), default_timeout=60).run()
    page.sidebar.radio(key="review-view").set_value("List").run()
    assert not page.exception, page.exception
    page.sidebar.selectbox(key="queue-order").select("suspects").run()
    assert not page.exception, page.exception
    warnings = [w.value for w in page.warning]
    assert warnings and "may be wrong" in warnings[0] and "probe on fake-audio" in warnings[0]
    shown = [m.value for m in page.markdown if m.value.startswith("**")]
    worst = open_suspects(catalogue.project, limit=1)[0]
    assert shown[0].startswith(f"**{worst['segment_id']}**"), "the worst segment comes first"
    page.sidebar.button[0].click().run()  # recompute
    assert not page.exception, page.exception
    assert any("judged" in s.value for s in page.sidebar.success)


def test_review_page_without_a_learned_tagger_says_how_to_train(
    catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CURATOR_PROJECT", str(catalogue.project.root))
    page = AppTest.from_file(str(PAGES / "1_Review.py"), default_timeout=60).run()
    page.sidebar.radio(key="review-view").set_value("List").run()
    assert not page.exception, page.exception
    # Not offered (an error and a fall back to id order was what a curator got before).
    assert "informative" not in page.sidebar.selectbox(key="queue-order").options
    assert any("curator learn" in c.value for c in page.sidebar.caption)
    assert not page.error and "80 segment(s) match." in [m.value for m in page.markdown]


def test_an_unknown_order_is_refused(catalogue: Catalogue) -> None:
    from curator.errors import CuratorError

    with pytest.raises(CuratorError, match="order must be one of"):
        review_page(catalogue.project, ReviewFilter(order="random"))
