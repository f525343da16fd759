"""The CLAP plugin's settings: the project's `[plugins.clap]` table, checked by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curator.api import device_setting, precision_setting, setting, settings_from_table
from curator.errors import SettingsError

DEFAULT_MODEL = "laion/larger_clap_music"
POOLINGS = ("mean", "max")


@dataclass(frozen=True)
class ClapSettings:
    """How the CLAP tagger loads its model and embeds segments and tags.

    model: a Hugging Face hub id, or a local folder holding a ClapModel and its processor
      (config.json, model.safetensors, preprocessor_config.json, tokenizer files).
    window_seconds: length of each window a segment is cut into (at most the model's 10 s).
    hop_seconds: distance between window starts; equal to window_seconds means no overlap.
    pooling: how window embeddings become one segment embedding, "mean" or "max".
    batch_windows: windows embedded per forward pass of the audio tower.
    text_batch: tag phrases embedded per forward pass of the text tower.
    phrase_template: format string each tag phrase is put into, e.g. "{} music"; "{}" keeps it.
    device: "cpu", "cuda", "cuda:1", ...; empty means the run's device.
    precision: the audio tower's forward pass: "fp32", "bf16" (autocast; about 3x faster
      on CPUs with AVX-512 BF16 or AMX, slower on others: docs/plugins.md) or "fp16" (GPU
      only). Tag phrases stay fp32.
    """

    model: str = DEFAULT_MODEL
    window_seconds: float = setting(10.0, above=0)
    hop_seconds: float = setting(10.0, above=0)
    pooling: str = setting("mean", choices=POOLINGS)
    batch_windows: int = setting(8, minimum=1)
    text_batch: int = setting(64, minimum=1)
    phrase_template: str = "{}"
    device: str = device_setting("", empty=True)
    precision: str = precision_setting()

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ClapSettings:
        """Build from a `[plugins.clap]` table; unknown keys and bad values are named.

        Ranges and choices are declared on the fields; `validate` checks the rest.
        """
        settings = settings_from_table(cls, values, "[plugins.clap]")
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise SettingsError naming the first value that cannot work."""
        problem = _problem(self)
        if problem:
            raise SettingsError(f"[plugins.clap] {problem}")

    @property
    def model_name(self) -> str:
        """The hub id, or the folder's name for a local model: what cached embeddings carry."""
        path = Path(self.model).expanduser()
        return path.name if path.is_dir() else self.model

    def for_run(self) -> dict[str, Any]:
        """The settings that change scores or embeddings (batching and device do not).

        Precision only when it is not fp32, so runs made before it existed stay done.
        """
        keep = ("model", "window_seconds", "hop_seconds", "pooling", "phrase_template")
        extra = ("precision",) if self.precision != "fp32" else ()
        return {key: getattr(self, key) for key in (*keep, *extra)}


def _problem(settings: ClapSettings) -> str | None:
    if not settings.model.strip():
        return "model must name a hub id or a local folder"
    if settings.phrase_template.count("{}") != 1:
        return f"phrase_template must hold '{{}}' exactly once, got {settings.phrase_template!r}"
    return None
