"""Review in a real browser: focus mode by keyboard against today's list view, on 40,000 segments.

Run: .venv/bin/python bench/review_browser_bench.py [--segments 40000] [--reviews 50] [--listen 1]

Builds a catalogue whose first 200 segments (in queue order) have real audio files behind them
(100 stereo 44.1 kHz WAV tracks, ingested) and whose other rows are inserted directly, each
segment with 4 model tags; serves it with `curator app`; and drives headless Chromium through
Selenium. A scripted curator reviews `--reviews` segments in focus mode by keyboard alone
(toggle tag 1, save-and-next), listening `--listen` seconds to each, then moves on 20 times
without saving (j). Times are taken in the page: from the key press to the next segment ready
(its audio playable, its tags shown). The list view's save (tick "Exclude", Save: the page
reruns and redraws every card) is measured in the same run. Checks that every save landed in
the catalogue; never fails on time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from synthetic import model_label_columns

from curator.catalogue.ingest import ingest
from curator.project import Project, init_project
from curator.storage import RunRecord, SegmentRecord, TrackRecord
from curator.testing.browser import headless_chromium

RATE = 44100
TRACK_SECONDS = 50.0
TAGS = [("instruments", t) for t in ("808", "hi-hat", "snare", "piano", "synth lead", "strings")]


# -- the catalogue -------------------------------------------------------------------------------


def write_tracks(folder: Path, count: int, rng: np.random.Generator) -> None:
    """`count` distinct stereo beats: a sine bass, noise hats on eighths, a kick on the beat."""
    folder.mkdir(parents=True)
    t = np.arange(int(TRACK_SECONDS * RATE)) / RATE
    for number in range(count):
        bpm = 70 + number % 60
        beat = 60 / bpm
        bass = 0.3 * np.sin(2 * np.pi * (40 + number % 30) * t)
        hats = rng.standard_normal(t.size) * np.exp(-((t % (beat / 2)) * 60)) * 0.2
        kick = np.sin(2 * np.pi * 55 * t) * np.exp(-((t % beat) * 18)) * 0.5
        left, right = bass + kick + hats, bass + kick + np.roll(hats, 97)
        audio = np.stack([left, right], axis=1).astype(np.float32)
        sf.write(folder / f"beat_{number:03d}.wav", audio, RATE, subtype="PCM_16")


def add_rows_without_audio(project: Project, count: int) -> None:
    """`count` more segments, two per track, whose ids sort after every real one ("z...")."""
    tracks = [
        TrackRecord(
            f"z{n:015x}",
            f"{n:032x}",
            f"/synthetic/{n}.wav",
            90.0,
            RATE,
            2,
            "WAV",
            "PCM_16",
            "ingested",
            None,
        )
        for n in range(count // 2)
    ]
    rows = [
        SegmentRecord(f"{t.id}-{k}", t.id, k, 5.0 + 45.0 * k, 30.0, -18.0, -1.0, False)
        for t in tracks
        for k in range(2)
    ]
    project.catalog.save_ingest_batch([], tracks, rows)


def tag_everything(project: Project, rng: np.random.Generator) -> None:
    """One tag run: 4 of the 6 instruments proposed on every segment, with scores."""
    ids = np.array([r["id"] for r in project.catalog.segment_rows()], dtype=object)
    run_id = project.catalog.start_run(
        RunRecord("tag", "bench", "1", {}, "bench", None, TAGS, False, "bench")
    )
    scores = (0.3 + 0.6 * rng.random((len(ids), len(TAGS)))).astype(np.float32)
    chosen = np.argsort(-scores, axis=1)[:, :4]
    labels = model_label_columns(
        np.repeat(ids, 4),
        "instruments",
        [TAGS[c][1] for c in chosen.ravel()],
        "bench@1",
        run_id,
        np.take_along_axis(scores, chosen, axis=1).ravel(),
    )
    project.catalog.merge_columns(
        run_id,
        "bench",
        {
            "scores": {"segment_id": ids, "run_id": np.full(len(ids), run_id), "scores": scores},
            "labels": labels,
        },
        list(ids),
    )


def build(scratch: Path, segments: int) -> Project:
    rng = np.random.default_rng(0)
    write_tracks(scratch / "beats", 100, rng)
    project = init_project(scratch / "project")
    ingest(project, [scratch / "beats"])
    real = len(project.catalog.segment_rows())
    add_rows_without_audio(project, segments - real)
    tag_everything(project, rng)
    return project


# -- the app and the browser ---------------------------------------------------------------------


def serve(project: Project, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "CURATOR_USER": "bench"}
    command = [str(Path(sys.executable).with_name("curator")), "app", "--project"]
    process = subprocess.Popen(
        [*command, str(project.root), "--port", str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # the CLI and its streamlit child end together
    )
    url = f"http://127.0.0.1:{port}"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + 180  # a loaded 2-core machine takes a while
    while time.monotonic() < deadline:
        try:
            with direct.open(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.read() == b"ok":
                    return process, url
        except OSError:
            time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    raise SystemExit(f"`curator app` did not start:\n{log.read_text()[-3000:]}")


def chromium(profile: Path) -> WebDriver:
    # Autoplay as for a curator who has clicked once.
    return headless_chromium(profile, "1400,1000", "--autoplay-policy=no-user-gesture-required")


def until(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.01)
    raise SystemExit(f"timed out waiting for {what}")


CARD = """
const frame = document.querySelector('iframe[title*="focus_player"]');
const body = frame && frame.contentDocument && frame.contentDocument.body;
if (!body || !body.dataset.card) return null;
const first = body.querySelector('#tags .tag');
return {card: body.dataset.card, ready: body.dataset.ready === "1",
        segment: body.dataset.segment, keyAt: parseFloat(body.dataset.keyAt),
        readyMs: parseFloat(body.dataset.readyMs), shownMs: parseFloat(body.dataset.shownMs),
        first: first ? first.dataset.state : null};
