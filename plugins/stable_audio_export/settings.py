"""The stable-audio-tools exporter's settings: `[plugins.stable-audio-tools]`, checked by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from curator.api import settings_from_table

TABLE = "[plugins.stable-audio-tools]"


@dataclass(frozen=True)
class StableAudioExportSettings:
    """What goes into the dataset configs the exporter writes.

    dataset_id: the `id` of each dataset in the configs ("<dataset_id>-train", "-validation").
    random_crop: crop training files at random places (stable-audio-tools' default); the
      validation config always crops from the start, so its losses are comparable.
    """

    dataset_id: str = "curator"
    random_crop: bool = True

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> StableAudioExportSettings:
        """Build from the plugin's table; unknown keys and bad values are named."""
        return settings_from_table(cls, values, TABLE)
