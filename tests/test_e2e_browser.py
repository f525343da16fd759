"""End to end: `curator app` serves the real app and headless Chromium drives it.

A curator reviews a segment on the Review page (rejects the model's "hi-hat", adds "snare")
and applies and undoes a bulk relabel; then the catalogue on disk must hold exactly those
decisions and their history. Another curator makes a selection on the Rebalance page and
rewrites one of its prompts on the Prompts page; the selection and the edited prompt must
be what training would read. Needs Debian's chromium and chromedriver (CI installs them);
Selenium Manager is never asked to download anything. A screenshot of the Review page after
the edit is left in artifacts/e2e-review.png (git-ignored) for the curious and for CI.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import curator_command
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    ElementNotInteractableException,
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait
from tests_support import HatTagger, Plugin

from curator.access.users import add_user, read_users, users_file
from curator.catalogue.ingest import ingest
from curator.curation.review import ReviewFilter, review_page
from curator.project import Project, init_project, open_project
from curator.storage.prompts import effective_prompts
from curator.storage.selections import selection, selection_items
from curator.tagging.runs import run_tagger
from curator.testing import registry_of
from curator.testing.browser import BrowserMissing, headless_chromium

pytestmark = pytest.mark.slow  # about 40 s: a real server, a real browser

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "artifacts" / "e2e-review.png"
WAIT = 60  # seconds: a page run decodes audio for every segment it shows
# Streamlit replaces elements on every rerun: a reference can go stale between find and use.
TRANSIENT = (
    StaleElementReferenceException,
    NoSuchElementException,
    ElementClickInterceptedException,
    ElementNotInteractableException,
)


DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy for 127.0.0.1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the served project and the browser --------------------------------------------------------


@pytest.fixture
def tagged_project(tmp_path: Path, loud_and_quiet: Path) -> Project:
    """12 segments; the "hats" tagger said "hi-hat" on 6 of them and "808" on the other 6."""
    project = init_project(tmp_path / "project")
    ingest(project, [loud_and_quiet])
    run_tagger(project, "hats", registry=registry_of(Plugin(HatTagger())))
    return project


@pytest.fixture
def server(tagged_project: Project, tmp_path: Path) -> Iterator[str]:
    """`curator app` on a free port of 127.0.0.1; yields its base URL, stops it afterwards."""
    with serving(tagged_project, tmp_path) as url:
        yield url


@contextmanager
def serving(project: Project, tmp_path: Path) -> Iterator[str]:
    """Run `curator app` for `project` on a free port of 127.0.0.1 while inside the block."""
    port = free_port()
    log_path = tmp_path / "server.log"
    env = {**os.environ, "CURATOR_USER": "e2e"}
    env.pop("CURATOR_PROJECT", None)  # the --project option must be what picks the project
    with log_path.open("w") as log:
        # Its own session: `curator app` runs streamlit as a child, and ending the group ends
        # both (terminating only the parent would leave streamlit serving).
        process = subprocess.Popen(
            curator_command("app", "--project", project.root, "--port", port),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, process, log_path)
        yield url
    finally:
        stop(process)
        print(f"server log: {log_path}")


def wait_for_health(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`curator app` exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            with DIRECT.open(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.read().decode().strip() == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url}/_stcore/health did not answer ok in {WAIT} s:\n{log_path.read_text()}")


def stop(process: subprocess.Popen) -> None:
    """End the server's process group (the CLI and its streamlit child), politely first."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            continue
        # The CLI has exited; give its child a moment to follow before the hard stop.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    try:
        driver = headless_chromium(tmp_path / "chromium-profile", "1400,2000")
    except BrowserMissing as missing:
        pytest.fail(
            f"{missing}; this end-to-end test drives the app in a real headless browser and "
            "must not be skipped"
        )
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


# -- driving Streamlit's widgets ---------------------------------------------------------------

PAGE_STATE = """
const app = document.querySelector('[data-testid="stApp"]');
const running = !app || app.getAttribute('data-test-script-state') !== 'notRunning';
const errors = [...document.querySelectorAll('[data-testid="stException"]')];
return {
  running: running,
  exception: errors.map(e => e.innerText).join('\\n'),
  text: document.body.innerText,
};
"""


