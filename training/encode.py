"""Encode an export's audio once through the model's autoencoder, into a `pre_encoded` latent set.

`python -m training encode JOB_DIR` reads JOB_DIR/job.json {"kind": "encode", "config": {...}}.
Config keys:
- export_dir (required): a `curator export` folder (dataset_config.json, and
  val_dataset_config.json if it has a validation set);
- model_config (required), ckpt (required): the model whose pretransform encodes the audio;
- out_dir (required): the latent set's folder; files already there are kept (a rerun goes on
  where an interrupted one stopped);
- batch_size (default 8): files of the same length encoded together; device: "auto" (default),
  "cpu" or "cuda"; trust_checkpoint: as for train.

The folder holds, per dataset of the export, <id>/<relpath>.npy (latents [channels, frames], as
the autoencoder wrote them, before the pretransform's scale: stable-audio-tools divides by it
when training with `pre_encoded`) and <id>/<relpath>.json (prompt, seconds_start,
seconds_total, padding_mask, segment_start, source), <id>/silence.npy (digital silence
encoded, the library's padding for short files), latent_metadata.py (moves seconds_start with
each latent crop), dataset_config.json and val_dataset_config.json (dataset_type
"pre_encoded", one model window per crop) and latents.json: the autoencoder's weight hash, the
model config, sample rate and downsampling ratio. Training from it checks the hash.
result.json's outputs: {"latents": out_dir, "files", "encoded", "kept", "skipped",
"audio_seconds" (of the files encoded), "encode_seconds" (in the autoencoder, with the copy
to the device), "autoencoder_sha256"}.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from .checkpoints import load_model_config, load_weights, pick_device
from .dataset import (
    SILENCE_PEAK,
    TRAINING_CONFIG,
    VALIDATION_CONFIGS,
    dataset_files,
    load_dataset_config,
    metadata_function,
)
from .jobfiles import Cancellation, JobCancelled, JobError, Progress, write_json_atomically

LATENTS_FILE = "latents.json"
METADATA_MODULE = "latent_metadata.py"
SILENCE_FILE = "silence.npy"
DEFAULTS: dict[str, Any] = {
    "export_dir": None,
    "model_config": None,
    "ckpt": None,
    "out_dir": None,
    "batch_size": 8,
    "device": "auto",
    "trust_checkpoint": False,
}

# Loaded by stable-audio-tools as the latent datasets' custom_metadata_module; it must stand
# alone (standard library only): the library pickles the function with dill.
LATENT_METADATA = '''"""seconds_start of a latent crop: segment start plus crop offset."""

import math

SECONDS_PER_FRAME = {seconds_per_frame!r}


def get_custom_metadata(info, latents):
    offset = info.get("latent_crop_start", 0) * SECONDS_PER_FRAME
    return {{"seconds_start": math.floor(info["segment_start"] + offset)}}
'''


def encode_settings(config: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise JobError(f"unknown encode config keys: {', '.join(unknown)}")
    settings = {**DEFAULTS, **config}
    for key in ("export_dir", "model_config", "ckpt", "out_dir"):
        if not settings[key]:
            raise JobError(f"encode config needs {key}")
    if int(settings["batch_size"]) < 1:
        raise JobError("batch_size must be at least 1")
    return settings


def autoencoder_hash(model: Any) -> str:
    """sha256 of the pretransform's weights (names, dtypes, shapes, bytes): what latents are of."""
    import torch

    if getattr(model, "pretransform", None) is None:
        raise JobError("the model has no pretransform (autoencoder): nothing to encode with")
    digest = hashlib.sha256()
    for name, tensor in sorted(model.pretransform.state_dict().items()):
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{data.dtype}:{tuple(data.shape)};".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def read_latents_info(folder: Path) -> dict[str, Any] | None:
    """latents.json of a latent set, or None when `folder` is not one."""
    path = folder / LATENTS_FILE
    if not path.is_file():
        return None
    try:
        return dict(json.loads(path.read_text()))
    except ValueError as error:
        raise JobError(f"{path}: not valid JSON ({error})") from None


