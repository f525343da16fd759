"""Generate audio from prompts with a base model, a fine-tuned one, or a base plus LoRAs.

`python -m training generate JOB_DIR` reads JOB_DIR/job.json {"kind": "generate", "config": {...}}.
Config keys:
- model_config (required), ckpt (required; .ckpt or .safetensors: a base model, a train job's
  model.safetensors or one of its full-fine-tune checkpoints);
- loras: [{"path", "strength" (default 1.0)}]: LoRA files (a train job's lora.safetensors or a
  checkpoint's .lora.safetensors), applied on top of ckpt;
- prompts (required, a list), negative_prompt (default none), seconds (default 10), steps
  (default 100), cfg_scale (default 7), sampler (default the library's, "euler"), seed (default
  random; item N uses seed + N), device ("auto", "cpu" or "cuda");
- trust_checkpoint (default false): load a .ckpt (ckpt or LoRA) that holds more than weights,
  which needs full unpickling and so could run code; without it such a file is refused.

Outputs in JOB_DIR: audio/NN-<slug>.wav and audio/NN-<slug>.json (what produced it: prompt,
negative prompt, seed, steps, cfg_scale, sampler, seconds, sample_rate, model_config, ckpt, loras
with strengths), and progress.jsonl: a line per sampling step {"step", "total_steps", "item",
"items"}, where step counts within the item (1..total_steps) and item is 1-based.
result.json's outputs: {"audio": the .wav paths in prompt order, "seed": the first item's seed}.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from .checkpoints import apply_loras, load_model_config, load_weights, pick_device
from .jobfiles import JobError, Progress

# generate_diffusion_cond's own default (stable-audio-tools 0.0.20), passed explicitly so that
# the JSON beside each file names the sampler that made it.
LIBRARY_SAMPLER = "euler"
DEFAULTS: dict[str, Any] = {
    "model_config": None,
    "ckpt": None,
    "loras": [],
    "prompts": None,
    "negative_prompt": None,
    "seconds": 10.0,
    "steps": 100,
    "cfg_scale": 7.0,
    "sampler": None,
    "seed": None,
    "device": "auto",
    "trust_checkpoint": False,
}


def generate_settings(config: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise JobError(f"unknown generate config keys: {', '.join(unknown)}")
    settings = {**DEFAULTS, **config}
    for key in ("model_config", "ckpt"):
        if not settings[key]:
            raise JobError(f"generate config needs {key}")
    prompts = settings["prompts"]
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise JobError("generate config needs prompts: a non-empty list of strings")
    if float(settings["seconds"]) <= 0 or int(settings["steps"]) < 1:
        raise JobError("seconds must be positive and steps at least 1")
    if settings["device"] not in ("auto", "cpu", "cuda"):
        raise JobError("device must be auto, cpu or cuda")
    settings["sampler"] = settings["sampler"] or LIBRARY_SAMPLER
    if settings["seed"] is None:
        settings["seed"] = random.randrange(2**31 - len(prompts))
    return settings


def slug(text: str, length: int = 40) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:length].rstrip("-") or "untitled"


def load_model(settings: dict[str, Any], device: str) -> Any:
    from stable_audio_tools.models.factory import create_model_from_config

    model_config = load_model_config(Path(settings["model_config"]))
    model = create_model_from_config(model_config)
    load_weights(model, Path(settings["ckpt"]), settings["trust_checkpoint"])
    if settings["loras"]:
        apply_loras(
            model, settings["loras"], model_config["model_type"], settings["trust_checkpoint"]
        )
    return model.to(device).eval().requires_grad_(False), model_config


def sample_length(seconds: float, model: Any) -> int:
    """Samples to generate: `seconds` rounded up to what the model's latent frames allow."""
    wanted = round(seconds * model.sample_rate)
    frame = model.min_input_length
    return -(-wanted // frame) * frame


def write_item(
    folder: Path, index: int, audio: Any, sample_rate: int, record: dict[str, Any]
) -> Path:
    """NN-<slug>.wav (16-bit, only scaled down if it would clip) and its JSON."""
    import numpy
    import soundfile

    name = f"{index:02d}-{slug(record['prompt'])}"
    samples = audio.float().cpu().numpy().T
    samples = numpy.nan_to_num(samples)
    peak = float(numpy.abs(samples).max()) if samples.size else 0.0
    if peak > 1.0:
        samples = samples / peak
    wav = folder / f"{name}.wav"
    soundfile.write(str(wav), samples, sample_rate, subtype="PCM_16")
    (folder / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {wav}", flush=True)
    return wav


def run_generate(job_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Generate every prompt; return result.json's `outputs`."""
    import torch
    from stable_audio_tools.inference.generation import generate_diffusion_cond

    settings = generate_settings(config)
    device = pick_device(settings["device"])
    model, model_config = load_model(settings, device)
    seconds = float(settings["seconds"])
    length = sample_length(seconds, model)
    keep = round(seconds * model.sample_rate)
    folder = job_dir / "audio"
    folder.mkdir(parents=True, exist_ok=True)
    progress = Progress(job_dir)
    prompts: list[str] = settings["prompts"]
    files = []
    for index, prompt in enumerate(prompts, start=1):
        seed = int(settings["seed"]) + index - 1
        conditioning = [{"prompt": prompt, "seconds_start": 0, "seconds_total": seconds}]
        negative = None
        if settings["negative_prompt"]:
            negative = [
                {
                    "prompt": settings["negative_prompt"],
                    "seconds_start": 0,
                    "seconds_total": seconds,
                }
            ]

        def on_step(state: dict[str, Any], item: int = index) -> None:
            progress.write(
                step=int(state["i"]) + 1,
                total_steps=int(settings["steps"]),
                item=item,
                items=len(prompts),
            )

        print(f"[{index}/{len(prompts)}] {prompt!r} seed {seed}", flush=True)
        with torch.no_grad():
            audio = generate_diffusion_cond(
                model,
                steps=int(settings["steps"]),
                cfg_scale=float(settings["cfg_scale"]),
                conditioning=conditioning,
                negative_conditioning=negative,
                sample_size=length,
                seed=seed,
                device=device,
                sampler_type=settings["sampler"],
                callback=on_step,
                disable_tqdm=True,
            )
        record = {
            "prompt": prompt,
            "negative_prompt": settings["negative_prompt"],
            "seed": seed,
            "steps": int(settings["steps"]),
            "cfg_scale": float(settings["cfg_scale"]),
            "sampler": settings["sampler"],
            "seconds": seconds,
            "sample_rate": model.sample_rate,
            "model_config": str(Path(settings["model_config"]).resolve()),
            "ckpt": str(Path(settings["ckpt"]).resolve()),
            "loras": [
                {
                    "path": str(Path(lora["path"]).resolve()),
                    "strength": float(lora.get("strength", 1.0)),
                }
                for lora in settings["loras"]
            ],
            "model_type": model_config["model_type"],
        }
        files.append(str(write_item(folder, index, audio[0, :, :keep], model.sample_rate, record)))
    return {"audio": files, "seed": settings["seed"]}
