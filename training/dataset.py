"""The export's dataset config, made absolute and checked before training starts.

stable-audio-tools' audio_dir dataset retries a random file whenever one is silent, unreadable or
rejected by the metadata module, so a set where every file fails loops forever. Here the files
are checked first, in the library's order, until one loads, is not silent and gets a prompt.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from .jobfiles import JobError

TRAINING_CONFIG = "dataset_config.json"
# The export writes val_dataset_config.json (train.py's --val-dataset-config); both names work.
VALIDATION_CONFIGS = ("val_dataset_config.json", "dataset_config.validation.json")
# The library's `is_silence` threshold: a crop whose peak is below -60 dBFS is skipped.
SILENCE_PEAK = 10 ** (-60 / 20)
SHOWN_PROBLEMS = 5
DATASET_TYPES = ("audio_dir", "pre_encoded")


def resolve_paths(config: dict[str, Any], export_dir: Path) -> dict[str, Any]:
    """Relative `path`, `custom_metadata_module` and `filelist_path` are relative to export_dir."""
    for dataset in config.get("datasets", []):
        for key in ("path", "custom_metadata_module", "filelist_path"):
            value = dataset.get(key)
            if isinstance(value, str) and not Path(value).is_absolute():
                dataset[key] = str((export_dir / value).resolve())
    return config


def load_dataset_config(export_dir: Path, name: str = TRAINING_CONFIG) -> dict[str, Any] | None:
    """The dataset config `name` from export_dir, resolved; None if the export has none."""
    path = export_dir / name
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except ValueError as error:
        raise JobError(f"{path}: not valid JSON ({error})") from None
    if config.get("dataset_type") not in DATASET_TYPES:
        raise JobError(
            f"{path}: dataset_type must be audio_dir or pre_encoded (`curator encode`), "
            f"not {config.get('dataset_type')!r}"
        )
    if not config.get("datasets"):
        raise JobError(f"{path}: no datasets listed")
    return resolve_paths(config, export_dir)


def metadata_function(dataset: dict[str, Any]) -> Any | None:
    """The dataset's `get_custom_metadata`, imported as the library does, or None."""
    module_path = dataset.get("custom_metadata_module")
    if module_path is None:
        return None
    if not Path(module_path).is_file():
        raise JobError(f"custom_metadata_module {module_path}: no such file")
    spec = importlib.util.spec_from_file_location("metadata_module", module_path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    except Exception as error:
        raise JobError(f"custom_metadata_module {module_path}: {error!r}") from None
    if not hasattr(module, "get_custom_metadata"):
        raise JobError(f"custom_metadata_module {module_path}: no get_custom_metadata function")
    return module.get_custom_metadata


def dataset_files(dataset: dict[str, Any]) -> list[str]:
    from stable_audio_tools.data.dataset import get_audio_filenames

    path = dataset.get("path")
    if not path or not Path(path).is_dir():
        raise JobError(f"dataset {dataset.get('id')!r}: audio folder {path} does not exist")
    return list(
        get_audio_filenames(
            path, dataset.get("keywords"), filelist_path=dataset.get("filelist_path")
        )
    )


def first_problem(filename: str, dataset: dict[str, Any], metadata: Any | None) -> str | None:
    """Why the library would skip `filename`, or None if it would train on it."""
    import soundfile
    import torch

    try:
        audio, sample_rate = soundfile.read(filename, dtype="float32", always_2d=True)
    except Exception as error:
        return f"{filename}: unreadable ({error})"
    if audio.size == 0 or float(abs(audio).max()) < SILENCE_PEAK:
        return f"{filename}: silent (peak below -60 dBFS)"
    if metadata is None:
        return None
    info = {
        "path": filename,
        "relpath": os.path.relpath(filename, dataset["path"]),
        "timestamps": (0.0, 1.0),
        "seconds_start": 0,
        "seconds_total": len(audio) // sample_rate,
        "sample_rate": sample_rate,
    }
    try:
        extra = metadata(info, torch.from_numpy(audio.T.copy()))
    except Exception as error:
        return f"{filename}: get_custom_metadata failed ({error!r})"
    if not isinstance(extra, dict) or extra.get("__reject__"):
        return f"{filename}: rejected by get_custom_metadata"
    return None


def check_dataset(config: dict[str, Any], batch_size: int, label: str) -> int:
    """Fail unless the set has at least one usable file and a full batch; return the file count."""
    if config["dataset_type"] == "pre_encoded":
        return check_latents(config, batch_size, label)
    count = 0
    for dataset in config["datasets"]:
        files = dataset_files(dataset)
        count += len(files)
        metadata = metadata_function(dataset)
        problems = []
        for filename in files:
            problem = first_problem(filename, dataset, metadata)
            if problem is None:
                break
            problems.append(problem)
        else:
            shown = "; ".join(problems[:SHOWN_PROBLEMS])
            raise JobError(
                f"{label} dataset {dataset.get('id')!r} ({dataset['path']}): no usable audio "
                f"among {len(files)} files, training would loop forever. {shown}"
            )
        for problem in problems:
            print(f"warning: skipped by the dataset: {problem}", flush=True)
    if count < batch_size:
        raise JobError(f"{label} dataset has {count} files, fewer than batch_size {batch_size}")
    return count


def check_latents(config: dict[str, Any], batch_size: int, label: str) -> int:
    """A latent set (`curator encode`): every .npy has its .json, and a full batch of them."""
    from stable_audio_tools.data.dataset import get_latent_filenames

    count = 0
    for dataset in config["datasets"]:
        path = dataset.get("path")
        if not path or not Path(path).is_dir():
            raise JobError(f"dataset {dataset.get('id')!r}: latent folder {path} does not exist")
        pairs = get_latent_filenames(path, dataset.get("latent_extension", "npy"))
        for latents, metadata in pairs:
            if not Path(metadata).is_file():
                raise JobError(f"{latents}: no {Path(metadata).name} beside it")
        count += len(pairs)
    if count < batch_size:
        raise JobError(
            f"{label} dataset has {count} latent files, fewer than batch_size {batch_size}"
        )
    return count
