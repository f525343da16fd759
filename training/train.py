"""Fine-tune a Stable Audio model on a `curator export` folder, full or LoRA, on CPU or GPU.

`python -m training train JOB_DIR` reads JOB_DIR/job.json {"kind": "train", "config": {...}}.
Config keys:
- export_dir (required): a `curator export` folder, or a latent set made from one by
  `python -m training encode` (then the model's pretransform is not run on the data, and
  ckpt's autoencoder must be the one the latents were made with). Its dataset_config.json is
  the training set;
  val_dataset_config.json (or dataset_config.validation.json), if present, is the validation set
  (its loss every `validate_every` steps goes to validation.jsonl). `path`,
  `custom_metadata_module` and `filelist_path` in them may be absolute or relative to export_dir.
- model_config (required): the model's model_config.json (Stable Audio Open 1.0's, or any
  `diffusion_cond` config). A relative T5 `model_path` in it is relative to its folder.
- ckpt: base weights, .ckpt ({"state_dict": ...}) or .safetensors, as Stable Audio Open 1.0
  ships them; null trains from random weights. Keys must match the model exactly.
- lora: null for a full fine-tune, or {"rank", "alpha" (default rank), "adapter_type" (lora,
  dora, dora-rows, dora-cols, bora, lora-xs, dora-rows-xs, dora-cols-xs, bora-xs; default lora),
  "include", "exclude" (lists of layer-name substrings)}: stable-audio-tools' own
  `training.lora_config`, which adapts the DiT and the conditioners and freezes the rest.
- steps or epochs (exactly one): how long to train. An epoch is one crop of every file.
- batch_size (default 1); precision: "32" (default), "16-mixed" (CUDA only) or "bf16-mixed";
  device: "auto" (default), "cpu" or "cuda".
- checkpoint_every (default 1000): write checkpoints/step-NNNNNNNN.ckpt every that many steps and
  at the end; keep_checkpoints (default 3) keeps only the newest ones (0 keeps all).
- validate_every (default checkpoint_every): validation interval in steps.
- resume (bool): continue from JOB_DIR's newest checkpoint; or resume_from: a checkpoint path.
- seed (default 42); learning_rate: overrides the model config's; num_workers (default 2, at
  least 1: the library's data loader keeps its workers alive between epochs).
- wandb (default false): log to Weights & Biases (project `wandb_project`, default "curator").
- trust_checkpoint (default false): load a .ckpt (ckpt, resume) that holds more than weights,
  which needs full unpickling and so could run code; without it such a file is refused.
- devices (default 1), num_nodes (default 1), strategy (default "auto"; "ddp", "fsdp",
  "deepspeed", ... as Lightning names them): processes per machine and machines. Lightning
  starts the other processes of this machine itself (`python -m training.__main__ ...` again,
  LOCAL_RANK set); on several machines each runs the same job (MASTER_ADDR, MASTER_PORT,
  NODE_RANK set). batch_size is per process; the learning rate is not scaled. The first
  process writes progress, checkpoints, the result and result.json.
- dry_run: a number of steps (at least 2) to run and measure instead of training: the step
  time (after the first, warm-up, step), peak memory, a checkpoint's and the result's size, and
  from them the time and disk that steps/epochs would take, and the seed's 35,000 steps. The
  checkpoint and result it writes to measure them are deleted; result.json's outputs hold the
  figures (see `plan`).

Outputs in JOB_DIR: progress.jsonl (a line per step: step, total_steps, epoch, loss, elapsed_s,
eta_s), checkpoints/ (full Lightning checkpoints; for LoRA they hold the adapters, the optimizer
and the loop state, plus a step-NNNNNNNN.lora.safetensors beside each), and the unwrapped result:
model.safetensors (full fine-tune, loadable as a base ckpt) or lora.safetensors (adapters only).
result.json's outputs: {"model" or "lora": that file, "checkpoint": the last checkpoint, "steps":
the last step, "final_loss"}.
"""

from __future__ import annotations

import json
import math
import os
import re
import types
from pathlib import Path
from typing import Any

