"""Rebalance: choose a selection that evens out tag frequencies; compare it with the catalogue."""

from __future__ import annotations

from typing import Any

import streamlit as st

from curator.app.session import as_text, open_page
from curator.catalogue.metadata import TAG_FACETS
from curator.charts.rebalance import before_after_figure
from curator.errors import CuratorError
from curator.music import VALUE_FACETS
from curator.project import Project
from curator.rebalance.plan import (
    METHODS,
    TARGET_KINDS,
    RebalanceRequest,
    parse_budget,
    parse_tag_bound,
    rebalance,
)
from curator.rebalance.selections import delete_selection, selection_leaks, selections

METHOD_HELP = {
    "budgeted": "greedy toward the targets (upsamples rare tags, holds frequent ones back)",
    "repeat-factor": "LVIS repeat-factor sampling brought to the budget",
    "random": "an unweighted random pick (the baseline)",
}


def request_form(project: Project) -> tuple[RebalanceRequest, bool] | None:
    """The curator's choices: (request, replace) when Run was pressed and they read well."""
    facets_known = [*project.vocabulary().facet_names, *VALUE_FACETS]
    default_facets = [f for f in TAG_FACETS if f in facets_known]
    top = st.columns(3)
    name = top[0].text_input("Name", "balanced", key="rb-name")
    budget = top[1].text_input("Budget (copies, or 40h / 90m)", "1000", key="rb-budget")
    method = top[2].selectbox(
        "Method", METHODS, key="rb-method", format_func=lambda m: f"{m}: {METHOD_HELP[m]}"
    )
    facets = st.multiselect("Facets", facets_known, default_facets, key="rb-facets")
    targets = target_choices(facets)
    more = st.columns(4)
    max_repeats = more[0].number_input(
        "Most copies of a segment", 1, 20, project.settings.rebalance.max_repeats, key="rb-max"
    )
    validation = more[1].number_input(
        "Validation share of tracks",
        0.0,
        0.9,
        project.settings.rebalance.validation,
        step=0.05,
        key="rb-validation",
    )
    seed = more[2].number_input("Seed", 0, 2**31 - 1, 0, key="rb-seed")
    replace = more[3].checkbox("Replace a selection of this name", key="rb-replace")
    keep_duplicates = st.checkbox(
        "Count every member of a duplicate unit",
        key="rb-keep-duplicates",
        help="Off: each unit of duplicates (`curator duplicates`) counts once. The split keeps "
        "a unit on one side either way.",
    )
    bounds = st.columns(2)
    caps = bounds[0].text_area("Caps, TAG=N per line", key="rb-caps")
    floors = bounds[1].text_area("Floors, TAG=N per line", key="rb-floors")
    if not st.button("Run", key="rb-run", type="primary"):
        return None
    try:
        return RebalanceRequest(
            name=name.strip(),
            budget=parse_budget(budget),
            method=method,
            facets=tuple(facets),
            targets=targets,
            caps=_bounds(caps),
            floors=_bounds(floors),
            validation=float(validation),
            seed=int(seed),
            max_repeats=int(max_repeats),
            keep_duplicates=keep_duplicates,
        ), replace
    except CuratorError as exc:
        st.error(as_text(exc))
        return None


def target_choices(facets: list[str]) -> dict[str, str]:
    if not facets:
        return {}
    st.caption(
        "Target per facet: equal counts, square root of today's counts, or today's "
        "shares bounded by the caps and floors below."
    )
    columns = st.columns(len(facets))
    return {
        facet: columns[i].selectbox(as_text(facet), TARGET_KINDS, key=f"rb-target-{facet}")
        for i, facet in enumerate(facets)
    }


def _bounds(text: str) -> dict[str, int]:
    return dict(parse_tag_bound(line) for line in text.splitlines() if line.strip())


def run(project: Project, request: RebalanceRequest, replace: bool) -> None:
    if not request.facets:
        st.error("Choose at least one facet.")
        return
    try:
        with st.spinner("Choosing copies…"):
            planned = rebalance(project, request, replace=replace)
    except CuratorError as exc:
        st.error(as_text(exc))
        return
    st.session_state["rb-shown"] = planned.name
    st.success(
        f"Saved selection {as_text(repr(planned.name))} ({planned.report['seconds']:.2f} s)."
    )