def check_autoencoder(model: Any, folder: Path, info: dict[str, Any]) -> None:
    """Refuse a model whose autoencoder is not the one the latents were made with."""
    made_with = info.get("autoencoder_sha256")
    here = autoencoder_hash(model)
    if made_with != here:
        raise JobError(
            f"{folder}: these latents were made with another autoencoder (sha256 "
            f"{str(made_with)[:12]}, this model's is {here[:12]}); encode the export again with "
            "this model (`curator encode EXPORT --model-config ... --ckpt ...`) or train with "
            f"the model they were made with ({info.get('ckpt')})"
        )


def load_audio(filename: str, sample_rate: int, channels: int) -> Any:
    """[channels, samples] float32 at the model's rate, as the library's loader makes it."""
    import soundfile
    import torch
    import torchaudio.functional as F

    audio, rate = soundfile.read(filename, dtype="float32", always_2d=True)
    tensor = torch.from_numpy(audio.T.copy())
    if rate != sample_rate:
        tensor = F.resample(tensor, rate, sample_rate)
    if channels == 1:
        return tensor.mean(0, keepdim=True)
    if tensor.shape[0] == 1:
        return tensor.repeat(2, 1)
    return tensor[:2]


class Encoder:
    """The model's pretransform on a device, turning audio batches into latents."""

    def __init__(self, model: Any, model_config: dict[str, Any], device: str) -> None:
        self.pretransform = model.pretransform.to(device).eval()
        self.device = device
        self.sample_rate = int(model_config["sample_rate"])
        self.channels = int(model_config.get("audio_channels", 2))
        self.ratio = int(self.pretransform.downsampling_ratio)

    def frames(self, samples: int) -> int:
        return math.ceil(samples / self.ratio)

    def encode(self, batch: list[Any]) -> Any:
        """Latents [batch, channels, frames] of equal-length audio, padded to whole frames."""
        import torch

        length = self.frames(batch[0].shape[-1]) * self.ratio
        audio = torch.stack(
            [torch.nn.functional.pad(a, (0, length - a.shape[-1])) for a in batch]
        ).to(self.device)
        with torch.no_grad():
            # encode() divides by the scale; the library's pre_encoded training divides again.
            latents = self.pretransform.encode(audio) * self.pretransform.scale
        return latents.float().cpu().numpy()


def sample_metadata(
    filename: str, dataset: dict[str, Any], metadata: Any, audio: Any, sample_rate: int
) -> dict[str, Any] | None:
    """The prompt and timing the export's metadata module gives the whole file, or None if it
    rejects it."""
    info = {
        "path": filename,
        "relpath": os.path.relpath(filename, dataset["path"]),
        "timestamps": (0.0, 1.0),
        "seconds_start": 0,
        "seconds_total": math.ceil(audio.shape[-1] / sample_rate),
        "sample_rate": sample_rate,
    }
    if metadata is not None:
        extra = metadata(info, audio)
        if not isinstance(extra, dict) or extra.get("__reject__"):
            return None
        info.update(extra)
    record = {k: v for k, v in info.items() if is_json(v) and k not in ("timestamps", "path")}
    record["source"] = filename
    record["segment_start"] = segment_start(filename, dataset, info)
    return record


def is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def segment_start(filename: str, dataset: dict[str, Any], info: dict[str, Any]) -> float:
    """Exact seconds of the file's start in its track: the export manifest's, where there is
    one (the metadata module floors it), else the metadata's seconds_start."""
    root = Path(dataset.get("custom_metadata_module") or dataset["path"]).parent
    manifest = manifest_starts(root)
    relative = os.path.relpath(os.path.realpath(filename), os.path.realpath(root))
    return float(manifest.get(relative.replace(os.sep, "/"), info.get("seconds_start", 0)))


MANIFESTS: dict[Path, dict[str, float]] = {}


def manifest_starts(root: Path) -> dict[str, float]:
    if root not in MANIFESTS:
        starts: dict[str, float] = {}
        path = root / "manifest.jsonl"
        if path.is_file():
            for line in path.read_text().splitlines():
                record = json.loads(line)
                if "seconds_start" in record:
                    starts[record["filepath"]] = float(record["seconds_start"])
        MANIFESTS[root] = starts
    return MANIFESTS[root]


