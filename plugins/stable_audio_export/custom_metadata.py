"""Prompts for stable-audio-tools' `audio_dir` dataset, looked up in this export's manifest.

stable-audio-tools loads this file as the dataset's `custom_metadata_module` and calls
`get_custom_metadata(info, audio)` for every sample; what it returns (prompt, seconds_start,
seconds_total) overrides the sample's metadata. The manifest beside this file is read once
per process into a dict keyed by the file's path relative to this folder, so each call is
one dict lookup, however large the export.

The dict lives in `sys.modules`, not in a global: stable-audio-tools pickles this function
with dill and unpickles it for every sample, and dill copies this module's globals along
(the module cannot be imported by name), so a manifest held in a global would be copied on
every sample. The globals here are a few short strings.

Standard library only, Python 3.10: it runs inside the training environment.
"""

import json
import math
import os
import sys
import types

MANIFEST = "manifest.jsonl"
_ROOT = os.path.dirname(os.path.realpath(__file__))
_CACHE = "_curator_export_manifests"


def get_custom_metadata(info, audio):
    """The prompt and timing conditioning of the file `info["path"]`."""
    entry = load_manifest(_ROOT).get(relative_path(info["path"], _ROOT))
    if entry is None:
        # Not a file this export wrote: better skipped than trained on without a prompt.
        return {"__reject__": True}
    prompt, seconds_start, seconds_total, duration = entry
    offset = crop_offset(info, audio, duration)
    return {
        "prompt": prompt,
        "seconds_start": math.floor(seconds_start + offset),
        "seconds_total": math.ceil(seconds_total),
    }


def load_manifest(root):
    """file path -> (prompt, seconds_start, seconds_total, duration), read once per process."""
    cache = sys.modules.get(_CACHE)
    if cache is None:
        cache = sys.modules.setdefault(_CACHE, types.ModuleType(_CACHE))
    entries = vars(cache).get(root)
    if entries is None:
        entries = {}
        with open(os.path.join(root, MANIFEST), encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                entries[record["filepath"]] = (
                    record["prompt"],
                    float(record["seconds_start"]),
                    float(record["seconds_total"]),
                    float(record["duration"]),
                )
        vars(cache)[root] = entries
    return entries


def relative_path(path, root):
    return os.path.relpath(os.path.realpath(path), root).replace(os.sep, "/")


def crop_offset(info, audio, duration):
    """Seconds from the file's start to the crop's: exact, where stable-audio-tools floors.

    Its `t_start` is the crop's offset over max(file length, crop length).
    """
    timestamps = info.get("timestamps")
    rate = info.get("sample_rate")
    if not timestamps or not rate:
        return float(info.get("seconds_start", 0))
    return float(timestamps[0]) * max(duration, audio.shape[-1] / rate)
