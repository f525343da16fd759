"""What a training or generation job is asked to do: its config, checked before it is launched."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curator.errors import CuratorError
from curator.jobs.manage import Job, get_job, list_jobs
from curator.project import Project

DATASET_CONFIG = "dataset_config.json"  # what `curator export` writes for training
LATENTS_FILE = "latents.json"  # what `curator encode` writes beside its dataset config

# The app's starting points; every value can still be changed before launching.
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "quick LoRA": {
        "lora_rank": 16,
        "lora_alpha": 16,
        "steps": 2000,
        "learning_rate": 1e-4,
        "checkpoint_every": 500,
    },
    "full fine-tune": {
        "lora_rank": None,
        "lora_alpha": None,
        "steps": 20000,
        "learning_rate": 5e-5,
        "checkpoint_every": 2000,
    },
}


@dataclass(frozen=True)
class TrainedModel:
    """A finished fine-tune, as generation uses it: full weights, or base weights + a LoRA."""

    job_id: str
    label: str
    model_config: Path
    ckpt: Path
    lora: Path | None = None


def train_config(
    project: Project,
    *,
    export_dir: Path,
    model_config: Path,
    ckpt: Path | None = None,
    lora_rank: int | None = None,
    lora_alpha: float | None = None,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    precision: str | None = None,
    device: str | None = None,
    checkpoint_every: int | None = None,
    learning_rate: float | None = None,
    num_workers: int | None = None,
    seed: int = 0,
    trust_checkpoint: bool = False,
    dry_run: int | None = None,
    devices: int | None = None,
    num_nodes: int | None = None,
    strategy: str | None = None,
) -> dict[str, Any]:
    """A train job's config, every path checked and made absolute, defaults from [training].

    dry_run: run this many steps and measure them instead of training (`curator train
      --dry-run`); steps/epochs then say what run to plan for.
    devices, num_nodes, strategy: processes per machine, machines and Lightning's strategy
      (kept out of the config when not given: one device).

    trust_checkpoint: let training unpickle a .ckpt that holds more than weights (the user's
      explicit `--trust-checkpoint`); without it such a file is refused.
    """
    defaults = project.settings.training
    _check_steps(steps, epochs)
    if lora_rank is not None and lora_rank < 1:
        raise CuratorError(f"--lora-rank must be at least 1, got {lora_rank}")
    given = {"dry_run": dry_run, "devices": devices, "num_nodes": num_nodes, "strategy": strategy}
    planning = {key: value for key, value in given.items() if value is not None}
    return {
        **planning,
        "export_dir": str(_existing_export(export_dir)),
        "model_config": str(_existing_model_config(model_config)),
        "ckpt": str(_existing_file(ckpt, "checkpoint")) if ckpt else None,
        "lora": None
        if lora_rank is None
        else {"rank": lora_rank, "alpha": float(lora_alpha or lora_rank)},
        "steps": steps,
        "epochs": epochs,
        "batch_size": batch_size or defaults.batch_size,
        "precision": precision or defaults.precision,
        "device": device or defaults.device,
        "checkpoint_every": checkpoint_every or defaults.checkpoint_every,
        "resume": False,
        "resume_from": None,
        "seed": seed,
        "learning_rate": learning_rate or defaults.learning_rate,
        "num_workers": defaults.num_workers if num_workers is None else num_workers,
        "wandb": False,
        "trust_checkpoint": bool(trust_checkpoint),
    }


def encode_config(
    project: Project,
    *,
    export_dir: Path,
    model_config: Path,
    ckpt: Path,
    out: Path | None = None,
    batch_size: int = 8,
    device: str | None = None,
    trust_checkpoint: bool = False,
) -> dict[str, Any]:
    """An encode job's config: the export's audio through the model's autoencoder into `out`
    (default: EXPORT-latents beside the export)."""
    export_dir = _existing_export(export_dir)
    if (export_dir / LATENTS_FILE).is_file():
        raise CuratorError(f"{export_dir}: already a latent set; encode the audio export")
    out_dir = (
        Path(out).expanduser().resolve()
        if out
        else export_dir.with_name(export_dir.name + "-latents")
    )
    if out_dir == export_dir:
        raise CuratorError(f"--out {out_dir}: the export itself; choose another folder")
    if batch_size < 1:
        raise CuratorError(f"--batch-size must be at least 1, got {batch_size}")
    return {
        "export_dir": str(export_dir),
        "model_config": str(_existing_model_config(model_config)),
        "ckpt": str(_existing_file(ckpt, "checkpoint")),
        "out_dir": str(out_dir),
        "batch_size": int(batch_size),
        "device": device or project.settings.training.device,
        "trust_checkpoint": bool(trust_checkpoint),
    }


def resume_config(project: Project, job_id: str, **overrides: Any) -> dict[str, Any]:
    """The config of train job `job_id`, continued from its last checkpoint.

    Options given now (steps, device, ...) replace the old ones; the rest is kept.
    """
    previous = get_job(project, job_id)
    if previous.kind != "train":
        raise CuratorError(f"job {previous.id} is a {previous.kind} job; only train jobs resume")
    checkpoints = previous.checkpoints()
    if not checkpoints:
        raise CuratorError(
            f"job {previous.id} saved no checkpoint yet ({previous.folder / 'checkpoints'} is "
            "empty), so there is nothing to resume from"
        )
    config = dict(previous.config)
    config.update({k: v for k, v in overrides.items() if v is not None})
    if overrides.get("steps") is not None:
        config["epochs"] = None
    if overrides.get("epochs") is not None:
        config["steps"] = None
    config.update({"resume": True, "resume_from": str(checkpoints[-1])})
    return config


def generate_config(
    project: Project,
    *,
    model_config: Path,
    ckpt: Path,
    prompts: Sequence[str],
    seconds: float,
    steps: int,
    loras: Sequence[tuple[Path, float]] = (),
    negative_prompt: str = "",
    cfg_scale: float = 7.0,
    sampler: str | None = None,
    seed: int = 0,
    device: str | None = None,
    trust_checkpoint: bool = False,
) -> dict[str, Any]:
    """A generate job's config, paths checked and made absolute (trust_checkpoint: as for
    train_config)."""
    prompts = [p.strip() for p in prompts if p.strip()]
    if not prompts:
        raise CuratorError("give at least one --prompt")
    if seconds <= 0 or steps < 1:
        raise CuratorError(
            f"--seconds must be positive and --steps at least 1 (got {seconds}, {steps})"
        )
    return {
        "model_config": str(_existing_model_config(model_config)),
        "ckpt": str(_existing_file(ckpt, "checkpoint")),
        "loras": [
            {"path": str(_existing_file(path, "LoRA")), "strength": float(strength)}
            for path, strength in loras
        ],
        "prompts": prompts,
        "negative_prompt": negative_prompt or "",
        "seconds": float(seconds),
        "steps": int(steps),
        "cfg_scale": float(cfg_scale),
        "sampler": sampler,
        "seed": int(seed),
        "device": device or project.settings.training.device,
        "trust_checkpoint": bool(trust_checkpoint),
    }


def parse_lora(value: str) -> tuple[Path, float]:
    """`FILE` or `FILE:STRENGTH` (strength 1.0 when not given)."""
    path, _, strength = value.rpartition(":")
    if path and strength:
        try:
            return Path(path), float(strength)
        except ValueError:
            pass
    return Path(value), 1.0


def trained_models(project: Project) -> list[TrainedModel]:
    """Every succeeded train job's result, newest first, ready to generate from."""
    found = []
    for job in list_jobs(project, "train"):
        model = trained_model(job)
        if job.status == "succeeded" and model is not None:
            found.append(model)
    return found


