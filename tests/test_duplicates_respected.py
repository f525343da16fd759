"""Duplicates respected everywhere: rebalance counts a unit once, the split keeps a unit on one
side, `selections check` finds leaks, `export --dedupe` writes one member, and the Review page
keeps one member and excludes the rest in one undoable action.

The catalogue is real: twelve rendered tone tracks ingested into a DuckDB project, with the
duplicate groups written straight into it (finding them is tested in test_duplicates*).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest
from test_export import SATS, SHORT_SEGMENTS
from test_rebalance import import_model_tags

from curator import app as app_package
from curator.catalogue.ingest import ingest
from curator.curation.duplicates import keep_only, segment_duplicates
from curator.curation.review import save_segment, undo
from curator.duplicates.evidence import evidence_words
from curator.duplicates.groups import unit_of
from curator.export.build import export, export_settings, exports
from curator.project import Project, init_project, open_project
from curator.rebalance.methods import Budget
from curator.rebalance.plan import RebalanceRequest, plan, rebalance
from curator.rebalance.selections import selection_leaks
from curator.storage import HumanLabel
from curator.storage.duplicates import LEVELS, DuplicateGroup, replace_duplicate_groups
from curator.storage.prompts import PromptRow, save_prompts
from curator.storage.selections import selection_items

PAGES = Path(app_package.__file__).parent / "pages"
REVIEW = PAGES / "1_Review.py"
TRACKS = 12


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve 15 s tone tracks, two 4-6 s segments each, tagged trap (tracks 0 and 1 phonk
    too), each segment with a prompt."""
    from conftest import SR, tone, write_blocks

    root = tmp_path_factory.mktemp("dupes")
    (root / "audio").mkdir()
    for i in range(TRACKS):
        write_blocks(root / "audio" / f"beat{i:02d}.wav", tone(15.0, seed=i), SR)
    project = init_project(root / "project")
    (project.root / "curator.toml").write_text(SHORT_SEGMENTS)
    project = open_project(project.root)
    ingest(project, [root / "audio"])
    ids = segments_by_track(project)
    tags = {s: {"genres": ["trap", "phonk"] if t < 2 else ["trap"]} for t, s in all_ids(ids)}
    import_model_tags(project, tags)
    save_prompts(
        project.catalog, [PromptRow(s, "template@1", f"A beat, {s}.") for _, s in all_ids(ids)]
    )
    return project.root


@pytest.fixture
def beats(template: Path, tmp_path: Path) -> Project:
    """A fresh copy of the catalogue for a test that changes it."""
    return open_project(Path(shutil.copytree(template, tmp_path / "project")))


def segments_by_track(project: Project) -> list[list[str]]:
    """Segment ids per track, tracks in file-name order (beat00 first)."""
    rows = sorted(project.catalog.segment_rows(), key=lambda r: (r["source"], r["start"]))
    tracks: dict[str, list[str]] = {}
    for row in rows:
        tracks.setdefault(row["source"], []).append(row["id"])
    return list(tracks.values())


def all_ids(tracks: list[list[str]]) -> list[tuple[int, str]]:
    return [(t, s) for t, ids in enumerate(tracks) for s in ids]


def group(level: str, *members: str, **evidence) -> DuplicateGroup:
    return DuplicateGroup(level, min(members), tuple(sorted(members)), evidence)


def store(project: Project, *groups: DuplicateGroup) -> None:
    for level in LEVELS:
        replace_duplicate_groups(project.catalog, level, [g for g in groups if g.level == level])


def request(**kwargs) -> RebalanceRequest:
    # random spreads 40 copies over every segment of the pool, so each one is chosen
    values = {
        "name": "dd",
        "budget": Budget(copies=40),
        "method": "random",
        "facets": ("genres",),
        "validation": 0.0,
    }
    return RebalanceRequest(**{**values, **kwargs})


def phonk_before(report: dict) -> int:
    (row,) = [r for r in report["facets"]["genres"]["tags"] if r["tag"] == "phonk"]
    return row["before"]


