"""Generate: build prompts from the vocabulary, compare base and fine-tuned models by ear and
by per-tag adherence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from curator.access.paths import allowed_path
from curator.app.jobs_view import comparison_groups, fraction_done, model_choices, start_comparison
from curator.app.session import as_text, open_page, page_curator
from curator.charts.jobs import comparison_figure
from curator.errors import CuratorError
from curator.jobs.adherence import CACHE_FILE as ADHERENCE_FILE
from curator.jobs.adherence import (
    JobAdherence,
    build_prompt,
    comparison_rows,
    job_adherence,
    load,
    project_taggers,
    scorers,
)
from curator.jobs.config import TrainedModel, trained_models
from curator.jobs.manage import Job
from curator.music import NOTE_NAMES
from curator.project import Project
from curator.registry import load_registry
from curator.vocabulary import Vocabulary

NONE = "–"
PROMPTS_KEY = "gen-prompts"
REFRESH_SECONDS = 3


def facet_tags(vocabulary: Vocabulary, facet: str) -> list[str]:
    if facet not in vocabulary.facet_names:
        return []
    return [tag.name for tag in vocabulary.facet(facet).tags]


def prompt_builder(vocabulary: Vocabulary) -> None:
    """Pick tags, tempo and key; "Add" appends the prompt they make to the list below."""
    st.subheader("Prompts")
    columns = st.columns(3)
    genre = columns[0].selectbox("Genre", [NONE, *facet_tags(vocabulary, "genres")], key="b-genre")
    mood = columns[1].selectbox("Mood", [NONE, *facet_tags(vocabulary, "moods")], key="b-mood")
    instruments = columns[2].multiselect(
        "Instruments", facet_tags(vocabulary, "instruments"), key="b-instruments"
    )
    columns = st.columns(3)
    bpm = columns[0].number_input("BPM (0: any)", 0, 300, 0, key="b-bpm")
    key = columns[1].selectbox("Key", [NONE, *NOTE_NAMES], key="b-key")
    scale = columns[2].selectbox("Scale", ["minor", "major"], key="b-scale")
    built = build_prompt(
        None if genre == NONE else genre,
        None if mood == NONE else mood,
        instruments,
        bpm or None,
        None if key == NONE else key,
        scale,
    )
    st.caption(f"Built: {as_text(built)}")
    if st.button("Add this prompt", key="b-add"):
        current = st.session_state.get(PROMPTS_KEY, "").rstrip("\n")
        st.session_state[PROMPTS_KEY] = f"{current}\n{built}".strip("\n")
    st.text_area("One prompt per line (free text works too)", key=PROMPTS_KEY, height=120)


def model_picker(project: Project) -> tuple[tuple[str, str] | None, list[TrainedModel], float]:
    """The base model's typed paths (None: not wanted; either may be empty), the chosen
    fine-tunes (succeeded train jobs) and the LoRA strength."""
    st.subheader("Models")
    defaults = project.settings.training
    use_base = st.checkbox("Base model", True, key="g-base")
    left, right = st.columns(2)
    model_config = left.text_input("Model config", defaults.model_config, key="g-model-config")
    ckpt = right.text_input("Base weights", defaults.ckpt, key="g-ckpt")
    trained = {model.label: model for model in trained_models(project)}
    chosen = st.multiselect(
        "Fine-tuned (finished train jobs)", list(trained), default=list(trained)[:1], key="g-tuned"
    )
    strength = st.slider("LoRA strength", 0.0, 2.0, 1.0, 0.05, key="g-strength")
    base = (model_config.strip(), ckpt.strip()) if use_base else None
    return base, [trained[label] for label in chosen], strength


def model_choice_problem(base: tuple[str, str] | None, tuned: list[TrainedModel]) -> str:
    """Why the models chosen cannot generate, in the page's words; empty when they can."""
    if base is not None:
        names = ("model config", "base weights")
        missing = [name for name, path in zip(names, base, strict=True) if not path]
        if missing:
            return (
                f"Base model is ticked but its {' and '.join(missing)} "
                f"{'path is' if len(missing) == 1 else 'paths are'} empty: fill them in, or untick "
                "Base model."
            )
    if base is None and not tuned:
        return "Choose the base model or at least one fine-tune."
    return ""


def checked_base(project: Project, base: tuple[str, str] | None) -> tuple[Path, Path] | None:
    """The base model's files, refused unless they are under the project's path roots."""
    if base is None:
        return None
    return allowed_path(project, base[0], "model config"), allowed_path(project, base[1], "weights")


