"""Jobs: start a fine-tune from an export, watch its loss, read its log, cancel it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from curator.access.paths import allowed_path
from curator.app.jobs_view import fraction_done, job_rows
from curator.app.session import as_text, open_page, page_curator
from curator.charts.jobs import loss_figure
from curator.errors import CuratorError
from curator.export.build import exports
from curator.jobs.config import TRAIN_PRESETS, train_config
from curator.jobs.manage import Job, cancel_job, list_jobs, start_job
from curator.jobs.plan import DRY_RUN_STEPS, is_plan, plan_lines
from curator.project import Project

OTHER_FOLDER = "another folder…"
DEVICES = ["auto", "cuda", "cpu"]
PRECISIONS = ["32", "16-mixed", "bf16-mixed"]
REFRESH_SECONDS = 3


def export_picker(project: Project) -> str:
    """A past export from the catalogue, or any folder."""
    known = [str(row["path"]) for row in exports(project)]
    choice = st.selectbox("Export", [*known, OTHER_FOLDER], key="train-export-choice")
    if choice != OTHER_FOLDER:
        return choice
    return st.text_input("Export folder", key="train-export-folder", help="`curator export OUT`")


def training_form(project: Project) -> dict[str, Any]:
    """Every value of the fine-tune to start, the preset filling in the defaults."""
    defaults = project.settings.training
    preset_name = st.radio("Preset", list(TRAIN_PRESETS), horizontal=True, key="train-preset")
    preset = TRAIN_PRESETS[preset_name]
    export_dir = export_picker(project)
    left, right = st.columns(2)
    model_config = left.text_input("Model config", defaults.model_config, key="train-model-config")
    ckpt = right.text_input("Base weights (.ckpt / .safetensors)", defaults.ckpt, key="train-ckpt")
    columns = st.columns(4)
    # Keys carry the preset's name, so switching presets puts its values in.
    steps = columns[0].number_input(
        "Steps", 1, None, preset["steps"], key=f"train-steps-{preset_name}"
    )
    rate = columns[1].number_input(
        "Learning rate",
        0.0,
        1.0,
        preset["learning_rate"],
        format="%.1e",
        key=f"train-lr-{preset_name}",
    )
    every = columns[2].number_input(
        "Checkpoint every", 1, None, preset["checkpoint_every"], key=f"train-every-{preset_name}"
    )
    batch = columns[3].number_input("Batch size", 1, None, defaults.batch_size, key="train-batch")
    rank = None
    if preset["lora_rank"]:
        rank = st.number_input("LoRA rank", 1, 512, preset["lora_rank"], key="train-rank")
    columns = st.columns(3)
    device = columns[0].selectbox(
        "Device", DEVICES, DEVICES.index(defaults.device), key="train-device"
    )
    precision = columns[1].selectbox(
        "Precision", PRECISIONS, PRECISIONS.index(defaults.precision), key="train-precision"
    )
    devices = columns[2].number_input(
        "Devices",
        1,
        None,
        1,
        key="train-devices",
        help="GPUs (or CPU processes) on this machine, a process each; the batch size is per "
        "device. Several machines: docs/training.md.",
    )
    dry_run = st.checkbox(
        f"Dry run: measure {DRY_RUN_STEPS} real steps and plan the time and disk, train nothing",
        key="train-dry-run",
    )
    return {
        "export_dir": Path(export_dir) if export_dir else None,
        "model_config": Path(model_config) if model_config else None,
        "ckpt": Path(ckpt) if ckpt else None,
        "lora_rank": int(rank) if rank else None,
        "lora_alpha": float(rank) if rank else None,
        "steps": int(steps),
        "learning_rate": float(rate),
        "checkpoint_every": int(every),
        "batch_size": int(batch),
        "device": device,
        "precision": precision,
        "devices": int(devices) if devices > 1 else None,
        "dry_run": DRY_RUN_STEPS if dry_run else None,
    }


def start_section(project: Project) -> None:
    with st.expander("Start a fine-tune", expanded=not list_jobs(project, "train")):
        values = training_form(project)
        if st.button("Start fine-tune", type="primary", key="train-start"):
            if values["export_dir"] is None or values["model_config"] is None:
                st.error("Choose an export and a model config first.")
                return
            try:
                config = train_config(project, **checked_paths(project, values))
                job = start_job(project, "train", config, meta={"started_by": page_curator()})
            except CuratorError as exc:
                st.error(as_text(exc))
                return
            st.session_state["jobs-selected"] = job.id
            st.success(f"Started {job.id}. It runs on even if this page is closed.")


PATHS = {"export_dir": "export folder", "model_config": "model config", "ckpt": "base weights"}


def checked_paths(project: Project, values: dict[str, Any]) -> dict[str, Any]:
    """The form's values, each typed path refused unless it is under the project's roots."""
    return {
        key: allowed_path(project, value, PATHS[key]) if key in PATHS and value else value
        for key, value in values.items()
    }


def jobs_table(jobs: list[Job]) -> str | None:
    """The list of jobs; returns the one chosen to look at."""
    st.dataframe(job_rows(jobs), hide_index=True, key="jobs-table")
    ids = [job.id for job in jobs]
    wanted = st.session_state.get("jobs-selected")
    index = ids.index(wanted) if wanted in ids else 0
    return st.selectbox("Job", ids, index=index, key="jobs-pick")


def job_details(project: Project, job: Job) -> None:
    st.subheader(f"{job.id} · {job.status}")
    st.progress(fraction_done(job))
    latest = job.latest() or {}
    columns = st.columns(4)
    columns[0].metric("Step", f"{latest.get('step', 0)} / {latest.get('total_steps', '?')}")
    loss = latest.get("loss")
    columns[1].metric("Loss", f"{loss:.4f}" if loss is not None else "–")
    eta = latest.get("eta_s")
    columns[2].metric("ETA", f"{eta / 60:.1f} min" if eta is not None else "–")
    columns[3].metric("Checkpoints", len(job.checkpoints()))
    if job.error:
        st.error(as_text(job.error))
    if job.kind == "train":
        st.plotly_chart(loss_figure(job), key=f"loss-{job.id}")
    if job.active and st.button("Cancel job", key=f"cancel-{job.id}"):
        cancel_job(project, job.id)
        st.info("Asked the job to stop; it saves a checkpoint and ends as cancelled.")
    if is_plan(job.outputs()):
        lines = "\n".join(plan_lines(job.outputs()))
        st.markdown("**Dry run** (it trained nothing)  \n" + as_text(lines))
    elif job.outputs():
        st.json(job.outputs(), expanded=False)
    st.caption(f"Folder: {as_text(job.folder)}")
    st.code(job.log_tail(60) or "(the log is empty)", language=None)


def main() -> None:
    project = open_page("Jobs")
    st.title("Jobs")
    st.caption(
        "Fine-tunes and generations run in .venv-train, detached from the app: closing "
        "the browser or restarting the app does not stop them."
    )
    start_section(project)
    # Redrawn every few seconds only while something runs.
    active = any(job.active for job in list_jobs(project))
    st.fragment(watch, run_every=REFRESH_SECONDS if active else None)(project)


def watch(project: Project) -> None:
    jobs = list_jobs(project)
    if not jobs:
        st.info("No jobs yet. Export a training set (`curator export OUT`), then start one above.")
        return
    chosen = jobs_table(jobs)
    job = next(j for j in jobs if j.id == chosen)
    job_details(project, job)


main()