from .checkpoints import (
    checkpoint_io,
    key_problems,
    load_model_config,
    load_weights,
    read_checkpoint,
    shapes,
)
from .dataset import TRAINING_CONFIG, VALIDATION_CONFIGS, check_dataset, load_dataset_config
from .encode import check_autoencoder, read_latents_info
from .jobfiles import Cancellation, Clock, JobCancelled, JobError, Progress

DEFAULTS: dict[str, Any] = {
    "export_dir": None,
    "model_config": None,
    "ckpt": None,
    "lora": None,
    "steps": None,
    "epochs": None,
    "batch_size": 1,
    "precision": "32",
    "device": "auto",
    "checkpoint_every": 1000,
    "keep_checkpoints": 3,
    "validate_every": None,
    "resume": False,
    "resume_from": None,
    "seed": 42,
    "learning_rate": None,
    "num_workers": 2,
    "wandb": False,
    "wandb_project": "curator",
    "trust_checkpoint": False,
    "dry_run": None,
    "devices": 1,
    "num_nodes": 1,
    "strategy": "auto",
}
SEED_STEPS = 35000  # the seed fine-tune's length (14 epochs of 40,000 segments, batch 16)
PRECISIONS = ("32", "16-mixed", "bf16-mixed")
DEVICES = {"auto": "auto", "cpu": "cpu", "cuda": "gpu"}
ADAPTER_TYPES = (
    "lora",
    "dora",
    "dora-rows",
    "dora-cols",
    "bora",
    "lora-xs",
    "dora-rows-xs",
    "dora-cols-xs",
    "bora-xs",
)
LORA_KEYS = ("rank", "alpha", "adapter_type", "include", "exclude")
CHECKPOINT = re.compile(r"step-(\d{8})\.ckpt$")


def train_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The config with defaults filled in, or a JobError naming what is wrong."""
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise JobError(f"unknown train config keys: {', '.join(unknown)}")
    settings = {**DEFAULTS, **config}
    for key in ("export_dir", "model_config"):
        if not settings[key]:
            raise JobError(f"train config needs {key}")
    if (settings["steps"] is None) == (settings["epochs"] is None):
        raise JobError("train config needs exactly one of steps and epochs")
    if str(settings["precision"]) not in PRECISIONS:
        raise JobError(f"precision must be one of {', '.join(PRECISIONS)}")
    if settings["device"] not in DEVICES:
        raise JobError(f"device must be one of {', '.join(DEVICES)}")
    for key in ("batch_size", "checkpoint_every", "num_workers", "devices", "num_nodes"):
        if int(settings[key]) < 1:
            raise JobError(f"{key} must be at least 1")
    if settings["dry_run"] is not None and int(settings["dry_run"]) < 2:
        raise JobError("dry_run must be at least 2 steps (the first is a warm-up)")
    settings["lora"] = lora_settings(settings["lora"])
    settings["validate_every"] = settings["validate_every"] or settings["checkpoint_every"]
    return settings


def lora_settings(lora: dict[str, Any] | None) -> dict[str, Any] | None:
    if not lora:
        return None
    unknown = sorted(set(lora) - set(LORA_KEYS))
    if unknown:
        raise JobError(f"unknown lora keys: {', '.join(unknown)}")
    if int(lora.get("rank", 0)) < 1:
        raise JobError("lora needs a rank of at least 1")
    adapter_type = lora.get("adapter_type", "lora")
    if adapter_type not in ADAPTER_TYPES:
        raise JobError(f"lora adapter_type must be one of {', '.join(ADAPTER_TYPES)}")
    rank = int(lora["rank"])
    return {**lora, "rank": rank, "alpha": lora.get("alpha", rank), "adapter_type": adapter_type}


def prepare_model_config(settings: dict[str, Any]) -> dict[str, Any]:
    """The model config with this job's LoRA and learning rate written into `training`."""
    model_config = load_model_config(Path(settings["model_config"]))
    training = model_config.setdefault("training", {})
    training.pop("lora_ckpt_path", None)
    if settings["lora"]:
        training["lora_config"] = settings["lora"]
    else:
        training.pop("lora_config", None)
    rate = settings["learning_rate"]
    if rate is not None:
        optimizer = training.get("optimizer_configs", {}).get("diffusion", {}).get("optimizer")
        if optimizer is not None:
            optimizer.setdefault("config", {})["lr"] = float(rate)
        else:
            training["learning_rate"] = float(rate)
    if "learning_rate" not in training and "optimizer_configs" not in training:
        raise JobError(
            "the model config's training section has no learning rate: set learning_rate"
        )
    return model_config


