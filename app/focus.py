"""Focus mode of the Review page: one segment at a time, keyboard first, only its card redrawn."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import threading
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import streamlit as st
import streamlit.components.v1 as components
from PIL import Image
from streamlit import runtime

from curator.app.duplicates import duplicates_caption
from curator.app.session import as_text, page_curator
from curator.catalogue.audio import decode_window, spectrogram_image
from curator.curation.focus import (
    FocusQueue,
    decision_labels,
    proposed_tags,
    row_after_save,
)
from curator.curation.review import ReviewFilter, save_segment, undo
from curator.errors import AudioError, CuratorError
from curator.music import VALUE_FACETS
from curator.project import Project

PLAYER = components.declare_component(
    "focus_player", path=str(Path(__file__).with_name("focus_player"))
)
STATE = "focus-state"  # session key: the curator's FocusState
PLAYER_KEY = "focus-player"  # session key: the card's last message (an action)
PREPARE_AHEAD = 2  # segments whose audio is decoded while the focused one plays
WAVE_COLUMNS = 1200
PALETTE_AT = [0.0, 0.25, 0.5, 0.75, 1.0]
PALETTE = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]])


@dataclass(frozen=True)
class Listening:
    """A segment's audio as the card plays and draws it: a WAV at the source's rate in
    stereo, the waveform's peaks per channel (base64 of int8 low/high pairs: a few kB for
    the browser to draw), and the spectrogram as a PNG."""

    wav: bytes
    rate: int
    channels: int
    duration: float
    peaks: list[str]
    spectrogram: bytes


@dataclass(frozen=True)
class PendingSave:
    """A save the curator asked for, written once the next card is on its way to the browser
    (the catalogue's transaction then costs the curator no waiting)."""

    row: dict[str, Any]  # the segment as it was before the save
    cursor: int
    changes: list  # HumanLabel (curator.storage, which app modules never import)
    excluded: bool | None
    actor: str


@dataclass
class FocusState:
    """What focus mode remembers between reruns: the queue, the saves it can undo, and the
    line to show after the last action."""

    queue: FocusQueue
    saves: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    pending: PendingSave | None = None
    message: str = ""
    message_kind: str = ""
    version: int = 0  # bumped on every save, move and undo: the card starts afresh


# -- audio --------------------------------------------------------------------------------------


# cache_resource, not cache_data: the copy is never changed, so each hit can return it as it
# is instead of unpickling 5 MB (and a reloaded module's new Listening class cannot break it).
@st.cache_resource(max_entries=32, show_spinner=False)
def listening_copy(source: str, modified_ns: int, start: float, duration: float) -> Listening:
    """Decode one segment for listening (cached per file version, offset and duration)."""
    audio = decode_window(Path(source), start, duration, None, 2)
    rate = sf.info(source).samplerate
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    return Listening(
        buffer.getvalue(), rate, 2, len(audio) / rate, peaks(audio), spectrogram_png(audio, rate)
    )


def peaks(audio: np.ndarray, columns: int = WAVE_COLUMNS) -> list[str]:
    """Per channel, the lowest and highest sample of each column as -127..127, in base64."""
    if not len(audio):
        return []
    edges = np.linspace(0, len(audio), min(columns, len(audio)) + 1).astype(int)[:-1]
    low = np.minimum.reduceat(audio, edges, axis=0)
    high = np.maximum.reduceat(audio, edges, axis=0)
    pairs = np.stack([low, high], axis=1)  # columns, (low, high), channels
    scaled = np.clip(np.round(pairs * 127), -127, 127).astype(np.int8)
    return [base64.b64encode(scaled[:, :, c].tobytes()).decode() for c in range(audio.shape[1])]


def spectrogram_png(audio: np.ndarray, rate: int) -> bytes:
    grey = spectrogram_image(audio, rate, bands=96, width=600)
    # An inferno-like palette, stretched so that quiet bands stay dark and hats and 808s
    # stand out (the image spans 80 dB, most of which music fills).
    level = (grey.astype(np.float32) / 255) ** 1.8
    rgb = np.stack([np.interp(level, PALETTE_AT, channel) for channel in PALETTE.T], axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def listening_for(row: dict[str, Any]) -> Listening:
    source = str(row["source"])
    try:
        modified = os.stat(source).st_mtime_ns
    except OSError as exc:
        raise AudioError(Path(source), f"cannot be read: {exc.strerror or exc}") from exc
    return listening_copy(source, modified, float(row["start"]), float(row["duration"]))


_PREPARED: set[str] = set()  # segments whose audio a background thread has decoded
_PREPARING = threading.Lock()


def prepare_ahead(rows: list[dict[str, Any]]) -> None:
    """Decode the next segments' audio in the background, so moving on finds it cached."""
    waiting = [row for row in rows if row["id"] not in _PREPARED]
    if waiting:
        threading.Thread(target=_prepare, args=(waiting,), daemon=True).start()


def _prepare(rows: list[dict[str, Any]]) -> None:
    with _PREPARING:  # one at a time: two cores serve the app and the curator's browser
        for row in rows:
            with contextlib.suppress(AudioError):  # the card says why when it gets there
                listening_for(row)
            _PREPARED.add(row["id"])


def media_url(data: bytes, kind: str, where: str) -> str:
    """A URL the browser fetches `data` from, kept while this session shows it at `where`
    (the media files of st.audio and st.image: served by Streamlit, dropped once unused)."""
    if not runtime.exists():  # bare mode and some tests: nothing is served
        return ""
    return runtime.get_instance().media_file_mgr.add(data, kind, where)


# -- the card -----------------------------------------------------------------------------------


def focus_view(project: Project, where: ReviewFilter, start: int = 0) -> None:
    """Focus mode for the queue `where` selects (a new filter starts a new queue), from its
    0-based position `start` (a link to a segment opens the queue there)."""
    state = st.session_state.get(STATE)
    if not isinstance(state, FocusState) or state.queue.where != where:
        st.session_state[STATE] = FocusState(FocusQueue(where, read_to=start))
    focus_card(project)


def focused_segment() -> str | None:
    """The id of the segment focus mode shows (for a link to it), or None."""
    state = st.session_state.get(STATE)
    if not isinstance(state, FocusState) or state.queue.cursor >= len(state.queue.rows):
        return None
    return str(state.queue.rows[state.queue.cursor]["id"])


@st.fragment
def focus_card(project: Project) -> None:
    """The focused segment: a save or a move reruns this, never the page around it."""
    state: FocusState = st.session_state[STATE]
    try:
        row = state.queue.current(project)
    except CuratorError as exc:  # e.g. no learned tagger trained yet
        st.error(as_text(exc))
        return
    if row is None:
        show_end(state)
        return
    PLAYER(
        **card_args(state, row),
        key=PLAYER_KEY,
        default=None,
        on_change=partial(on_action, project),
    )
    status = st.empty()
    show_details(row)
    duplicates_caption(project, row)
    if state.pending is not None:
        finish_save(project, state, status)
    # After the card is drawn: what the next moves need is read and decoded while it plays.
    with contextlib.suppress(CuratorError):  # the move that needs it will say why
        state.queue.read_ahead(project, PREPARE_AHEAD + 1)
    prepare_ahead(state.queue.upcoming(PREPARE_AHEAD))


def card_args(state: FocusState, row: dict[str, Any]) -> dict[str, Any]:
    queue = state.queue
    end = row["start"] + row["duration"]
    return {
        "card": f"{row['id']}#{state.version}",
        "segment": {
            "id": row["id"],
            "file": Path(row["source"]).name,
            "start": row["start"],
            "end": end,
            "position": queue.position,
            "total": queue.total,
            "excluded": bool(row["excluded"]),
        },
        "audio": audio_args(row, queue.upcoming(1)),
        "tags": [
            {
                "facet": t.facet,
                "tag": t.tag,
                "score": t.score,
                "proposed": t.proposed,
                "decided": t.decided,
            }
            for t in proposed_tags(row)
        ],
        "message": state.message,
        "message_kind": state.message_kind,
        "can_undo": bool(state.saves or state.pending),
        "can_go_back": queue.cursor > 0,
    }


def audio_args(row: dict[str, Any], upcoming: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        audio = listening_for(row)
    except AudioError as exc:
        return {"url": "", "error": exc.reason, "duration": row["duration"]}
    return {
        "url": media_url(audio.wav, "audio/wav", "focus-audio"),
        "spectrogram": media_url(audio.spectrogram, "image/png", "focus-spectrogram"),
        **next_media(upcoming),
        "rate": audio.rate,
        "channels": audio.channels,
        "duration": audio.duration,
        "peaks": audio.peaks,
        "error": "",
    }


def next_media(upcoming: list[dict[str, Any]]) -> dict[str, str]:
    """The next segment's audio and picture, once decoded: the browser loads them while the
    focused one plays."""
    if not upcoming or upcoming[0]["id"] not in _PREPARED:
        return {}
    try:
        audio = listening_for(upcoming[0])
    except AudioError:
        return {}
    return {
        "next_url": media_url(audio.wav, "audio/wav", "focus-next-audio"),
        "next_spectrogram": media_url(audio.spectrogram, "image/png", "focus-next-spectrogram"),
    }


def show_details(row: dict[str, Any]) -> None:
    """What the card leaves out: why the segment is in a ranked queue, tempo/key, prompt."""
    for item in row.get("suspects", []):
        label = "present" if item["present"] else "absent"
        st.caption(
            f"May be wrong: {as_text(item['facet'])}/{as_text(item['tag'])} ({label}), "
            f"score {item['score']:.2f}: {as_text(item['reason'])}"
        )
    values = [
        f"{m['name']} {m['text'] or round(m['value'], 1)} ({m['confidence']:.2f})"
        for m in row["measurements"]
        if m["name"] in VALUE_FACETS
    ]
    if values:
        st.caption(as_text(" · ".join(values)))
    if row.get("prompt"):
        st.caption(f"Prompt: {as_text(row['prompt'])}")
    if row.get("note"):
        st.caption(f"Note: {as_text(row['note'])}")


def show_end(state: FocusState) -> None:
    if state.message:
        st.success(as_text(state.message))
    st.info("No more segments in this queue.")
    if state.queue.rows and st.button("Back to the last segment", key="focus-back"):
        state.queue.move(-1)
        st.rerun(scope="fragment")


# -- what a key does ------------------------------------------------------------------------


def on_action(project: Project) -> None:
    """Run the card's last message (save, next, previous, undo) before the card is redrawn."""
    message = st.session_state.get(PLAYER_KEY)
    state: FocusState = st.session_state[STATE]
    row = state.queue.current(project)
    if not message or row is None or message.get("card") != f"{row['id']}#{state.version}":
        return  # a message from a card no longer shown (a double press)
    state.message, state.message_kind = "", ""
    try:
        run_action(project, state, row, message)
    except CuratorError as exc:  # nothing was saved: say why, stay on the segment
        state.message, state.message_kind = as_text(exc), "error"
    state.version += 1


def run_action(
    project: Project, state: FocusState, row: dict[str, Any], message: dict[str, Any]
) -> None:
    action = message.get("action")
    if action == "next":
        state.queue.move(1)
    elif action == "previous":
        state.queue.move(-1)
    elif action == "save":
        save(project, state, row, message)
    elif action == "undo":
        undo_last(project, state)


def save(project: Project, state: FocusState, row: dict[str, Any], message: dict) -> None:
    """Take what the curator decided on the card and move on; the card after it is drawn
    first, then `finish_save` writes the decisions (see focus_card)."""
    changes = decision_labels(row["id"], proposed_tags(row), message.get("decisions", []))
    excluded = bool(message.get("excluded"))
    flag = None if excluded == bool(row["excluded"]) else excluded
    if changes or flag is not None:
        actor = page_curator()
        state.pending = PendingSave(row, state.queue.cursor, changes, flag, actor)
        state.queue.saved(row_after_save(row, changes, flag, actor))
    state.queue.move(1)
    if state.pending is not None and not runtime.exists():
        finish_save(project, state, None)  # no browser waiting (bare mode, tests)


def finish_save(project: Project, state: FocusState, status: Any) -> None:
    """Write the pending save, and say below the card whether it was recorded."""
    pending, state.pending = state.pending, None
    if pending is None:
        return
    segment = pending.row["id"]
    try:
        batch, changed = save_segment(
            project, segment, pending.changes, None, pending.excluded, pending.actor
        )
    except CuratorError as exc:  # nothing was saved: the segment is shown as it was
        state.queue.rows[pending.cursor] = pending.row
        state.message, state.message_kind = f"Not saved: {as_text(exc)}", "error"
        if status is not None:
            status.error(f"{segment} was not saved: {as_text(exc)} (k goes back to it)")
        return
    state.saves.append((batch, pending.cursor, pending.row))
    state.message, state.message_kind = f"Saved {segment}: {changed} change(s).", "success"
    if status is not None:
        status.caption(f"Saved {as_text(segment)}: {changed} change(s). u undoes it.")


def undo_last(project: Project, state: FocusState) -> None:
    """Undo this session's last save and go back to that segment as it was."""
    finish_save(project, state, None)
    if not state.saves:
        return
    batch, cursor, before = state.saves.pop()
    restored = undo(project, batch, page_curator())
    state.queue.cursor = cursor
    state.queue.rows[cursor] = before
    state.message, state.message_kind = (
        f"Undone: {restored} label(s) of {before['id']} restored.",
        "success",
    )