def options_form(project: Project) -> dict[str, Any]:
    columns = st.columns(5)
    return {
        "seconds": columns[0].number_input("Seconds", 1.0, 47.0, 10.0, key="g-seconds"),
        "steps": int(columns[1].number_input("Steps", 1, 500, 100, key="g-steps")),
        "cfg_scale": columns[2].number_input("CFG scale", 0.0, 20.0, 7.0, key="g-cfg"),
        "seed": int(columns[3].number_input("Seed", 0, 2**31 - 1, 0, key="g-seed")),
        "device": columns[4].selectbox("Device", ["auto", "cuda", "cpu"], key="g-device"),
    }


def launch_section(project: Project) -> None:
    prompt_builder(project.vocabulary())
    base, tuned, strength = model_picker(project)
    options = options_form(project)
    if st.button("Generate", type="primary", key="g-start"):
        prompts = st.session_state.get(PROMPTS_KEY, "").splitlines()
        problem = model_choice_problem(base, tuned)
        if problem:
            st.error(problem)
            return
        try:
            models = model_choices(checked_base(project, base), tuned, strength)
            jobs = start_comparison(project, models, prompts, page_curator(), **options)
        except CuratorError as exc:
            st.error(as_text(exc))
            return
        st.session_state["g-group"] = jobs[0].meta["group"]
        st.success(f"Started {len(jobs)} generation job(s): " + ", ".join(j.id for j in jobs))


def results_section(project: Project) -> None:
    groups = comparison_groups(project)
    if not groups:
        st.info("Nothing generated yet.")
        return
    names = list(groups)
    wanted = st.session_state.get("g-group")
    group = st.selectbox(
        "Comparison", names, index=names.index(wanted) if wanted in names else 0, key="g-pick"
    )
    jobs = groups[group]
    for job in jobs:
        if job.status != "succeeded":
            st.progress(fraction_done(job), text=f"{as_text(job.label)}: {job.status}")
        if job.error:
            st.error(f"{as_text(job.label)}: {as_text(job.error)}")
    side_by_side(jobs)
    adherence_section(project, [job for job in jobs if job.status == "succeeded"])


def side_by_side(jobs: list[Job]) -> None:
    """A row per prompt, a column per model."""
    done = [job for job in jobs if job.status == "succeeded"]
    if not done:
        return
    prompts = done[0].config.get("prompts", [])
    for number, prompt in enumerate(prompts):
        st.markdown(f"**{number + 1}. {as_text(prompt)}**")
        columns = st.columns(len(done))
        for column, job in zip(columns, done, strict=True):
            files = job.audio_files()
            column.caption(as_text(job.label))
            if number < len(files):
                column.audio(str(files[number]))


def adherence_section(project: Project, jobs: list[Job]) -> None:
    if not jobs:
        return
    st.subheader("Adherence per tag")
    names = load_registry().names("taggers")
    default = [name for name in project_taggers(project) if name in names]
    taggers = st.multiselect("Taggers", names, default=default, key="g-taggers")
    found = [load(job.folder / ADHERENCE_FILE) for job in jobs]
    if st.button("Score adherence", key="g-score"):
        ready = scorers(project, taggers)
        with st.spinner("Running the analyzer and taggers on the generated audio…"):
            found = [job_adherence(project, job, ready=ready) for job in jobs]
        for error in ready.errors:
            st.warning(as_text(error))
    scored = [result for result in found if result is not None]
    if not scored:
        st.caption("Runs Essentia (tempo, key) and the chosen taggers on every clip.")
        return
    show_adherence(scored)


def show_adherence(scored: list[JobAdherence]) -> None:
    st.plotly_chart(comparison_figure(scored), key="g-adherence-chart")
    st.caption(
        "Tempo: share of clips within 4 % of the asked BPM (octave errors allowed). Key: mean "
        "MIREX score (1 same, 0.5 fifth, 0.3 relative, 0.2 parallel). Tags: share of clips "
        "whose score reaches the tagger's threshold."
    )
    st.dataframe(comparison_rows(scored), hide_index=True, key="g-adherence-table")


def main() -> None:
    project = open_page("Generate")
    st.title("Generate")
    launch_section(project)
    st.divider()
    active = any(job.active for jobs in comparison_groups(project).values() for job in jobs)
    st.fragment(results_section, run_every=REFRESH_SECONDS if active else None)(project)


main()