def reuploaded(project: Project) -> tuple[list[str], list[str]]:
    """Track 1 is a re-upload of track 0: each segment the same recording as its twin."""
    ids = segments_by_track(project)
    store(project, *(group("same", a, b, score=0.97) for a, b in zip(ids[0], ids[1], strict=True)))
    return ids[0], ids[1]


# -- rebalance --------------------------------------------------------------------------------


def test_rebalance_counts_a_duplicate_unit_once(beats: Project) -> None:
    first, second = reuploaded(beats)
    kept = plan(beats, request())
    assert phonk_before(kept.report) == 2, "two segments of phonk music, not four"
    assert kept.report["before"]["segments"] == 2 * TRACKS - 2
    assert kept.report["duplicates"] == {
        "counted_once": True,
        "folded": 2,
        "units": 2,
        "joined_tracks": 0,  # track 1 has no segment left in the pool to join
    }
    chosen = {item.segment_id for item in kept.items}
    for pair in zip(first, second, strict=True):
        assert len(chosen & set(pair)) == 1, "the copies of a unit go to one member"
    assert any("2 duplicate segment(s) left out" in n for n in kept.report["notes"])

    everything = plan(beats, request(keep_duplicates=True))
    assert phonk_before(everything.report) == 4
    assert everything.report["duplicates"]["folded"] == 0
    assert everything.report["duplicates"]["joined_tracks"] == 1
    assert everything.report["before"]["segments"] == 2 * TRACKS


def test_the_member_kept_is_the_one_a_curator_kept_else_the_best_labelled(beats: Project) -> None:
    first, second = reuploaded(beats)
    chosen = {i.segment_id for i in plan(beats, request()).items}
    assert {min(pair) for pair in zip(first, second, strict=True)} <= chosen, "equals: by id"
    # A person verified a tag on the second track's first segment: it is the better-labelled.
    save_segment(
        beats, second[0], [HumanLabel(second[0], "genres", "phonk", present=True)], actor="ana"
    )
    # A curator kept the first track's second segment.
    keep_only(beats, first[1], actor="ana")
    chosen = {i.segment_id for i in plan(beats, request()).items}
    assert second[0] in chosen and first[0] not in chosen
    assert first[1] in chosen and second[1] not in chosen


# -- the split --------------------------------------------------------------------------------

SEGMENTS = 2 * TRACKS
# Per level, each segment's group number (-1: in no group): a group is the segments sharing one.
groupings = st.lists(st.integers(-1, 3), min_size=SEGMENTS, max_size=SEGMENTS)


@pytest.mark.slow
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    same=groupings,
    near=groupings,
    validation=st.sampled_from([0.2, 0.35, 0.5]),
    method=st.sampled_from(["budgeted", "random"]),
    keep=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_a_split_never_puts_a_duplicate_unit_on_both_sides(
    template: Path, same, near, validation, method, keep, seed
) -> None:
    project = open_project(template)  # only the groups change, and every example sets them
    ids = [s for _, s in all_ids(segments_by_track(project))]
    groups = [
        group(level, *members)
        for level, numbers in (("same", same), ("near", near))
        for members in _members(ids, numbers)
    ]
    store(project, *groups)
    try:
        planned = plan(
            project,
            request(validation=validation, method=method, keep_duplicates=keep, seed=seed),
        )
    finally:
        store(project)
    side = {item.segment_id: item.split for item in planned.items}
    units = unit_of(g.members for g in groups)
    sides: dict[str, set[str]] = {}
    for segment, unit in units.items():
        if segment in side:
            sides.setdefault(unit, set()).add(side[segment])
    assert all(len(found) == 1 for found in sides.values()), sides
    if not keep:
        chosen: dict[str, int] = {}
        for segment in side:
            if segment in units:
                chosen[units[segment]] = chosen.get(units[segment], 0) + 1
        assert all(n == 1 for n in chosen.values()), "one member per unit"


