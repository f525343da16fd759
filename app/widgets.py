"""Widgets the app's pages share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from curator.app.session import as_text
from curator.catalogue.audio import decode_window
from curator.curation.review import SOURCES, STATES, ReviewFilter
from curator.errors import AudioError
from curator.project import Project


def review_filter(
    project: Project, where: st.delta_generator.DeltaGenerator, key: str = "filter"
) -> ReviewFilter:
    """Facet, tag, label source, score range and state: the segments a page works on."""
    vocabulary = project.vocabulary()
    facet = where.selectbox("Facet", ["any", *vocabulary.facet_names], key=f"{key}-facet")
    tags = [t.name for t in vocabulary.facet(facet).tags] if facet != "any" else []
    tag = where.selectbox("Tag", ["any", *tags], disabled=facet == "any", key=f"{key}-tag")
    source = where.selectbox(
        "Label source", ["any", *SOURCES], disabled=facet == "any", key=f"{key}-source"
    )
    state = where.selectbox("Segments", STATES, key=f"{key}-state")
    low, high = where.slider(
        "Model score", 0.0, 1.0, (0.0, 1.0), 0.01, key=f"{key}-score", disabled=tag == "any"
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
    )


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