"""


def focus_moves(browser: WebDriver, reviews: int, nexts: int, listen: float) -> dict[str, list]:
    """Key press to next card ready, for save-and-next (after toggling tag 1) and for j."""
    card = lambda: browser.execute_script(CARD)  # noqa: E731
    body = browser.find_element(By.TAG_NAME, "body")
    until("the first card", lambda: (c := card()) and c["ready"])
    times: dict[str, list] = {
        "save": [],
        "save shown": [],
        "saved": [],
        "next": [],
        "next shown": [],
    }
    for step in range(reviews + nexts):
        before = card()
        time.sleep(listen)  # the curator listens; the next segment is prepared meanwhile
        key = "s" if step < reviews else "j"
        if key == "s":
            body.send_keys("1")
            until("tag 1 toggled", lambda b=before: card()["first"] != b["first"])
        body.send_keys(key)
        after = until("the next card", lambda b=before: next_card(card(), b))
        name = "save" if key == "s" else "next"
        times[name].append(after["readyMs"])
        times[f"{name} shown"].append(after["shownMs"])
        if key == "s":  # the save is written once the next card is on its way: confirmed below it
            confirmed = until(
                "the save", lambda b=before: browser.execute_script(SAVED, b["segment"])
            )
            times["saved"].append(confirmed - after["keyAt"])
    return times


def next_card(now: dict | None, before: dict) -> dict | None:
    return now if now and now["card"] != before["card"] and now["ready"] else None


SAVED = """
const shown = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
  .some(e => e.innerText.includes('Saved ' + arguments[0]));