def _members(ids: list[str], numbers: list[int]) -> list[list[str]]:
    found: dict[int, list[str]] = {}
    for segment, number in zip(ids, numbers, strict=True):
        if number >= 0:
            found.setdefault(number, []).append(segment)
    return [m for m in found.values() if len(m) > 1]


# -- the leak check ---------------------------------------------------------------------------


def test_the_leak_check_finds_a_unit_split_in_a_selection_made_before_the_groups(
    beats: Project, run_cli, monkeypatch
) -> None:
    rebalance(beats, request(name="early", validation=0.5, keep_duplicates=True))
    items = selection_items(beats.catalog, "early")
    train = next(i.segment_id for i in items if i.split == "train")
    held = next(i.segment_id for i in items if i.split == "validation")
    store(beats, group("near", train, held, similarity=0.91))

    (leak,) = selection_leaks(beats, ["early"])["early"]
    assert (leak.train, leak.validation, leak.levels) == ((train,), (held,), ("near",))
    result = run_cli("selections", "check", "--project", beats.root, expect=1)
    (line,) = [x for x in result.output.splitlines() if "leak" in x]
    assert line.startswith("early: leak: unit ") and train in line and held in line
    as_json = json.loads(
        run_cli("selections", "check", "--json", "--project", beats.root, expect=1).output
    )
    assert as_json["early"][0]["validation"] == [held]
    monkeypatch.setenv("CURATOR_PROJECT", str(beats.root))
    page = AppTest.from_file(str(PAGES / "5_Rebalance.py"), default_timeout=60).run()
    assert not page.exception, page.exception
    assert any("1 duplicate unit(s) on both sides" in w.value for w in page.warning)
    assert any(train in c.value and held in c.value for c in page.caption)

    rebalance(beats, request(name="early", validation=0.5), replace=True)
    result = run_cli("selections", "check", "early", "--project", beats.root)
    assert "early: no duplicate unit on both sides" in result.output


# -- export --------------------------------------------------------------------------------


def test_export_dedupe_writes_one_member_and_lists_the_others(
    beats: Project, tmp_path: Path
) -> None:
    first, second = reuploaded(beats)
    out = tmp_path / "export"
    # The exporter alone, as test_export does: loading every plugin would cost seconds.
    summary = export(beats, out, settings=export_settings(beats), registry=SATS, dedupe=True)
    manifest = (out / "manifest.jsonl").read_text().splitlines()
    written = [json.loads(line)["segment_id"] for line in manifest]
    assert len(written) == summary.segments == 2 * TRACKS - 2
    for a, b in zip(first, second, strict=True):
        assert (a in written) != (b in written), "one member of each unit is written"
        left, kept = (b, a) if a in written else (a, b)
        reason = dict(summary.left_out)[left]
        assert reason == f"a duplicate (--dedupe): the same recording as {kept}, exported instead"
    assert {p.stem for p in (out / "train").iterdir()} == set(written)
    (recorded,) = exports(beats)
    assert len(recorded["left_out"]) == 2, "the catalogue's record lists them too"


# -- review ---------------------------------------------------------------------------------


def linked_three(project: Project) -> tuple[str, str, str]:
    """a and b the same recording, b and c share a loop: one unit of three."""
    ids = segments_by_track(project)
    a, b, c = ids[0][0], ids[1][0], ids[2][0]
    store(
        project,
        group("same", a, b, score=0.97, summary="fingerprints match over 9.8 s"),
        group("near", b, c, similarity=0.93, pairs=[[b, c]]),
    )
    return a, b, c


def excluded(project: Project) -> set[str]:
    return {r["id"] for r in project.catalog.segment_rows(include_unusable=True) if r["excluded"]}


