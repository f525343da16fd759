"""Load model weights strictly: a checkpoint whose keys do not match the model is an error.

stable-audio-tools' `copy_state_dict` skips keys that do not match, so a wrong prefix would load
nothing and train from noise. Here every model key must be filled and every checkpoint key used.

Accepted layouts:
- an unwrapped model (Stable Audio Open 1.0's model.safetensors, or model.ckpt holding
  {"state_dict": ...}; our export's model.safetensors): keys `model.…`, `conditioner.…`,
  `pretransform.…`, exactly `model.state_dict()`;
- a training checkpoint (Lightning's, from checkpoints/): keys `diffusion.…` and, with EMA,
  `diffusion_ema.ema_model.…`, whose EMA weights replace `model.…` as the training wrapper's
  export does.
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .jobfiles import JobError

SHOWN_KEYS = 8
WRAPPER_PREFIX = "diffusion."
EMA_PREFIX = "diffusion_ema.ema_model."


def pick_device(name: str) -> str:
    """The torch device a job asked for ("cpu", "cuda", "auto"); cuda without one is an error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise JobError("device cuda asked for, but torch sees no CUDA device")
    return name


def load_model_config(path: Path) -> dict[str, Any]:
    """The model config, with a relative T5 `model_path` resolved against the config's folder."""
    if not path.is_file():
        raise JobError(f"model config {path}: no such file")
    try:
        config = json.loads(path.read_text())
    except ValueError as error:
        raise JobError(f"model config {path}: not valid JSON ({error})") from None
    for conditioner in config.get("model", {}).get("conditioning", {}).get("configs", []):
        model_path = conditioner.get("config", {}).get("model_path")
        if model_path and not Path(model_path).is_absolute():
            conditioner["config"]["model_path"] = str((path.parent / model_path).resolve())
    return config


