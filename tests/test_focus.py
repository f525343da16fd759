"""Focus mode without a browser: its queue, the labels a card's decisions make, the audio it
plays, and the Review page opening on it (AppTest)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from streamlit.testing.v1 import AppTest
from tests_support import hats_review_project

from curator import app as app_package
from curator.app import focus as focus_app
from curator.curation import focus
from curator.curation.focus import FocusQueue, ProposedTag, decision_labels, proposed_tags
from curator.curation.review import ReviewFilter, review_page, save_segment
from curator.errors import InvalidInput
from curator.project import Project
from curator.storage import HumanLabel

HATS = ReviewFilter("instruments", "hi-hat")


@pytest.fixture
def tagged(tmp_path: Path, loud_and_quiet: Path, monkeypatch) -> Project:
    """12 segments: "hi-hat" proposed on 6, "808" on the other 6."""
    return hats_review_project(tmp_path / "project", loud_and_quiet, monkeypatch)


def label(facet, tag, kind="model", present=True, score=0.5, source="clap@1"):
    return {
        "facet": facet,
        "tag": tag,
        "source_kind": kind,
        "present": present,
        "score": score if kind == "model" else None,
        "source": source if kind == "model" else "human",
    }


def test_proposed_tags_best_score_first_with_the_person_s_decision_and_no_values() -> None:
    row = {
        "labels": [
            label("instruments", "snare", score=0.3),
            label("instruments", "808", score=0.9),
            label("instruments", "808", score=0.6, source="trap@1"),
            label("moods", "dark", score=0.5),
            label("moods", "dark", kind="human", present=False),
            label("genres", "trap", kind="human"),
            label("tempo", "tempo", score=0.99),
        ]
    }
    tags = proposed_tags(row)
    assert [(t.facet, t.tag) for t in tags] == [
        ("instruments", "808"),
        ("moods", "dark"),
        ("instruments", "snare"),
        ("genres", "trap"),
    ]
    assert tags[0].score == 0.9 and tags[0].sources == ("clap@1", "trap@1")
    assert tags[1].decided is False and tags[1].proposed
    assert tags[3] == ProposedTag("genres", "trap", None, (), False, True)


def test_only_decided_tags_become_labels_and_a_repeated_decision_is_not_written() -> None:
    tags = [
        ProposedTag("instruments", "808", 0.9, ("clap@1",), True, None),
        ProposedTag("instruments", "snare", 0.4, ("clap@1",), True, None),
        ProposedTag("moods", "dark", 0.5, ("clap@1",), True, False),
        ProposedTag("genres", "trap", None, (), False, True),
    ]
    decisions = [
        ("instruments", "808", True),
        ("moods", "dark", False),  # a person already rejected it
        ("genres", "trap", False),  # a person changes their mind
    ]
    assert decision_labels("s1", tags, decisions) == [
        HumanLabel("s1", "instruments", "808", present=True),
        HumanLabel("s1", "genres", "trap", present=False),
    ]
    assert decision_labels("s1", tags, []) == []
    with pytest.raises(InvalidInput, match="instruments/hi-hat is not on its card"):
        decision_labels("s1", tags, [("instruments", "hi-hat", True)])


def test_the_queue_skips_nothing_when_saved_segments_leave_it(tagged: Project, monkeypatch) -> None:
    monkeypatch.setattr(focus, "WINDOW", 2)
    everything = [r["id"] for r in review_page(tagged, HATS, 1, 50).segments]
    assert len(everything) == 6
    queue, seen = FocusQueue(HATS), []
    while (row := queue.current(tagged)) is not None:
        seen.append(row["id"])
        if len(seen) % 2:  # reject hi-hat on every other one: it leaves the queue
            change = [HumanLabel(row["id"], "instruments", "hi-hat", present=False)]
            save_segment(tagged, row["id"], change, actor="ana")
            queue.saved(focus.row_after_save(row, change, None, "ana"))
        queue.move(1)
    assert seen == everything
    assert queue.total == 3  # what the last read counted: three rejected and gone
    queue.move(-2)
    back = queue.current(tagged)
    assert back["id"] == everything[4]
    assert [t.decided for t in proposed_tags(back)] == [False]  # as saved, without a read


def test_listening_copy_is_stereo_at_the_source_rate(tmp_path: Path) -> None:
    rate = 44100
    t = np.arange(3 * rate) / rate
    left, right = np.sin(2 * np.pi * 8000 * t), 0.25 * np.sin(2 * np.pi * 60 * t)
    stereo = tmp_path / "hats.wav"
    sf.write(stereo, np.stack([left, right], axis=1).astype(np.float32), rate)
    mono = tmp_path / "mono.wav"
    sf.write(mono, (0.5 * right).astype(np.float32), 8000)

    copy = focus_app.listening_copy.__wrapped__(str(stereo), 0, 0.5, 2.0)
    audio, got_rate = sf.read(io.BytesIO(copy.wav))
    assert (got_rate, audio.shape) == (rate, (2 * rate, 2))  # nothing above 11 kHz is lost
    spectrum = np.abs(np.fft.rfft(audio[:, 0]))
    assert np.argmax(spectrum) * rate / len(audio) == pytest.approx(8000, abs=2)
    assert copy.duration == pytest.approx(2.0)
    peaks = [np.frombuffer(__import__("base64").b64decode(p), np.int8) for p in copy.peaks]
    assert [p.max() for p in peaks] == [127, 32]  # left at full scale, right at a quarter
    assert copy.spectrogram.startswith(b"\x89PNG")

    copy = focus_app.listening_copy.__wrapped__(str(mono), 0, 0.0, 1.0)
    audio, got_rate = sf.read(io.BytesIO(copy.wav))
    assert (got_rate, audio.shape) == (8000, (8000, 2))
    assert np.array_equal(audio[:, 0], audio[:, 1])


def card_args(page: AppTest) -> dict:
    player = [e for e in page.main if "focus-player" in getattr(e.proto, "id", "")]
    assert player, "the focus card is not on the page"
    return json.loads(player[0].proto.json_args)


def test_review_opens_in_focus_mode_on_the_first_segment_of_the_queue(tagged: Project) -> None:
    page = AppTest.from_file(str(Path(app_package.__file__).parent / "pages" / "1_Review.py"))
    page.run(timeout=60)
    assert not page.exception, page.exception
    assert page.sidebar.radio(key="review-view").value == "Focus"
    args = card_args(page)
    first = review_page(tagged, ReviewFilter(), 1, 1).segments[0]
    assert args["segment"]["id"] == first["id"]
    assert args["segment"]["position"] == 1 and args["segment"]["total"] == 12
    assert [(t["facet"], t["tag"], t["decided"]) for t in args["tags"]] == [
        (t.facet, t.tag, None) for t in proposed_tags(first)
    ]
    assert args["audio"]["rate"] == 8000 and args["audio"]["channels"] == 2
    assert not [m for m in page.markdown if "segment(s) match" in m.value]  # no list


def test_a_save_from_the_card_labels_only_what_was_decided_and_undo_puts_it_back(
    tagged: Project,
) -> None:
    state = focus_app.FocusState(FocusQueue(HATS))
    row = state.queue.current(tagged)
    message = {"action": "save", "decisions": [["instruments", "hi-hat", False]]}
    focus_app.run_action(tagged, state, row, {**message, "excluded": True})
    labels = [x for x in tagged.catalog.labels() if x["source_kind"] == "human"]
    assert [(x["segment_id"], x["tag"], x["present"], x["actor"]) for x in labels] == [
        (row["id"], "hi-hat", False, "ana")
    ]
    assert state.queue.cursor == 1 and "Saved" in state.message
    assert state.queue.rows[0]["excluded"] is True

    focus_app.run_action(tagged, state, state.queue.current(tagged), {"action": "undo"})
    assert not [x for x in tagged.catalog.labels() if x["source_kind"] == "human"]
    assert state.queue.cursor == 0 and state.queue.rows[0] == row
    assert review_page(tagged, HATS).total == 6
    excluded = [r for r in tagged.catalog.segment_rows(include_unusable=True) if r["excluded"]]
    assert excluded == []

    # Saving with nothing decided writes nothing and moves on.
    focus_app.run_action(tagged, state, row, {"action": "save", "decisions": []})
    assert tagged.catalog.batches()[0]["action"] == "undo" and state.queue.cursor == 1
