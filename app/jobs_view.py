"""What the app shows of jobs besides charts: the list, progress, comparisons of generation jobs."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from curator.jobs.config import TrainedModel, generate_config
from curator.jobs.manage import Job, list_jobs, start_job
from curator.project import Project


def job_rows(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """One row per job for a table: id, kind, status, step, loss, who started it, when."""
    rows = []
    for job in jobs:
        latest = job.latest() or {}
        rows.append(
            {
                "id": job.id,
                "kind": job.kind,
                "label": job.label,
                "status": job.status,
                "step": latest.get("step"),
                "of": latest.get("total_steps"),
                "loss": latest.get("loss"),
                "started by": job.meta.get("started_by"),
                "created": job.created_at,
            }
        )
    return rows


def fraction_done(job: Job) -> float:
    """0..1 for a progress bar (generation counts clips and their steps)."""
    latest = job.latest()
    if job.status == "succeeded":
        return 1.0
    if not latest or not latest.get("total_steps"):
        return 0.0
    step = latest["step"] / latest["total_steps"]
    if latest.get("items"):
        return min(1.0, (latest["item"] - 1 + step) / latest["items"])
    return min(1.0, step)


# -- comparing models on the same prompts ---------------------------------------------------


def start_comparison(
    project: Project,
    models: Sequence[tuple[str, Path, Path, Sequence[tuple[Path, float]]]],
    prompts: Sequence[str],
    started_by: str | None = None,
    **options: Any,
) -> list[Job]:
    """One generation job per model (label, model config, weights, LoRAs), same prompts and
    seed, grouped so that the app plays them side by side and scores them together.

    started_by: the curator who asked, kept with each job.
    """
    group = f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    jobs = []
    for label, model_config, ckpt, loras in models:
        config = generate_config(
            project, model_config=model_config, ckpt=ckpt, loras=loras, prompts=prompts, **options
        )
        meta = {"label": label, "group": group, "started_by": started_by}
        jobs.append(start_job(project, "generate", config, meta=meta))
    return jobs


def model_choices(
    base: tuple[Path, Path] | None, trained: Sequence[TrainedModel], lora_strength: float = 1.0
) -> list[Any]:
    """(label, model config, weights, LoRAs) for the base model and each chosen fine-tune."""
    found: list[Any] = []
    if base is not None:
        found.append(("base", base[0], base[1], []))
    for model in trained:
        loras = [(model.lora, lora_strength)] if model.lora else []
        found.append((model.label, model.model_config, model.ckpt, loras))
    return found


def comparison_groups(project: Project) -> dict[str, list[Job]]:
    """Generation jobs by the comparison they were started in, newest first."""
    groups: dict[str, list[Job]] = {}
    for job in list_jobs(project, "generate"):
        group = str(job.meta.get("group") or job.id)
        groups.setdefault(group, []).append(job)
    for jobs in groups.values():
        jobs.sort(key=lambda job: job.id)
    return groups