def read_checkpoint(path: Path, trust: bool = False, mmap: bool = False) -> dict[str, Any]:
    """The raw dict inside a .safetensors or .ckpt file.

    A .ckpt is a pickle, and unpickling can run any code the file names, so it is read with
    `weights_only=True` (tensors, numbers, strings, containers: what Stable Audio Open's
    model.ckpt and this trainer's own Lightning checkpoints hold). A file that needs more is
    refused unless `trust` (the job config's trust_checkpoint, `--trust-checkpoint`) says the
    user vouches for it. mmap: map the file instead of reading it (a full fine-tune's
    checkpoint is many GB; only its key names are wanted).
    """
    if not path.is_file():
        raise JobError(f"checkpoint {path}: no such file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        if not trust:
            raise JobError(untrusted_message(path, error)) from None
    return torch.load(str(path), map_location="cpu", weights_only=False, mmap=mmap)


def untrusted_message(path: Path, error: Exception) -> str:
    # torch's message is a page long; its first line after the advice names the object.
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
    what = f" ({found.group(1)})" if found else ""
    return (
        f"checkpoint {path} holds Python objects{what}, not only weights: loading it could "
        "run code, so it is refused. Convert it to .safetensors, or pass --trust-checkpoint "
        "if you trust where it came from"
    )


def check_trusted(path: Path, trust: bool) -> None:
    """Refuse a .ckpt that needs full unpickling, before a library loads it with
    weights_only=False (stable-audio-tools' LoRA loader, Lightning's resume): a file that
    passes weights_only unpickles to the same plain objects either way."""
    if path.suffix != ".safetensors":
        read_checkpoint(path, trust)


def checkpoint_io(trust: bool) -> Any:
    """A Lightning CheckpointIO whose resume reads go through read_checkpoint."""
    from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

    class CheckedCheckpointIO(TorchCheckpointIO):
        def load_checkpoint(self, path: Any, map_location: Any = None) -> dict[str, Any]:
            return read_checkpoint(Path(path), trust)

    return CheckedCheckpointIO()


def unwrap(raw: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The model's state dict from any of the accepted layouts."""
    state = raw.get("state_dict", raw)
    if not any(key.startswith(WRAPPER_PREFIX) for key in state):
        return dict(state)
    model = {k[len(WRAPPER_PREFIX) :]: v for k, v in state.items() if k.startswith(WRAPPER_PREFIX)}
    ema = {k[len(EMA_PREFIX) :]: v for k, v in state.items() if k.startswith(EMA_PREFIX)}
    for key, value in ema.items():
        model["model." + key] = value
    return model


def describe(keys: list[str]) -> str:
    shown = ", ".join(sorted(keys)[:SHOWN_KEYS])
    more = len(keys) - SHOWN_KEYS
    return shown + (f" … and {more} more" if more > 0 else "")


def shapes(state: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in state.items()}


def key_problems(
    expected: Mapping[str, tuple[int, ...]], given: Mapping[str, tuple[int, ...]]
) -> list[str]:
    """Missing keys, unexpected keys and shape mismatches, one phrase each; empty if they fit."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    resized = [
        f"{k} {given[k]} vs {expected[k]}"
        for k in expected
        if given.get(k, expected[k]) != expected[k]
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {describe(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {describe(unexpected)}")
    if resized:
        problems.append(f"{len(resized)} shape mismatches: {describe(resized)}")
    return problems


def load_weights(model: torch.nn.Module, path: Path, trust: bool = False) -> None:
    """Fill every weight of `model` from `path`, or raise a JobError naming the keys that differ.

    trust: load a .ckpt that needs full unpickling (see read_checkpoint).
    """
    state = unwrap(read_checkpoint(path, trust))
    problems = key_problems(shapes(model.state_dict()), shapes(state))
    if problems:
        hint = ""
        if state and all(".parametrizations." in k for k in state):
            hint = " (this looks like LoRA adapters: pass it as a LoRA, with the base as ckpt)"
        raise JobError(f"checkpoint {path} does not match the model{hint}: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
    print(f"loaded {len(state)} tensors from {path}", flush=True)


def lora_keys(model: Any, index: int) -> dict[str, tuple[int, ...]]:
    """The adapter tensors of LoRA number `index` on a diffusion model's DiT and conditioner."""
    from stable_audio_tools.models.lora import name_is_lora

    marker = f".parametrizations.weight.{index}."
    keys = {}
    for part in (model.model, model.conditioner):
        keys.update({k: v for k, v in shapes(part.state_dict()).items() if name_is_lora(k)})
    return {k: v for k, v in keys.items() if marker in k}


def check_lora(model: Any, index: int, state: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse a LoRA file that does not fill exactly the adapters added for it."""
    from stable_audio_tools.models.lora import remap_lora_state_dict

    problems = key_problems(lora_keys(model, index), shapes(remap_lora_state_dict(state, index)))
    if problems:
        raise JobError(f"LoRA {path} does not match the model: " + "; ".join(problems))


def apply_loras(
    model: Any, loras: list[dict[str, Any]], model_type: str, trust: bool = False
) -> None:
    """Attach LoRA files (each {"path", "strength"}) with the library's loader, checked strictly.

    trust: accept a .ckpt LoRA that needs full unpickling (see read_checkpoint).
    """
    from stable_audio_tools.models.lora import (
        load_and_apply_loras,
        load_lora_checkpoint,
        set_lora_strength,
    )

    paths = [str(Path(lora["path"])) for lora in loras]
    for path in paths:
        if not Path(path).is_file():
            raise JobError(f"LoRA {path}: no such file")
        check_trusted(Path(path), trust)
    load_and_apply_loras(model, paths, model_type)
    for index, lora in enumerate(loras):
        state, _ = load_lora_checkpoint(paths[index])
        check_lora(model, index, state, Path(paths[index]))
        strength = float(lora.get("strength", 1.0))
        set_lora_strength(model.model, strength, lora_index=index)
        set_lora_strength(model.conditioner, strength, lora_index=index)
        print(f"LoRA {paths[index]} applied at strength {strength}", flush=True)