def show_report(name: str, report: dict[str, Any]) -> None:
    st.subheader(f"Selection {as_text(repr(name))}")
    after, split = report["after"], report["split"]
    sizes = st.columns(5)
    sizes[0].metric("Copies", after["copies"])
    sizes[1].metric("Segments", after["segments"])
    sizes[2].metric("Tracks", after["tracks"])
    sizes[3].metric("Hours", f"{after['hours']:.2f}")
    sizes[4].metric("Validation tracks", split["validation"]["tracks"])
    shares = st.toggle("Shares instead of copies", True, key="rb-shares")
    for facet, data in report["facets"].items():
        show_facet(report, facet, data, shares)
    for note in report.get("notes", [])[1:]:
        st.caption(as_text(note))


def show_facet(report: dict[str, Any], facet: str, data: dict[str, Any], shares: bool) -> None:
    before, after = data["before"], data["after"]
    if not any(row["before"] for row in data.get("tags", [])):
        # Three n/a metrics and an empty chart would say less than one line.
        st.caption(
            f"{as_text(facet)}: no segment has a tag of this facet, so there is nothing to "
            "balance. Tag it with a plugin that knows it, or in Review."
        )
        return
    columns = st.columns(3)
    columns[0].metric(
        f"{as_text(facet)}: MeanIR",
        _number(after["mean_ir"]),
        _delta(after["mean_ir"], before["mean_ir"]),
        delta_color="inverse",
    )
    columns[1].metric(
        f"{as_text(facet)}: entropy",
        _number(after["entropy"]),
        _delta(after["entropy"], before["entropy"]),
    )
    columns[2].metric(f"{as_text(facet)}: tags lost", after["tags_lost"])
    st.plotly_chart(before_after_figure(report, facet, shares).figure, key=f"rb-chart-{facet}")


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _delta(now: float | None, then: float | None) -> str | None:
    return None if now is None or then is None else f"{now - then:+.3f}"


def saved_selections(project: Project) -> None:
    st.subheader("Saved selections")
    rows = selections(project)
    if not rows:
        st.info("No selections yet: choose a budget and press Run.")
        return
    st.dataframe(
        [
            {
                "name": r["name"],
                "method": r["method"],
                "segments": r["segments"],
                "copies": r["copies"],
                "hours": r["report"].get("after", {}).get("hours"),
                "MeanIR": r["report"].get("summary", {}).get("after", {}).get("mean_ir"),
                "made": str(r["created_at"]),
            }
            for r in rows
        ],
        key="rb-saved",
    )
    names = [r["name"] for r in rows]
    shown = st.session_state.get("rb-shown")
    chosen = st.selectbox(
        "Show", names, index=names.index(shown) if shown in names else 0, key="rb-show"
    )
    if st.button(f"Delete {as_text(repr(chosen))}", key="rb-delete"):
        delete_selection(project, chosen)
        st.session_state.pop("rb-shown", None)
        st.rerun()
    show_leaks(project, chosen)
    record = next(r for r in rows if r["name"] == chosen)
    if record["report"].get("facets"):
        show_report(chosen, record["report"])


def show_leaks(project: Project, name: str) -> None:
    """Duplicate units the selection has on both sides of its split, one line each."""
    leaks = selection_leaks(project, [name])[name]
    if leaks:
        st.warning(
            f"{len(leaks)} duplicate unit(s) on both sides of the split: validation hears what "
            "training learned. Run the selection again (Replace) to keep each unit on one side."
        )
        for leak in leaks:
            st.caption(as_text(leak.line()))


def main() -> None:
    project = open_page("Rebalance")
    st.title("Rebalance")
    st.caption(
        "A selection is a budget of segment copies (or hours) whose tags, counted from the "
        "effective labels (a person's over a model's), come as close to the target as the "
        "catalogue allows. Rare tags are upsampled by repeating their segments."
    )
    asked = request_form(project)
    if asked:
        run(project, *asked)
    saved_selections(project)


main()