def target(out_dir: Path, dataset: dict[str, Any], filename: str) -> Path:
    """<out>/<dataset id>/<relpath without extension>.npy"""
    relative = Path(os.path.relpath(filename, dataset["path"])).with_suffix(".npy")
    return out_dir / str(dataset.get("id") or "dataset") / relative


def save_sample(path: Path, latents: Any, record: dict[str, Any]) -> None:
    """The .json, then the .npy: the library lists .npy files, so a sample appears whole."""
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomically(path.with_suffix(".json"), record)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        np.save(handle, latents)
    os.replace(tmp, path)


def save_silence(encoder: Encoder, folder: Path, samples: int) -> None:
    """A model window of digital silence, encoded: [1, channels, frames] as the library loads it."""
    import numpy as np
    import torch

    path = folder / SILENCE_FILE
    if path.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    latents = encoder.encode([torch.zeros(encoder.channels, samples)])
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        np.save(handle, latents[:1])
    os.replace(tmp, path)


def pre_encoded_config(
    source: dict[str, Any], out_dir: Path, crop_frames: int, training: bool
) -> dict[str, Any]:
    """The `pre_encoded` dataset config for the latents of an export's audio_dir config."""
    datasets = []
    for dataset in source["datasets"]:
        # Absolute, as the export's: stable-audio-tools' own train.py reads it from anywhere.
        entry = {
            "id": dataset.get("id") or "dataset",
            "path": str(out_dir.resolve() / str(dataset.get("id") or "dataset")),
            "custom_metadata_module": str(out_dir.resolve() / METADATA_MODULE),
        }
        if "weight" in dataset:
            entry["weight"] = dataset["weight"]
        datasets.append(entry)
    return {
        "dataset_type": "pre_encoded",
        "datasets": datasets,
        "latent_crop_length": crop_frames,
        "random_crop": training and source.get("random_crop", True),
        "drop_last": source.get("drop_last", training),
    }


def run_encode(job_dir: Path, config: dict[str, Any], cancel: Cancellation) -> dict[str, Any]:
    """Encode as the job config says; return result.json's `outputs`."""
    import torch
    from stable_audio_tools.models.factory import create_model_from_config

    settings = encode_settings(config)
    export_dir = Path(settings["export_dir"])
    out_dir = Path(settings["out_dir"])
    sources = export_configs(export_dir)
    model_config = load_model_config(Path(settings["model_config"]))
    model = create_model_from_config(model_config)
    load_weights(model, Path(settings["ckpt"]), settings["trust_checkpoint"])
    digest = autoencoder_hash(model)
    previous = read_latents_info(out_dir)
    if previous is not None and previous.get("autoencoder_sha256") != digest:
        raise JobError(
            f"{out_dir} holds latents of another autoencoder (sha256 "
            f"{str(previous.get('autoencoder_sha256'))[:12]}); choose another --out"
        )
    device = pick_device(settings["device"])
    torch.set_grad_enabled(False)
    encoder = Encoder(model, model_config, device)
    crop_frames = int(model_config["sample_size"]) // encoder.ratio
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomically(
        out_dir / LATENTS_FILE,
        {
            "autoencoder_sha256": digest,
            "model_config": str(Path(settings["model_config"]).resolve()),
            "ckpt": str(Path(settings["ckpt"]).resolve()),
            "export_dir": str(export_dir.resolve()),
            "sample_rate": encoder.sample_rate,
            "downsampling_ratio": encoder.ratio,
            "latent_crop_length": crop_frames,
        },
    )
    (out_dir / METADATA_MODULE).write_text(
        LATENT_METADATA.format(seconds_per_frame=encoder.ratio / encoder.sample_rate)
    )
    work = [
        (dataset, filename, metadata_function(dataset))
        for _, source in sources
        for dataset in source["datasets"]
        for filename in dataset_files(dataset)
    ]
    counts = encode_files(encoder, work, out_dir, settings, job_dir, cancel)
    for dataset in {str(d.get("id") or "dataset"): d for _, s in sources for d in s["datasets"]}:
        save_silence(encoder, out_dir / dataset, int(model_config["sample_size"]))
    for name, source in sources:
        write_json_atomically(
            out_dir / name,
            pre_encoded_config(source, out_dir, crop_frames, name == TRAINING_CONFIG),
        )
    print(
        f"encoded {counts['encoded']}, kept {counts['kept']} already there, skipped "
        f"{counts['skipped']} of {len(work)} files into {out_dir}",
        flush=True,
    )
    return {"latents": str(out_dir), "files": len(work), **counts, "autoencoder_sha256": digest}


