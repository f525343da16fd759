"""A dry run's plan in words: what `curator train --dry-run` prints and the Jobs page shows."""

from __future__ import annotations

from typing import Any

DRY_RUN_STEPS = 5  # the first is a warm-up: four measured


def plan_lines(plan: dict[str, Any]) -> list[str]:
    """A dry run's measurements and the cost of the planned run, in the words of its config."""
    each, result = size_text(plan["checkpoint_bytes"]), size_text(plan["result_bytes"])
    return [
        f"measured {plan['measured_steps']} steps after a warm-up one: "
        f"{plan['step_seconds']:.3f} s per step (batch {plan['batch_size']}, "
        f"precision {plan['precision']})",
        f"peak memory: {size_text(plan['peak_memory_bytes'])} ({plan['memory']})",
        f"checkpoint: {each} each; result: {result}",
        f"planned: {plan['planned_steps']} steps ({plan['batches_per_epoch']} per epoch): "
        f"{duration_text(plan['planned_seconds'])}, disk "
        f"{size_text(plan['planned_disk_bytes'])} ({plan['kept_checkpoints']} checkpoints "
        "kept + the result)",
        f"the seed's {plan['seed_steps']:,} steps: {duration_text(plan['seed_seconds'])} "
        "at this step time",
    ]


def is_plan(outputs: dict[str, Any]) -> bool:
    """Whether a train job's outputs are a dry run's plan (it trained nothing)."""
    return "step_seconds" in outputs and "planned_seconds" in outputs


def size_text(count: float) -> str:
    """Bytes as MiB (GiB from 10 GiB): what a disk or memory plan is read in."""
    mib = count / 2**20
    return f"{mib / 1024:.1f} GiB" if mib >= 10 * 1024 else f"{mib:.1f} MiB"


def duration_text(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