def checkpoint_path(job_dir: Path, step: int) -> Path:
    return job_dir / "checkpoints" / f"step-{step:08d}.ckpt"


def checkpoints(job_dir: Path) -> list[Path]:
    """JOB_DIR's checkpoints, oldest first."""
    folder = job_dir / "checkpoints"
    found = (
        [p for p in folder.glob("step-*.ckpt") if CHECKPOINT.search(p.name)]
        if folder.is_dir()
        else []
    )
    return sorted(found, key=lambda p: p.name)


def resume_checkpoint(job_dir: Path, settings: dict[str, Any]) -> Path | None:
    if settings["resume_from"]:
        path = Path(settings["resume_from"])
        if not path.is_file():
            raise JobError(f"resume_from {path}: no such file")
        return path
    if not settings["resume"]:
        return None
    found = checkpoints(job_dir)
    if not found:
        raise JobError(f"resume: no checkpoint in {job_dir / 'checkpoints'}")
    return found[-1]


def check_resume_keys(wrapper: Any, path: Path, lora: bool, trust: bool = False) -> None:
    """Refuse a resume checkpoint whose weights do not fit this run (full vs LoRA, other model)."""
    from stable_audio_tools.models.lora import name_is_lora

    saved = read_checkpoint(path, trust, mmap=True)
    expected = {
        k: v for k, v in shapes(wrapper.state_dict()).items() if not lora or name_is_lora(k)
    }
    problems = key_problems(expected, shapes(saved.get("state_dict", {})))
    if "loops" not in saved:
        problems.append("no trainer state (not a checkpoint written by this trainer)")
    if problems:
        raise JobError(f"cannot resume from {path}: " + "; ".join(problems))


def keep_lora_trainer_state(wrapper: Any) -> None:
    """Make LoRA checkpoints resumable: adapters only, but with the optimizer and loop state.

    The library's LoRA `on_save_checkpoint` clears everything but the adapters, so Lightning
    could not resume from it. Here the adapters keep their wrapper-level names (what Lightning
    loads back) and the base weights, which come from `ckpt`, are left out.
    """
    from stable_audio_tools.models.lora import name_is_lora

    def on_save_checkpoint(self: Any, checkpoint: dict[str, Any]) -> None:
        state = checkpoint["state_dict"]
        checkpoint["state_dict"] = {k: v for k, v in state.items() if name_is_lora(k)}
        checkpoint["lora_config"] = self.lora_config

    wrapper.on_save_checkpoint = types.MethodType(on_save_checkpoint, wrapper)
    # The base weights are not in the checkpoint; check_resume_keys has checked the adapters.
    wrapper.strict_loading = False