def export_configs(export_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file name, resolved config) of the export's training and validation sets."""
    if not export_dir.is_dir():
        raise JobError(f"export_dir {export_dir}: no such folder")
    found = []
    for name in (TRAINING_CONFIG, *VALIDATION_CONFIGS):
        config = load_dataset_config(export_dir, name)
        if config is not None and config.get("dataset_type") != "audio_dir":
            raise JobError(f"{export_dir / name}: already pre-encoded; encode the audio export")
        if config is not None:
            # The library's trainer reads val_dataset_config.json; both names map to it.
            found.append(
                (TRAINING_CONFIG if name == TRAINING_CONFIG else VALIDATION_CONFIGS[0], config)
            )
    if not found:
        raise JobError(
            f"{export_dir / TRAINING_CONFIG}: no such file (is this a `curator export` folder?)"
        )
    return found


def encode_files(
    encoder: Encoder,
    work: list[tuple[dict[str, Any], str, Any]],
    out_dir: Path,
    settings: dict[str, Any],
    job_dir: Path,
    cancel: Cancellation,
) -> dict[str, Any]:
    """Encode every file not already encoded, in batches of equal length; progress per batch.

    Returns the counts and the seconds of audio encoded and spent in the autoencoder."""
    progress = Progress(job_dir)
    counts = {"encoded": 0, "kept": 0, "skipped": 0}
    timing = {"audio_seconds": 0.0, "encode_seconds": 0.0}
    pending: list[tuple[Path, Any, dict[str, Any]]] = []

    def flush() -> None:
        if not pending:
            return
        began = time.monotonic()
        latents = encoder.encode([audio for _, audio, _ in pending])
        timing["encode_seconds"] += time.monotonic() - began
        timing["audio_seconds"] += sum(a.shape[-1] for _, a, _ in pending) / encoder.sample_rate
        for (path, audio, record), latent in zip(pending, latents, strict=True):
            frames = encoder.frames(audio.shape[-1])
            save_sample(path, latent[:, :frames], {**record, "padding_mask": [1] * frames})
        counts["encoded"] += len(pending)
        pending.clear()

    for done, (dataset, filename, metadata) in enumerate(work, start=1):
        if cancel.requested:
            raise JobCancelled()
        path = target(out_dir, dataset, filename)
        if path.is_file() and path.with_suffix(".json").is_file():
            counts["kept"] += 1
        else:
            audio = load_audio(filename, encoder.sample_rate, encoder.channels)
            record = usable(filename, dataset, metadata, audio, encoder.sample_rate)
            if record is None:
                counts["skipped"] += 1
            else:
                if pending and pending[0][1].shape[-1] != audio.shape[-1]:
                    flush()
                pending.append((path, audio, record))
                if len(pending) >= int(settings["batch_size"]):
                    flush()
        if not pending or done == len(work):
            flush()
            progress.write(step=done, total_steps=len(work), **counts)
    flush()
    return {**counts, **{k: round(v, 3) for k, v in timing.items()}}


def usable(
    filename: str, dataset: dict[str, Any], metadata: Any, audio: Any, sample_rate: int
) -> dict[str, Any] | None:
    """The sample's record, or None (with a warning) where the library would skip the file."""
    if audio.numel() == 0 or float(audio.abs().max()) < SILENCE_PEAK:
        print(f"warning: skipped {filename}: silent (peak below -60 dBFS)", flush=True)
        return None
    record = sample_metadata(filename, dataset, metadata, audio, sample_rate)
    if record is None:
        print(f"warning: skipped {filename}: rejected by get_custom_metadata", flush=True)
    return record