def test_keep_one_excludes_the_unit_in_one_batch_and_undo_restores(beats: Project) -> None:
    a, b, c = linked_three(beats)
    shown = segment_duplicates(beats, a)
    assert shown is not None
    (same,) = shown.groups
    assert same.level == "same" and [m.segment_id for m in same.others] == [b]
    assert same.evidence.startswith("The same recording") and "9.8 s" in same.evidence
    assert [m.segment_id for m in shown.linked] == [c], "linked through b's loop"
    assert shown.to_exclude == sorted([b, c])

    batch, changed = keep_only(beats, a, actor="ana")
    assert changed == 2 and excluded(beats) == {b, c}
    (recorded,) = beats.catalog.batches(batch_id=batch)
    assert recorded["actor"] == "ana" and recorded["segments"] == 2
    assert undo(beats, batch, actor="ana") == 2
    assert excluded(beats) == set()
    assert segment_duplicates(beats, segments_by_track(beats)[5][0]) is None


def test_evidence_in_words_names_the_pairs_of_the_segment_first() -> None:
    fingerprints = [
        {"tracks": ["t1", "t2"], "bit_error_rate": 0.0812, "offset_seconds": 1.5,
         "tempo_ratio": 1.0, "overlap_seconds": 40.0},
        {"tracks": ["t2", "t3"], "bit_error_rate": 0.1, "offset_seconds": -2.0,
         "tempo_ratio": 1.02},
    ]  # fmt: skip
    same = group("same", "t1-0", "t2-0", "t3-0", method="chromaprint", pairs=fingerprints)
    assert evidence_words(same, about={"t3-0", "t3"}) == (
        "The same recording (a re-encode, a gain change, a trim: the audio fingerprints "
        "match): t2 ~ t3: bit error rate 0.100, t3 starts -2.00 s into t2, tempo x1.02."
    )
    assert "t1 ~ t2: bit error rate 0.081 over 40 s, t2 starts +1.50 s into t1" in (
        evidence_words(same)
    )
    loop = {"segments": ["x", "y"], "shared_landmarks": 57, "share": 0.0312, "offset_seconds": 0.4}
    near = group("near", "x", "y", pairs=[loop])
    assert evidence_words(near) == (
        "The same loop or sample under another beat (many spectral landmarks agree on one time "
        "offset): x ~ y: 57 landmarks agree (3.1% of the smaller segment's), y starts +0.40 s "
        "into x."
    )
    similar = group("near", "x", "y", pairs=[{"segments": ["x", "y"], "similarity": 0.9123}])
    assert evidence_words(similar).endswith("time offset): x ~ y: similarity 0.912.")
    figures = group("near", "x", "y", similarity=0.912345, candidates=[[1], [2]])
    assert evidence_words(figures).endswith("time offset): 2 candidates, similarity 0.912.")


def test_review_page_shows_duplicates_and_keeps_one_then_undoes(
    beats: Project, monkeypatch
) -> None:
    a, b, c = linked_three(beats)
    monkeypatch.setenv("CURATOR_PROJECT", str(beats.root))
    monkeypatch.setenv("CURATOR_USER", "ana")
    page = AppTest.from_file(str(REVIEW), default_timeout=60)
    page.query_params.update({"q": b})
    page.run()
    assert not page.exception, page.exception
    captions = [c.value.replace("\\", "") for c in page.caption]  # as_text escapes
    focus = [c for c in captions if c.startswith("Duplicates:")]
    assert f"the same recording as {a}; the same loop or sample as {c}." in focus[0]
    page.sidebar.radio(key="review-view").set_value("List").run()
    assert not page.exception, page.exception
    said = " ".join(m.value for m in page.markdown).replace("\\", "")
    assert "**same**: The same recording" in said and "**near**: The same loop" in said
    links = [x.proto.url for x in page.get("link_button")]
    assert f"Review?segment={a}" in links and f"Review?segment={c}" in links

    page.button(key=f"{b}-keep-one").click().run()
    assert not page.exception, page.exception
    assert excluded(beats) == {a, c}
    assert any("Kept" in s.value and "2 change(s)" in s.value for s in page.success)
    page.button(key=f"{b}-keep-undo").click().run()
    assert not page.exception, page.exception
    assert excluded(beats) == set()
    assert any("Undone: 2 change(s) restored." in s.value for s in page.success)