def trained_model(job: Job) -> TrainedModel | None:
    """What generation needs from a finished train job (None when it left no weights)."""
    config = job.config
    outputs = job.outputs()
    lora = _output(job, outputs, "lora", "lora.safetensors")
    model = _output(job, outputs, "model", "model.safetensors")
    kind = "LoRA" if config.get("lora") else "full"
    label = f"{job.id} ({kind}, {_length(config)})"
    model_config = Path(outputs.get("model_config") or config["model_config"])
    if lora is not None and config.get("ckpt"):
        return TrainedModel(job.id, label, model_config, Path(config["ckpt"]), lora)
    if model is not None:
        return TrainedModel(job.id, label, model_config, model)
    return None


def _output(job: Job, outputs: Mapping[str, Any], key: str, default_name: str) -> Path | None:
    named = outputs.get(key)
    path = Path(named) if named else job.folder / default_name
    if not path.is_absolute():
        path = job.folder / path
    return path if path.is_file() else None


def _length(config: Mapping[str, Any]) -> str:
    if config.get("steps"):
        return f"{config['steps']} steps"
    return f"{config.get('epochs')} epochs"


def _check_steps(steps: int | None, epochs: int | None) -> None:
    if steps is not None and epochs is not None:
        raise CuratorError("give --steps or --epochs, not both")
    if steps is None and epochs is None:
        raise CuratorError("give --steps N or --epochs N: how long to train")
    if (steps is not None and steps < 1) or (epochs is not None and epochs < 1):
        raise CuratorError("--steps and --epochs must be at least 1")


def _existing_file(path: Path, what: str) -> Path:
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise CuratorError(f"{path}: no such {what} file")
    return path


def _existing_model_config(path: Path) -> Path:
    path = _existing_file(path, "model config")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CuratorError(f"{path}: not a JSON model config ({exc})") from exc
    if not isinstance(value, dict) or "model_type" not in value:
        raise CuratorError(f"{path}: not a stable-audio-tools model config (no model_type)")
    return path


def _existing_export(path: Path) -> Path:
    path = Path(path).expanduser().resolve()
    if not path.is_dir():
        raise CuratorError(f"{path}: no such export folder (`curator export OUT` writes one)")
    if not (path / DATASET_CONFIG).is_file():
        raise CuratorError(f"{path}: no {DATASET_CONFIG} in it, so not a `curator export` folder")
    return path