def wait(browser: WebDriver, until: Callable[[WebDriver], Any], what: str) -> Any:
    """Wait for `until` to be truthy, retrying through elements replaced by a rerun."""
    try:
        return WebDriverWait(browser, WAIT, 0.1, ignored_exceptions=TRANSIENT).until(until)
    except TimeoutException:
        shot = SCREENSHOT.with_name("e2e-failure.png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(shot))
        pytest.fail(f"timed out after {WAIT} s waiting for {what} (screenshot: {shot})")


def wait_for_text(browser: WebDriver, text: str) -> None:
    """Wait until the page's script run has finished and the page shows `text`.

    An exception the app raised fails the test at once, with Streamlit's traceback.
    """

    def shown(driver: WebDriver) -> bool:
        state = driver.execute_script(PAGE_STATE)
        if state["exception"]:
            pytest.fail(f"the app raised while waiting for {text!r}:\n{state['exception']}")
        return text in state["text"] and not state["running"]

    wait(browser, shown, repr(text))


def idle(browser: WebDriver) -> bool:
    return not browser.execute_script(PAGE_STATE)["running"]


def widget_by_label(scope: WebElement, testid: str, label: str) -> WebElement:
    """The widget (e.g. stSelectbox, stMultiSelect) in `scope` whose label reads `label`."""
    return scope.find_element(
        By.XPATH,
        f'.//*[@data-testid="{testid}"][.//*[@data-testid="stWidgetLabel"]'
        f'[normalize-space(.)="{label}"]]',
    )


def widget_by_key(browser: WebDriver, key: str) -> WebElement:
    """The widget created with `key=...` (Streamlit marks its container st-key-<key>)."""
    return browser.find_element(By.CSS_SELECTOR, f".st-key-{key}")


def click(browser: WebDriver, element: WebElement) -> None:
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def choose(browser: WebDriver, find: Callable[[], WebElement], option: str) -> None:
    """Pick `option` in the selectbox or multiselect that `find()` returns.

    Both are react-aria comboboxes: typing filters the listbox (so long, virtualised lists
    work), then the option whose text is exactly `option` is clicked. Returns once the
    listbox is closed and, for a selectbox, the box shows `option` and the rerun is done.
    """

    def combobox() -> WebElement:
        return find().find_element(By.CSS_SELECTOR, 'input[role="combobox"]')

    def opened(driver: WebDriver) -> str | None:
        box = combobox()
        if not box.is_enabled():
            return None
        if box.get_attribute("aria-expanded") != "true":
            click(driver, box)
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(option)
        return box.get_attribute("aria-controls")

    listbox = wait(browser, opened, f"the combobox for {option!r} to open")

    def picked(driver: WebDriver) -> bool:
        item = driver.find_element(
            By.XPATH, f'//*[@id="{listbox}"]//*[@role="option"][normalize-space(.)="{option}"]'
        )
        if not item.is_displayed():
            return False
        click(driver, item)
        return True

    wait(browser, picked, f"option {option!r} to be clickable")

    def closed(driver: WebDriver) -> bool:
        widget = find()
        box = combobox()
        if box.get_attribute("aria-expanded") == "true":
            box.send_keys(Keys.ESCAPE)
            return False
        # A widget found by key is the container around the stSelectbox.
        single = widget.get_attribute("data-testid") == "stSelectbox" or bool(
            widget.find_elements(By.CSS_SELECTOR, '[data-testid="stSelectbox"]')
        )
        return not single or (box.get_attribute("value") == option and idle(driver))

    wait(browser, closed, f"{option!r} to be chosen")


def screenshot(browser: WebDriver, path: Path) -> None:
    """The viewport, scrolled to the top of the page, as a PNG at `path`."""
    browser.execute_script(
        "for (const e of [document.querySelector('[data-testid=\"stMain\"]'),"
        " document.querySelector('[data-testid=\"stAppViewContainer\"]')]) e?.scrollTo(0, 0);"
        " window.scrollTo(0, 0);"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(path))


def choose_view(browser: WebDriver, view: str) -> None:
    """Pick the Review page's view in the sidebar: "Focus" (the default) or "List"."""
    press(
        browser,
        lambda: browser.find_element(
            By.XPATH,
            '//*[@data-testid="stSidebar"]//*[@data-testid="stRadio"]'
            f'//label[normalize-space(.)="{view}"]',
        ),
        f"the {view} view",
    )


def chips(multiselect: WebElement) -> list[str]:
    """The options a multiselect shows as chosen."""
    return [
        c.get_attribute("aria-label") or ""
        for c in multiselect.find_elements(By.CSS_SELECTOR, "[data-tag]")
    ]


def press(browser: WebDriver, find: Callable[[], WebElement], what: str) -> None:
    """Click the button `find()` returns, once it is there and enabled."""

    def pressed(driver: WebDriver) -> bool:
        button = find()
        if not button.is_enabled():
            return False
        click(driver, button)
        return True

    wait(browser, pressed, what)


# -- the test ----------------------------------------------------------------------------------


def review_an_edit(browser: WebDriver, url: str) -> str:
    """On the Review page: reject "hi-hat" and add "snare" on the first hi-hat segment."""
    browser.get(f"{url}/Review")
    choose_view(browser, "List")
    wait_for_text(browser, "12 segment(s) match.")

    def sidebar_box(label: str) -> Callable[[], WebElement]:
        sidebar = '[data-testid="stSidebar"]'
        return lambda: widget_by_label(
            browser.find_element(By.CSS_SELECTOR, sidebar), "stSelectbox", label
        )

    choose(browser, sidebar_box("Facet"), "instruments")
    choose(browser, sidebar_box("Tag"), "hi-hat")  # waits for the Tag box to be enabled
    wait_for_text(browser, "6 segment(s) match.")

    def first_form() -> WebElement:
        return browser.find_element(By.CSS_SELECTOR, '[data-testid="stForm"]')

    def first_tags() -> WebElement:
        return widget_by_label(first_form(), "stMultiSelect", "instruments")

    def segment_of_first_form(driver: WebDriver) -> str | None:
        keyed = first_tags().find_element(By.XPATH, "./ancestor::*[contains(@class,'st-key-')]")
        found = re.search(r"st-key-(\S+)-instruments", keyed.get_attribute("class") or "")
        return found.group(1) if found and "hi-hat" in chips(first_tags()) else None

    segment = wait(browser, segment_of_first_form, "the first form, with a hi-hat chip")

    def removed(driver: WebDriver) -> bool:
        tags = first_tags()
        if "hi-hat" in chips(tags):
            click(driver, tags.find_element(By.CSS_SELECTOR, 'button[aria-label="Remove hi-hat"]'))
        return "hi-hat" not in chips(first_tags())

    wait(browser, removed, "the hi-hat chip to go")
    choose(browser, first_tags, "snare")
    wait(browser, lambda d: "snare" in chips(first_tags()), "the snare chip")
    assert "snare" in chips(first_tags()) and "hi-hat" not in chips(first_tags())
    press(
        browser,
        lambda: first_form().find_element(
            By.CSS_SELECTOR, '[data-testid="stFormSubmitButton"] button'
        ),
        "the first form's Save button",
    )
    wait_for_text(browser, "5 segment(s) match.")  # the rejected segment left the hi-hat queue
    assert segment not in browser.find_element(By.TAG_NAME, "body").text
    screenshot(browser, SCREENSHOT)
    return segment


def bulk_add_and_undo(browser: WebDriver, url: str) -> str:
    """On the Bulk relabel page: add "hi-hat rolls" to the 6 "808" segments, then undo it."""
    browser.get(f"{url}/Bulk_relabel")
    wait_for_text(browser, "12 segment(s) match the filter.")

    def keyed(key: str) -> Callable[[], WebElement]:
        return lambda: widget_by_key(browser, key)

    choose(browser, keyed("bulk-filter-facet"), "instruments")
    choose(browser, keyed("bulk-filter-tag"), "808")
    wait_for_text(browser, "6 segment(s) match the filter.")
    choose(browser, keyed("bulk-action"), "add")
    choose(browser, keyed("bulk-facet"), "instruments")
    choose(browser, keyed("bulk-tag"), "hi-hat rolls")
    press(
        browser,
        lambda: widget_by_key(browser, "bulk-apply").find_element(By.TAG_NAME, "button"),
        "Apply",
    )
    wait_for_text(browser, "add instruments/hi-hat rolls: 6 segment(s) changed")

    def undo_batch(driver: WebDriver) -> str | None:
        button = widget_by_key(driver, "bulk-undo").find_element(By.TAG_NAME, "button")
        found = re.fullmatch(r"Undo batch (\w+)", button.text.strip())
        if not found:
            return None
        click(driver, button)
        return found.group(1)

    batch = wait(browser, undo_batch, "the Undo batch button")
    wait_for_text(browser, "Undone: 6 label(s) restored.")
    return batch


def type_into(browser: WebDriver, find: Callable[[], WebElement], text: str) -> None:
    """Replace the text of the input or text area `find()` returns, and commit it."""

    def typed(driver: WebDriver) -> bool:
        box = find()
        click(driver, box)
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(text)
        return box.get_attribute("value") == text

    wait(browser, typed, f"{text!r} to be typed")


def rebalance_a_selection(browser: WebDriver, url: str) -> None:
    """On the Rebalance page: a 16-copy selection named "e2e" over the instruments."""
    browser.get(f"{url}/Rebalance")
    wait_for_text(browser, "Run")

    def field(key: str, tag: str) -> Callable[[], WebElement]:
        return lambda: widget_by_key(browser, key).find_element(By.TAG_NAME, tag)

    type_into(browser, field("rb-name", "input"), "e2e")
    type_into(browser, field("rb-budget", "input"), "16")
    field("rb-budget", "input")().send_keys(Keys.TAB)  # commit the text before clicking
    wait(browser, idle, "the rerun after typing")
    press(browser, field("rb-run", "button"), "Run")
    wait_for_text(browser, "Saved selection 'e2e'")


def edit_a_prompt(browser: WebDriver, url: str, text: str) -> str:
    """On the Prompts page, within selection "e2e": write prompts, then edit the first one."""
    browser.get(f"{url}/Prompts")
    wait_for_text(browser, "a curator's edit wins")
    choose(browser, lambda: widget_by_key(browser, "prompts-selection"), "e2e")
    press(
        browser,
        lambda: browser.find_element(
            By.XPATH, '//*[@data-testid="stExpander"]//summary[contains(., "Write prompts")]'
        ),
        "the Write prompts expander",
    )
    press(
        browser,
        lambda: widget_by_key(browser, "write-prompts").find_element(By.TAG_NAME, "button"),
        "Write prompts",
    )
    wait_for_text(browser, "written, 0 from the cache")

    def first_prompt_box() -> WebElement:
        return browser.find_element(By.CSS_SELECTOR, '[data-testid="stTextArea"] textarea')

    def first_segment(driver: WebDriver) -> str | None:
        keyed = first_prompt_box().find_element(
            By.XPATH, "./ancestor::*[contains(@class,'st-key-prompt-')]"
        )
        found = re.search(r"st-key-prompt-(\S+)-[0-9a-f]{8}", keyed.get_attribute("class") or "")
        return found.group(1) if found else None

    segment = wait(browser, first_segment, "the first prompt box")
    type_into(browser, first_prompt_box, text)
    press(
        browser,
        lambda: widget_by_key(browser, f"save-{segment}").find_element(By.TAG_NAME, "button"),
        "Save as curator's",
    )
    wait_for_text(browser, "In use: a curator's edit")
    return segment


def test_rebalance_and_prompt_edit_in_a_real_browser(
    tagged_project: Project, server: str, browser: WebDriver
) -> None:
    rebalance_a_selection(browser, server)
    edited = "A crisp hi-hat loop over a deep 808, edited by hand."
    segment = edit_a_prompt(browser, server, edited)

    project = open_project(tagged_project.root)
    items = selection_items(project.catalog, "e2e")
    assert sum(i.repeats for i in items) == 16, items
    assert selection(project.catalog, "e2e")["method"] == "budgeted"
    assert segment in {i.segment_id for i in items}
    prompts = effective_prompts(project.catalog, [i.segment_id for i in items])
    assert prompts[segment] == edited
    others = [text for sid, text in prompts.items() if sid != segment]
    assert len(others) == len(items) - 1 and edited not in others


def test_review_and_bulk_relabel_in_a_real_browser(
    tagged_project: Project, server: str, browser: WebDriver
) -> None:
    started = time.monotonic()
    segment = review_an_edit(browser, server)
    batch = bulk_add_and_undo(browser, server)
    print(f"browser steps took {time.monotonic() - started:.1f} s; screenshot: {SCREENSHOT}")

    # What the server wrote, read from disk as a new process would.
    project = open_project(tagged_project.root)
    catalog = project.catalog
    seen = f"(Review page after the edit: {SCREENSHOT})"
    human = {
        (x["segment_id"], x["facet"], x["tag"], x["present"], x["actor"])
        for x in catalog.labels()
        if x["source_kind"] == "human"
    }
    assert human == {
        (segment, "instruments", "hi-hat", False, "e2e"),
        (segment, "instruments", "snare", True, "e2e"),
    }, seen
    assert not [x for x in catalog.labels() if x["tag"] == "hi-hat rolls"], seen
    assert review_page(project, ReviewFilter("instruments", "hi-hat")).total == 5, seen
    rolls = ReviewFilter("instruments", "hi-hat rolls")
    assert review_page(project, rolls).total == 0, seen

    eights = {
        row["id"] for row in review_page(project, ReviewFilter("instruments", "808")).segments
    }
    assert len(eights) == 6, eights
    history = catalog.label_history()
    batches = catalog.batches()
    assert [(b["action"], b["actor"]) for b in batches] == [
        ("undo", "e2e"),
        ("add", "e2e"),
        ("review", "e2e"),
    ], (batches, seen)
    undo_batch, add_batch, review_batch = (b["batch_id"] for b in batches)
    assert add_batch == batch, "the page offered to undo another batch than the one it applied"
    assert batches[1]["undone_by"] == undo_batch, batches

    def rows(batch_id: str) -> list[tuple]:
        return sorted(
            (
                (
                    r["action"],
                    r["segment_id"],
                    r["facet"],
                    r["tag"],
                    r["new_present"],
                    r["new_value"],
                )
                for r in history
                if r["batch_id"] == batch_id
            ),
            key=repr,
        )

    assert rows(review_batch) == [
        ("review", segment, "instruments", "hi-hat", False, None),
        ("review", segment, "instruments", "snare", True, None),
    ], f"the review save must write exactly 2 history rows; it wrote {rows(review_batch)} {seen}"
    assert rows(add_batch) == sorted(
        (("add", s, "instruments", "hi-hat rolls", True, None) for s in eights), key=repr
    )
    assert rows(undo_batch) == sorted(
        (("undo", s, "instruments", "hi-hat rolls", None, None) for s in eights), key=repr
    )
    assert Counter(r["action"] for r in history) == {"review": 2, "add": 6, "undo": 6}, history


# -- signed in -----------------------------------------------------------------------------------


def sign_in(browser: WebDriver, url: str, name: str, password: str, cookie: str) -> None:
    """Sign in on the Review page of an app whose project has a user list, and wait for the
    sign-in cookie (named `cookie`), which a component sets after the page says so."""
    browser.get(f"{url}/Review")
    wait_for_text(browser, "Sign in to Curator")

    def box(label: str) -> Callable[[], WebElement]:
        return lambda: widget_by_label(browser, "stTextInput", label).find_element(
            By.TAG_NAME, "input"
        )

    type_into(browser, box("Username"), name)
    type_into(browser, box("Password"), password)
    press(
        browser,
        lambda: browser.find_element(By.CSS_SELECTOR, '[data-testid="stFormSubmitButton"] button'),
        "Sign in",
    )
    wait_for_text(browser, f"Signed in as {name}")
    wait(browser, lambda b: b.get_cookie(cookie), "the sign-in cookie")


def test_a_signed_in_curator_edit_is_recorded_under_that_name(
    tagged_project: Project, tmp_path: Path, browser: WebDriver
) -> None:
    add_user(users_file(tagged_project), "ana", "correct horse")
    with serving(tagged_project, tmp_path) as url:
        cookie = read_users(users_file(tagged_project))["cookie"]["name"]
        sign_in(browser, url, "ana", "correct horse", cookie)
        # A new page load is a new session: the sign-in cookie must carry it.
        segment = review_an_edit(browser, url)
    catalog = open_project(tagged_project.root).catalog
    human = {
        (x["segment_id"], x["tag"], x["present"], x["actor"])
        for x in catalog.labels()
        if x["source_kind"] == "human"
    }
    assert human == {(segment, "hi-hat", False, "ana"), (segment, "snare", True, "ana")}
    assert [(b["action"], b["actor"]) for b in catalog.batches()] == [("review", "ana")]