def make_callback(job_dir: Path, settings: dict[str, Any], total: int, cancel: Cancellation) -> Any:
    """The Lightning callback that writes progress, checkpoints and validation losses."""
    import pytorch_lightning as pl

    progress = Progress(job_dir)
    validation = Progress(job_dir, "validation.jsonl")

    class JobCallback(pl.Callback):
        def __init__(self) -> None:
            self.clock: Clock | None = None
            self.saved_step = -1
            self.last_loss: float | None = None

        def on_train_start(self, trainer: Any, module: Any) -> None:
            self.clock = Clock(trainer.global_step)
            cancel.in_training_loop = True
            print(f"training from step {trainer.global_step} to {total}", flush=True)

        def on_train_end(self, trainer: Any, module: Any) -> None:
            cancel.in_training_loop = False

        def on_train_batch_end(
            self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            step = trainer.global_step
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.last_loss = float(loss.detach().float().cpu())
            assert self.clock is not None
            eta = self.clock.eta(step, total)
            if trainer.is_global_zero:  # one process writes, however many train
                self.report(trainer, step, eta)
            if step % settings["checkpoint_every"] == 0 or step >= total or cancel.requested:
                self.save(trainer, step)

        def report(self, trainer: Any, step: int, eta: float | None) -> None:
            assert self.clock is not None and self.last_loss is not None
            progress.write(
                step=step,
                total_steps=total,
                epoch=trainer.current_epoch,
                loss=self.last_loss,
                elapsed_s=round(self.clock.elapsed(), 3),
                eta_s=None if eta is None else round(eta, 3),
            )
            print(
                f"step {step}/{total} epoch {trainer.current_epoch} loss {self.last_loss:.5f}",
                flush=True,
            )

        def save(self, trainer: Any, step: int) -> None:
            if step == self.saved_step or step == 0:
                return
            save_checkpoint(trainer, job_dir, step, settings)
            self.saved_step = step

        def on_exception(self, trainer: Any, module: Any, exception: BaseException) -> None:
            # SIGTERM during validation stops Lightning before the next on_train_batch_end.
            if cancel.requested:
                self.save(trainer, trainer.global_step)

        def on_validation_epoch_end(self, trainer: Any, module: Any) -> None:
            # Callbacks run before the module's own hook, which resets these lists.
            values = [v for losses in module.validation_step_outputs.values() for v in losses]
            if values and not trainer.sanity_checking and trainer.is_global_zero:
                loss = sum(values) / len(values)
                validation.write(step=trainer.global_step, val_loss=loss)
                print(f"validation at step {trainer.global_step}: loss {loss:.5f}", flush=True)

    return JobCallback()


def save_checkpoint(trainer: Any, job_dir: Path, step: int, settings: dict[str, Any]) -> Path:
    """A full Lightning checkpoint (plus the adapters alone, for LoRA), written atomically."""
    path = checkpoint_path(job_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    trainer.save_checkpoint(str(tmp))  # every process takes part; the first writes
    if not trainer.is_global_zero:
        return path
    os.replace(tmp, path)
    if settings["lora"]:
        adapters = path.with_name(path.stem + ".lora.safetensors")
        tmp = adapters.with_name(adapters.name + ".tmp")
        trainer.lightning_module.export_lora_safetensors(str(tmp))
        os.replace(tmp, adapters)
    print(f"checkpoint {path}", flush=True)
    prune_checkpoints(job_dir, int(settings["keep_checkpoints"]))
    return path


def prune_checkpoints(job_dir: Path, keep: int) -> None:
    if keep <= 0:
        return
    for old in checkpoints(job_dir)[:-keep]:
        old.unlink()
        old.with_name(old.stem + ".lora.safetensors").unlink(missing_ok=True)


def export_result(wrapper: Any, job_dir: Path, lora: bool) -> Path:
    """The unwrapped result: lora.safetensors (adapters) or model.safetensors (whole model)."""
    path = job_dir / ("lora.safetensors" if lora else "model.safetensors")
    tmp = path.with_name(path.stem + ".tmp.safetensors")
    if lora:
        wrapper.export_lora_safetensors(str(tmp))
    else:
        wrapper.export_model(str(tmp), use_safetensors=True)
    os.replace(tmp, path)
    print(f"exported {path} ({path.stat().st_size} bytes)", flush=True)
    return path


def make_trainer(job_dir: Path, settings: dict[str, Any], callback: Any) -> Any:
    import pytorch_lightning as pl

    logger: Any = False
    if settings["wandb"]:
        logger = pl.loggers.WandbLogger(project=settings["wandb_project"], save_dir=str(job_dir))
    return pl.Trainer(
        accelerator=DEVICES[settings["device"]],
        devices=int(settings["devices"]),
        num_nodes=int(settings["num_nodes"]),
        strategy=settings["strategy"],
        precision=str(settings["precision"]),
        max_steps=int(settings["steps"]) if settings["steps"] is not None else -1,
        max_epochs=int(settings["epochs"]) if settings["epochs"] is not None else -1,
        callbacks=[callback],
        # Lightning's own resume would unpickle the checkpoint fully; this reads it checked.
        plugins=[checkpoint_io(bool(settings["trust_checkpoint"]))],
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        check_val_every_n_epoch=None,
        val_check_interval=int(settings["validate_every"]),
        default_root_dir=str(job_dir),
    )


def dataloaders(settings: dict[str, Any], model_config: dict[str, Any]) -> Any:
    """The training loader and, if the export has a validation set, the validation loader."""
    from stable_audio_tools.data.dataset import create_dataloader_from_config

    export_dir = Path(settings["export_dir"])
    if not export_dir.is_dir():
        raise JobError(f"export_dir {export_dir}: no such folder")
    train_config = load_dataset_config(export_dir, TRAINING_CONFIG)
    if train_config is None:
        raise JobError(
            f"{export_dir / TRAINING_CONFIG}: no such file (is this a `curator export` folder?)"
        )
    batch_size = int(settings["batch_size"])
    count = check_dataset(train_config, batch_size, "training")
    print(f"training set: {count} files", flush=True)
    common = {
        "batch_size": batch_size,
        "sample_size": model_config["sample_size"],
        "sample_rate": model_config["sample_rate"],
        "audio_channels": model_config.get("audio_channels", 2),
        "num_workers": int(settings["num_workers"]),
    }
    train = create_dataloader_from_config(train_config, **common)
    validation_config = None
    for name in VALIDATION_CONFIGS:
        validation_config = validation_config or load_dataset_config(export_dir, name)
    validation = None
    if validation_config is not None:
        check_dataset(validation_config, 1, "validation")
        validation = create_dataloader_from_config(validation_config, shuffle=False, **common)
    return train, validation


def run_train(job_dir: Path, config: dict[str, Any], cancel: Cancellation) -> dict[str, Any]:
    """Train as the job config says; return result.json's `outputs`."""
    import pytorch_lightning as pl
    from pytorch_lightning.utilities.exceptions import SIGTERMException
    from stable_audio_tools.models.factory import create_model_from_config
    from stable_audio_tools.training.factory import create_training_wrapper_from_config

    settings = train_settings(config)
    lora = settings["lora"] is not None
    if not settings["wandb"]:
        os.environ["WANDB_MODE"] = "disabled"
    model_config = prepare_model_config(settings)
    latents = latent_set(settings, model_config)
    train_loader, validation_loader = dataloaders(settings, model_config)
    resume = resume_checkpoint(job_dir, settings)
    pl.seed_everything(int(settings["seed"]), workers=True)
    model = create_model_from_config(model_config)
    # From latents the base weights are loaded even on resume: they name the autoencoder.
    if settings["ckpt"] and (lora or resume is None or latents is not None):
        load_weights(model, Path(settings["ckpt"]), settings["trust_checkpoint"])
    if latents is not None:
        check_autoencoder(model, Path(settings["export_dir"]), latents)
    wrapper = create_training_wrapper_from_config(model_config, model)
    if lora:
        keep_lora_trainer_state(wrapper)
    if resume is not None:
        check_resume_keys(wrapper, resume, lora, settings["trust_checkpoint"])
        print(f"resuming from {resume}", flush=True)
    report_parameters(wrapper)
    batches = batches_per_process(settings, len(train_loader))
    total = total_steps(settings, batches)
    planned, dry_run, asked = total, settings["dry_run"], settings
    if dry_run:
        # One checkpoint, at the end, to measure its size; validation only then.
        total = int(dry_run)
        settings = {**settings, "steps": total, "epochs": None, "checkpoint_every": total}
        settings["validate_every"] = total
    callback = make_callback(job_dir, settings, total, cancel)
    trainer = make_trainer(job_dir, settings, callback)
    try:
        trainer.fit(
            wrapper, train_loader, validation_loader, ckpt_path=str(resume) if resume else None
        )
    except SIGTERMException:
        raise JobCancelled() from None
    cancel.in_training_loop = False
    if cancel.requested:
        raise JobCancelled()
    step = trainer.global_step
    callback.save(trainer, step)
    if not trainer.is_global_zero:
        return {}
    result = export_result(wrapper, job_dir, lora)
    if dry_run:
        return plan(job_dir, asked, planned, batches, result)
    return {
        "lora" if lora else "model": str(result),
        "checkpoint": str(checkpoint_path(job_dir, step)),
        "steps": step,
        "final_loss": callback.last_loss,
    }


def plan(
    job_dir: Path, settings: dict[str, Any], planned: int, batches: int, result: Path
) -> dict[str, Any]:
    """What the dry run measured and what the planned run would cost; its files are removed."""
    import torch

    lines = Progress(job_dir).path.read_text().splitlines()
    elapsed = [json.loads(line)["elapsed_s"] for line in lines]
    step_seconds = (elapsed[-1] - elapsed[0]) / (len(elapsed) - 1)
    files = [p for p in (job_dir / "checkpoints").iterdir() if p.is_file()]
    checkpoint_bytes = sum(p.stat().st_size for p in files)
    result_bytes = result.stat().st_size
    for path in (*files, result):
        path.unlink()
    written = math.ceil(planned / int(settings["checkpoint_every"]))
    keep = int(settings["keep_checkpoints"])
    kept = written if keep <= 0 else min(keep, written)
    cuda = torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0
    return {
        "dry_run": True,
        "measured_steps": len(elapsed) - 1,
        "step_seconds": step_seconds,
        "peak_memory_bytes": torch.cuda.max_memory_allocated() if cuda else peak_rss(),
        "memory": "cuda allocated" if cuda else "process RSS",
        "batch_size": int(settings["batch_size"]),
        "precision": str(settings["precision"]),
        "batches_per_epoch": batches,
        "planned_steps": planned,
        "planned_seconds": step_seconds * planned,
        "checkpoint_bytes": checkpoint_bytes,
        "result_bytes": result_bytes,
        "kept_checkpoints": kept,
        "planned_disk_bytes": kept * checkpoint_bytes + result_bytes,
        "seed_steps": SEED_STEPS,
        "seed_seconds": step_seconds * SEED_STEPS,
    }


def peak_rss() -> int:
    """This process's peak resident memory in bytes (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def latent_set(settings: dict[str, Any], model_config: dict[str, Any]) -> dict[str, Any] | None:
    """latents.json when export_dir is a `curator encode` latent set (and the model config then
    skips the pretransform's encode), else None."""
    latents = read_latents_info(Path(settings["export_dir"]))
    if latents is None:
        return None
    if not settings["ckpt"]:
        raise JobError(
            f"{settings['export_dir']} holds latents: training from them needs ckpt, the "
            "weights whose autoencoder made them"
        )
    model_config["training"]["pre_encoded"] = True
    print(f"training from latents (autoencoder {latents['autoencoder_sha256'][:12]})", flush=True)
    return latents


def batches_per_process(settings: dict[str, Any], batches: int) -> int:
    """An epoch's batches for one process: under DDP each reads its share of the set
    (Lightning's distributed sampler), so an epoch is that many optimiser steps."""
    processes = int(settings["devices"]) * int(settings["num_nodes"])
    return math.ceil(batches / processes)


def total_steps(settings: dict[str, Any], batches_per_epoch: int) -> int:
    if settings["steps"] is not None:
        return int(settings["steps"])
    return int(settings["epochs"]) * batches_per_epoch


def report_parameters(wrapper: Any) -> None:
    total = sum(p.numel() for p in wrapper.diffusion.parameters())
    trainable = sum(p.numel() for p in wrapper.diffusion.parameters() if p.requires_grad)
    print(f"model: {total} parameters, {trainable} trainable", flush=True)
