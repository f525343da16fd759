"""Widgets the app's pages share."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import streamlit as st

from curator.app.session import as_text
from curator.catalogue.audio import decode_window
from curator.curation.queues import load_queue
from curator.curation.review import SOURCES, STATES, ReviewFilter
from curator.errors import AudioError, CuratorError
from curator.project import Project

SCORE_RANGE = (0.0, 1.0)


def review_filter(
    project: Project, where: st.delta_generator.DeltaGenerator, key: str = "filter"
) -> ReviewFilter:
    """Search text, facet, tag, label source, score range and state: the segments a page
    works on."""
    vocabulary = project.vocabulary()
    text = where.text_input(
        "Search",
        key=f"{key}-text",
        placeholder="segment id, file name, prompt or note",
        help="Segments whose id, file path, note or prompt contains this text (any case).",
    )
    facet = where.selectbox("Facet", ["any", *vocabulary.facet_names], key=f"{key}-facet")
    tags = [t.name for t in vocabulary.facet(facet).tags] if facet != "any" else []
    tag = where.selectbox("Tag", ["any", *tags], disabled=facet == "any", key=f"{key}-tag")
    source = where.selectbox(
        "Label source", ["any", *SOURCES], disabled=facet == "any", key=f"{key}-source"
    )
    state = where.selectbox("Segments", STATES, key=f"{key}-state")
    low, high = where.slider(
        "Model score", 0.0, 1.0, SCORE_RANGE, 0.01, key=f"{key}-score", disabled=tag == "any"
    )
    unsure = where.slider(
        "Tempo/key confidence below", 0.0, 1.0, 1.0, 0.05, key=f"{key}-confidence"
    )
    uncertain = where.checkbox(
        "Most uncertain first", disabled=tag == "any", key=f"{key}-uncertain"
    )
    chosen = tag != "any" and facet != "any"
    return ReviewFilter(
        facet=None if facet == "any" else facet,
        tag=tag if chosen else None,
        source=None if source == "any" or facet == "any" else source,
        score_min=low if chosen and low > 0.0 else None,
        score_max=high if chosen and high < 1.0 else None,
        uncertain_first=uncertain and chosen,
        state=state,
        confidence_below=unsure if unsure < 1.0 else None,
        text=text.strip() or None,
    )


# -- the queue in the URL -------------------------------------------------------------------
# Every filter, the queue's order and page, and the focused segment live in the URL's query
# string, so a link opens the same queue at the same segment. The widgets are set from the
# URL only when it changed outside this session (a link was opened, or the page loaded);
# otherwise the widgets lead and the URL follows them.

URL_SEEN = "url-seen"  # session key: the query string as this session last wrote it
SEGMENT_PARAM = "segment"


def url_opened() -> bool:
    """Whether the URL holds state this session did not write: a link was just opened."""
    return st.query_params.to_dict() != st.session_state.get(URL_SEEN)


def remember_url() -> None:
    """Note the URL as written now, so the next run does not take it for a new link."""
    st.session_state[URL_SEEN] = st.query_params.to_dict()


def set_url_param(name: str, value: Any, default: Any = None) -> None:
    """Put `value` in the URL as `name`, or take `name` out where it is the default."""
    if value is None or value == default:
        st.query_params.pop(name, None)
    else:
        st.query_params[name] = str(value)


def segment_link(segment_id: str) -> str:
    """The Review page's address for one segment, relative, so it works from any page and
    under any base URL (st.page_link needs the app's entry page, which tests do not run)."""
    return f"Review?{urlencode({SEGMENT_PARAM: segment_id})}"


def focused_segment_from_url() -> str | None:
    """The segment the URL focuses on (`?segment=ID`), if any."""
    return st.query_params.get(SEGMENT_PARAM) or None


def set_focused_segment(segment_id: str | None) -> None:
    """Put the focused segment in the URL (None takes it out), so a link reopens it."""
    set_url_param(SEGMENT_PARAM, segment_id)
    remember_url()


def filter_from_url(project: Project, key: str = "filter") -> None:
    """Set review_filter's widgets (under `key`) from the URL; a value the URL lacks or that
    makes no sense here (a tag not in the vocabulary) takes its default."""
    vocabulary = project.vocabulary()
    params = st.query_params
    facet = params.get("facet", "any")
    facet = facet if facet in vocabulary.facet_names else "any"
    tags = [t.name for t in vocabulary.facet(facet).tags] if facet != "any" else []
    state = st.session_state
    state[f"{key}-text"] = params.get("q", "")
    state[f"{key}-facet"] = facet
    state[f"{key}-tag"] = _one_of(params.get("tag"), tags, "any")
    state[f"{key}-source"] = _one_of(params.get("source"), SOURCES, "any")
    state[f"{key}-state"] = _one_of(params.get("state"), STATES, STATES[0])
    state[f"{key}-score"] = _score_range(params.get("score"))
    state[f"{key}-confidence"] = _fraction(params.get("confidence"), 1.0)
    state[f"{key}-uncertain"] = params.get("uncertain") == "1"


def filter_to_url(where: ReviewFilter) -> None:
    """Write the filter into the URL (defaults left out, so a plain link stays short)."""
    set_url_param("q", where.text)
    set_url_param("facet", where.facet)
    set_url_param("tag", where.tag)
    set_url_param("source", where.source)
    set_url_param("state", where.state, STATES[0])
    low, high = where.score_min or 0.0, where.score_max or 1.0
    set_url_param("score", f"{low:g}-{high:g}", "0-1")
    set_url_param("confidence", where.confidence_below)
    set_url_param("uncertain", "1" if where.uncertain_first else None)


QUEUE_PARAM = "queue"


def saved_queue_segments(
    project: Project, where: st.delta_generator.DeltaGenerator, key: str = "queue"
) -> tuple[str, ...] | None:
    """The segments of the saved queue the URL names (`?queue=ID`, e.g. a selection on the
    Explore map), said in `where` with a button to leave it; None when the URL names none."""
    queue_id = st.query_params.get(QUEUE_PARAM)
    if not queue_id:
        return None
    try:
        queue = load_queue(project, queue_id)
    except CuratorError as exc:
        where.warning(as_text(exc))
        return None
    where.info(f"Only the {len(queue.segments)} segment(s) of a queue: {as_text(queue.origin)}.")
    if where.button("Leave the queue", key=f"{key}-leave"):
        st.query_params.pop(QUEUE_PARAM, None)
        remember_url()
        st.rerun()
    return queue.segments


def _one_of(value: str | None, choices: Sequence[str], default: str) -> str:
    return value if value in choices else default


def _fraction(text: str | None, default: float) -> float:
    try:
        value = float(text) if text is not None else default
    except ValueError:
        return default
    return value if 0.0 <= value <= 1.0 else default


def _score_range(text: str | None) -> tuple[float, float]:
    low, _, high = (text or "").partition("-")
    bounds = (_fraction(low, 0.0), _fraction(high, 1.0))
    return bounds if bounds[0] <= bounds[1] else SCORE_RANGE


PREVIEW_RATE = 22050  # enough to judge hats and 808s, half the bytes of 44.1 kHz


def play_segment(row: dict[str, Any]) -> np.ndarray | None:
    """An audio player for one segment (`source`, `start`, `duration`); returns the decoded
    mono audio at PREVIEW_RATE for more views of it, or None (with a warning) if unreadable."""
    try:
        audio = decode_window(Path(row["source"]), row["start"], row["duration"], PREVIEW_RATE, 1)
    except AudioError as exc:
        st.warning(f"cannot play: {as_text(exc.reason)}")
        return None
    st.audio(audio[:, 0], sample_rate=PREVIEW_RATE)
    return audio
