"""Learned tagger: train probes on the curators' labels, see their quality, re-tag with them."""

from __future__ import annotations

from typing import Any

import streamlit as st

from curator.app.session import as_text, open_page
from curator.curation.probes import (
    LearnOptions,
    NotEnoughLabels,
    apply_learned,
    current_report,
    embedding_choices,
    learn,
    learned_diff,
)
from curator.curation.suspects import tagger_uncertainty
from curator.errors import CuratorError
from curator.project import Project


def train_section(project: Project) -> None:
    st.subheader("Train")
    choices = embedding_choices(project)
    if not choices:
        st.info(
            "No cached audio embeddings yet. Run a tagger that keeps them, e.g. "
            '`curator tag --plugin musicnn` with `[plugins.musicnn] embedding = "penultimate"`.'
        )
        return
    embedding = st.selectbox("Embedding model", choices, key="learn-embedding")
    wanted = st.number_input("Verified labels wanted per tag (each side)", 1, 1000, 20)
    with_models = st.checkbox("Also train on confident model labels", key="learn-models")
    if st.button("Train the learned tagger", key="learn-train"):
        options = LearnOptions(
            embedding=embedding, labels_wanted=int(wanted), include_model_labels=with_models
        )
        try:
            with st.spinner("Cross-validating and calibrating probes..."):
                model = learn(project, options, tagger_uncertainty)
        except NotEnoughLabels as exc:
            hint = ', or tick "Also train on confident model labels"'
            st.error(as_text(f"{exc}{hint if exc.model_labels_would_help else ''}."))
            return
        except CuratorError as exc:
            st.error(as_text(exc))
            return
        st.success(f"Trained version {model.version}.")


def report_section(report: dict[str, Any]) -> None:
    st.subheader(f"Version {report['version']}")
    st.caption(
        f"Trained on {as_text(report['embedding'])} embeddings; labels from calibrated probability "
        f"{report['threshold']:.2f}. Precision and recall are cross-validated on verified "
        "labels, a track's segments in one fold; 'needed' is how many more verified labels "
        "the tag needs to reach the wanted count on each side."
    )
    rows = [
        {
            "facet": r["facet"],
            "tag": r["tag"],
            "verified +": r["positives"],
            "verified -": r["negatives"],
            "precision": _figure(r["precision"]),
            "recall": _figure(r["recall"]),
            "needed": r["needed"],
            "trained": "yes" if r["trained"] else "no",
            # a tagger's own probability (the prior, docs/suspects.md) or the embedding alone
            "starts from": (r.get("prior") or "embedding") if r["trained"] else "-",
        }
        for r in report["tags"]
    ]
    st.dataframe(rows, hide_index=True, key="learn-report")


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def retag_section(project: Project) -> None:
    st.subheader("Re-tag with it")
    if st.button("Show what tagging with it would change", key="learn-diff"):
        try:
            st.session_state["learned-diff"] = learned_diff(project)
        except CuratorError as exc:
            st.error(as_text(exc))
    found = st.session_state.get("learned-diff")
    if not found:
        return
    version, diffs = found
    changed = [d for d in diffs if d.added or d.removed]
    st.write(f"Tagging with learned@{version} would change {len(changed)} tag(s).")
    if changed:
        st.dataframe(
            [
                {
                    "facet": d.facet,
                    "tag": d.tag,
                    "added": len(d.added),
                    "removed": len(d.removed),
                    "e.g.": ", ".join((d.added + d.removed)[:3]),
                }
                for d in changed
            ],
            hide_index=True,
            key="learn-diff-table",
        )
    if st.button(f"Apply: tag with learned@{version}", key="learn-apply"):
        summary = apply_learned(project)
        st.session_state.pop("learned-diff")
        st.success(f"Run {summary.run_id}: {summary.done} segment(s) tagged from cache.")


def main() -> None:
    project = open_page("Learned tagger")
    st.title("Learned tagger")
    st.caption(
        "Per-tag probes trained on the labels curators verified, over cached audio "
        "embeddings. Every review makes the next version better; the version is the hash "
        "of its training data, so each run says what it learned from."
    )
    train_section(project)
    report = current_report(project)
    if report is None:
        st.info("No learned tagger yet: verify some labels on the Review page, then train.")
        return
    report_section(report)
    retag_section(project)


main()
