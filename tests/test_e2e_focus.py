"""End to end: a curator reviews segments in focus mode by keyboard alone, in a real browser.

`curator app` serves the real app; headless Chromium (see test_e2e_browser.py, whose server
and browser fixtures this reuses) presses keys on the page and nothing else. The catalogue
on disk must then hold exactly the decisions taken (accepted tags verified present, rejected
ones verified absent, untouched ones with no human label at all), under the curator's name,
and undo must put it back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from test_e2e_browser import browser, server, wait, wait_for_text  # noqa: F401 (fixtures)
from tests_support import Plugin

from curator.api import Tagger, TagResult
from curator.catalogue.ingest import ingest
from curator.curation.review import ReviewFilter, review_page
from curator.project import Project, init_project, open_project
from curator.tagging.runs import run_tagger
from curator.testing import registry_of

pytestmark = pytest.mark.slow  # about 40 s: a real server, a real browser

# The card numbers tags by score: 1 hi-hat, 2 808, 3 snare.
PROPOSED = {"hi-hat": 0.9, "808": 0.8, "snare": 0.7}


class ThreeTags(Tagger):
    """Proposes the same three instruments on every segment."""

    name, version, facets, sample_rate = "three", "1", ("instruments",), 8000

    def tag_order(self):
        return [("instruments", tag) for tag in PROPOSED]

    def tag(self, batch):
        return [TagResult({"instruments": dict(PROPOSED)}) for _ in batch]


@pytest.fixture
def tagged_project(tmp_path: Path, loud_and_quiet: Path) -> Project:
    """12 segments, each with three proposed instruments and no human label."""
    project = init_project(tmp_path / "project")
    ingest(project, [loud_and_quiet])
    run_tagger(project, "three", registry=registry_of(Plugin(ThreeTags())))
    return project


CARD = """
const frame = document.querySelector('iframe[title*="focus_player"]');
const body = frame && frame.contentDocument && frame.contentDocument.body;
if (!body || !body.dataset.card) return null;
const tags = [...body.querySelectorAll('#tags .tag')].map(b => [b.dataset.tag, b.dataset.state]);
return {card: body.dataset.card, segment: body.dataset.segment, ready: body.dataset.ready,
        excluded: !body.querySelector('#excluded').hidden, tags: tags,
        message: body.querySelector('#message').textContent};
"""


def card(driver: WebDriver) -> dict[str, Any] | None:
    return driver.execute_script(CARD)


def press(driver: WebDriver, keys: str) -> None:
    """Type `keys` on the page, as a curator would with the card in view."""
    driver.find_element(By.TAG_NAME, "body").send_keys(keys)


def move(driver: WebDriver, key: str) -> dict[str, Any]:
    """Press `key` (save, next, previous, undo) and wait for the card it brings up, ready."""
    before = card(driver)["card"]
    press(driver, key)

    def moved(current: WebDriver) -> dict[str, Any] | None:
        now = card(current)
        return now if now and now["card"] != before and now["ready"] == "1" else None

    return wait(driver, moved, f"the card after pressing {key!r}")


def states(driver: WebDriver, keys: str, expected: dict[str, str]) -> None:
    """Press `keys` (toggles, accept/reject all) and wait for the tags to read `expected`."""
    press(driver, keys)
    wait(
        driver,
        lambda d: dict(card(d)["tags"]) == {f"instruments/{t}": s for t, s in expected.items()},
        f"the tags to read {expected} after {keys!r}",
    )


def human_labels(project: Project) -> set[tuple[str, str, bool, str]]:
    catalog = open_project(project.root).catalog
    return {
        (x["segment_id"], x["tag"], x["present"], x["actor"])
        for x in catalog.labels()
        if x["source_kind"] == "human"
    }


def test_keyboard_review_of_five_segments_records_exactly_the_decisions_and_undo_restores(
    tagged_project: Project,
    server: str,  # noqa: F811
    browser: WebDriver,  # noqa: F811
) -> None:
    first = [r["id"] for r in review_page(tagged_project, ReviewFilter(), 1, 6).segments]
    browser.get(f"{server}/Review")
    wait_for_text(browser, "Review")
    shown = wait(browser, lambda d: (c := card(d)) and c["ready"] == "1" and c, "the first card")
    assert shown["segment"] == first[0]
    untouched = {"hi-hat": "proposed", "808": "proposed", "snare": "proposed"}
    assert dict(shown["tags"]) == {f"instruments/{t}": s for t, s in untouched.items()}

    states(browser, "a", {"hi-hat": "accepted", "808": "accepted", "snare": "accepted"})
    assert move(browser, "s")["segment"] == first[1]
    states(browser, "1", {**untouched, "hi-hat": "rejected"})
    assert move(browser, "s")["segment"] == first[2]
    states(browser, "r2", {"hi-hat": "rejected", "808": "accepted", "snare": "rejected"})
    assert move(browser, "\ue007")["segment"] == first[3]  # Enter saves too
    states(browser, "3", {**untouched, "snare": "rejected"})
    press(browser, "x")
    wait(browser, lambda d: card(d)["excluded"], "the exclusion badge")
    assert move(browser, "s")["segment"] == first[4]
    assert move(browser, "j")["segment"] == first[5]  # j moves on without saving segment 5

    catalog = open_project(tagged_project.root).catalog
    decided = {
        (first[0], "hi-hat", True, "e2e"),
        (first[0], "808", True, "e2e"),
        (first[0], "snare", True, "e2e"),
        (first[1], "hi-hat", False, "e2e"),
        (first[2], "hi-hat", False, "e2e"),
        (first[2], "808", True, "e2e"),
        (first[2], "snare", False, "e2e"),
    }
    assert human_labels(tagged_project) == decided | {(first[3], "snare", False, "e2e")}
    excluded = {row["id"] for row in catalog.segment_rows(include_unusable=True) if row["excluded"]}
    assert excluded == {first[3]}
    assert [(b["action"], b["actor"]) for b in catalog.batches()] == [("review", "e2e")] * 4

    # u undoes the last save (segment 4: its rejection and its exclusion) and shows it again.
    back = move(browser, "u")
    assert back["segment"] == first[3] and "Undone" in back["message"]
    assert dict(back["tags"]) == {f"instruments/{t}": s for t, s in untouched.items()}
    assert human_labels(tagged_project) == decided
    catalog = open_project(tagged_project.root).catalog
    assert not [row["id"] for row in catalog.segment_rows(include_unusable=True) if row["excluded"]]
    # Three more undos put the catalogue back as the tagger left it.
    for _ in range(3):
        move(browser, "u")
    assert human_labels(tagged_project) == set()
    batches = catalog.batches()
    assert [b["action"] for b in batches].count("undo") == 4
    assert all(b["actor"] == "e2e" for b in batches)
