"""Writes what stable-audio-tools 0.0.20 needs beside the audio: configs, loader, README."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from curator.api import Exporter, PluginContext

from .settings import StableAudioExportSettings

METADATA_MODULE = "custom_metadata.py"
# Named after train.py's --dataset-config and --val-dataset-config.
CONFIGS = {"train": "dataset_config.json", "validation": "val_dataset_config.json"}


class StableAudioExporter(Exporter):
    """An `audio_dir` dataset per split, prompts from a `custom_metadata_module`.

    Paths in the dataset configs are absolute and name the export's final folder:
    stable-audio-tools uses them as given, relative ones from the trainer's working folder.
    """

    name = "stable-audio-tools"
    version = "1"

    def setup(self, context: PluginContext) -> None:
        super().setup(context)
        self.options = StableAudioExportSettings.from_mapping(context.settings)

    def export(
        self, records: Sequence[Mapping[str, Any]], out: Path, final: Path | None = None
    ) -> Path:
        options = getattr(self, "options", None) or StableAudioExportSettings()
        final = (final or out).resolve()
        module = resources.files(__package__).joinpath(METADATA_MODULE).read_text("utf-8")
        (out / METADATA_MODULE).write_text(module, encoding="utf-8")
        splits = [s for s in CONFIGS if any(r["split"] == s for r in records)]
        for split in splits:
            config = dataset_config(split, final, options)
            text = json.dumps(config, indent=2) + "\n"
            (out / CONFIGS[split]).write_text(text, encoding="utf-8")
        (out / "README.md").write_text(readme(records, final, splits), encoding="utf-8")
        return out


def dataset_config(split: str, folder: Path, options: StableAudioExportSettings) -> dict[str, Any]:
    """stable-audio-tools' dataset config for one split's folder of audio."""
    training = split == "train"
    return {
        "dataset_type": "audio_dir",
        "datasets": [
            {
                "id": f"{options.dataset_id}-{split}",
                "path": str(folder / split),
                "custom_metadata_module": str(folder / METADATA_MODULE),
            }
        ],
        "random_crop": options.random_crop and training,
        # A validation set smaller than one batch would otherwise yield nothing at all.
        "drop_last": training,
    }


def readme(records: Sequence[Mapping[str, Any]], folder: Path, splits: Sequence[str]) -> str:
    """What the folder is and how to train on it; counts only, so it is reproducible."""
    lines = [_split_line(records, split) for split in splits]
    val = (
        f" \\\n    --val-dataset-config {folder / CONFIGS['validation']}"
        if "validation" in splits
        else ""
    )
    return _README.format(
        splits="\n".join(lines),
        folder=folder,
        train=folder / CONFIGS["train"] if "train" in splits else "(no train split)",
        val=val,
    )


def _split_line(records: Sequence[Mapping[str, Any]], split: str) -> str:
    chosen = [r for r in records if r["split"] == split]
    segments = {r["segment_id"] for r in chosen}
    hours = sum(r["duration"] for r in chosen) / 3600
    tracks = {r["track_id"] for r in chosen}
    return (
        f"- `{split}/`: {len(chosen)} audio files, {len(segments)} segments "
        f"(the rest are repeated copies) from {len(tracks)} tracks, {hours:.2f} h"
    )


_README = """\
# Training set exported by Curator

A dataset for [stable-audio-tools](https://github.com/Stability-AI/stable-audio-tools)
0.0.20, ready to train on without edits. Each segment is its own audio file; a segment the
selection repeats has extra copies (hard links where the disk allows), because
stable-audio-tools' `audio_dir` dataset takes one crop per file per epoch.

{splits}

- `train/`, `validation/`: the audio, one file per segment and copy (split by track).
- `manifest.jsonl`: one line per audio file: `filepath` (relative to this folder),
  `start`, `duration`, `prompt`, tags per facet, `bpm`, `key`, `scale`, `source`,
  `track_id`, `segment_id`, `split`, `repeats`, `copy`, `seconds_start`, `seconds_total`.
- `metadata.parquet`: the same records as a table.
- `dataset_config.json`, `val_dataset_config.json`: stable-audio-tools dataset configs.
- `custom_metadata.py`: gives each sample its prompt and timing from the manifest.
- `export.json`: the selection, settings, counts and content hash of this export.

## Train

```bash
python train.py --dataset-config {train}{val} \\
    --model-config model_config.json --pretrained-ckpt-path model.ckpt --name my-fine-tune
```

(`train.py` is in the stable-audio-tools repository; Curator's own training jobs read the
same configs.) Each sample's `prompt` comes from the manifest; `seconds_start` and
`seconds_total` are the crop's position within the segment and the segment's length, or,
if exported with `--seconds track`, its position within the source track and the track's
length.

## Paths

The dataset configs hold absolute paths to this folder ({folder}), because
stable-audio-tools uses them as given. Everything else refers to files relative to this
folder. After moving the folder, export again to the new place (the audio is reused) or
change the `path` and `custom_metadata_module` entries in the two configs.
"""