return shown ? performance.timeOrigin + performance.now() : null;
"""

STATE = """
const app = document.querySelector('[data-testid="stApp"]');
return app ? app.getAttribute('data-test-script-state') : null;
"""

CLICK_AND_WATCH = """
const app = document.querySelector('[data-testid="stApp"]');
window.__runs = [];
new MutationObserver(() => window.__runs.push(
  [app.getAttribute('data-test-script-state'), performance.now()])
).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
window.__clickedAt = performance.now();
arguments[0].click();
"""


def list_saves(browser: WebDriver, url: str, count: int) -> list[float]:
    """Click to page redrawn, for a save in the list view (10 per page, every card redrawn)."""
    browser.get(f"{url}/Review")
    radio = (
        '//*[@data-testid="stSidebar"]//*[@data-testid="stRadio"]//label[normalize-space(.)="List"]'
    )
    until("the View choice", lambda: browser.find_elements(By.XPATH, radio))[0].click()
    until("the list", lambda: "segment(s) match" in browser.find_element(By.TAG_NAME, "body").text)
    until("the list drawn", lambda: browser.execute_script(STATE) == "notRunning", 120)
    times = []
    for _ in range(count):
        form = browser.find_element(By.CSS_SELECTOR, '[data-testid="stForm"]')
        box = form.find_element(
            By.XPATH, './/*[@data-testid="stCheckbox"][.//p[text()="Exclude from training"]]//label'
        )
        box.click()
        save = form.find_element(By.CSS_SELECTOR, '[data-testid="stFormSubmitButton"] button')
        browser.execute_script(CLICK_AND_WATCH, save)

        def done() -> float | None:
            runs = browser.execute_script("return window.__runs")
            if not runs or runs[-1][0] != "notRunning":
                return None
            if browser.execute_script("return performance.now()") - runs[-1][1] < 300:
                return None  # st.rerun() may start another run right after the first
            return runs[-1][1] - browser.execute_script("return window.__clickedAt")

        times.append(until("the list to redraw", done, 120))
    return times


# -- report --------------------------------------------------------------------------------------


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def report(times: dict[str, list], listed: list[float] | None) -> None:
    rows = [
        ("focus: save-and-next, key to next segment ready", times["save"], 500),
        ("focus: save-and-next, key to next card shown", times["save shown"], None),
        ("focus: save-and-next, key to save confirmed", times["saved"], None),
        ("focus: next (j), key to next segment ready", times["next"], 300),
        ("focus: next (j), key to next card shown", times["next shown"], None),
    ]
    if listed:
        rows.append(("list view (10 per page): Save click to page redrawn", listed, None))
    print(f"\n{'':56s} {'n':>3s} {'median':>9s} {'p95':>9s}")
    for name, values, target in rows:
        median = statistics.median(values)
        verdict = "" if target is None else ("PASS" if median <= target else "FAIL")
        goal = "" if target is None else f"(target median <= {target} ms) {verdict}"
        print(f"{name:56s} {len(values):3d} {median:7.0f} ms {p95(values):6.0f} ms  {goal}")
    if not listed:
        return
    ratio = statistics.median(listed) / statistics.median(times["save"])
    print(f"\nfocus save-and-next vs list-view save (medians): {ratio:.1f}x faster")


def check_saved(project: Project, reviews: int) -> None:
    human = [x for x in project.catalog.labels() if x["source_kind"] == "human"]
    reviewed = [x for x in human if x["actor"] == "bench" and x["present"] is False]
    segments = {x["segment_id"] for x in reviewed}
    ok = len(segments) == reviews == len(reviewed)
    print(f"{'PASS' if ok else 'FAIL'}  {reviews} saves recorded: {len(reviewed)} rejection(s)")
    if not ok:
        raise SystemExit(1)


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # progress shows when piped to a file
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=40000)
    parser.add_argument("--reviews", type=int, default=50)
    parser.add_argument("--listen", type=float, default=1.0, help="seconds on each segment")
    parser.add_argument("--list-saves", type=int, default=5)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="curator-review-browser-bench-"))
    try:
        started = time.perf_counter()
        project = build(scratch, args.segments)
        print(
            f"catalogue: {args.segments} segments (200 with audio), 4 model tags each, built in "
            f"{time.perf_counter() - started:.1f} s"
        )
        process, url = serve(project, scratch / "server.log")
        browser = chromium(scratch / "profile")
        try:
            browser.get(f"{url}/Review")
            times = focus_moves(browser, args.reviews, 20, args.listen)
            report(times, None)  # what is measured so far, in case the list view fails
            listed = list_saves(browser, url, args.list_saves)
        finally:
            browser.quit()
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        report(times, listed)
        check_saved(project, args.reviews)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
