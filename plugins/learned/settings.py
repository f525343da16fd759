"""The `[plugins.learned]` settings table, checked by name and type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from curator.api import setting, settings_from_table

TABLE = "[plugins.learned]"


@dataclass(frozen=True)
class LearnedSettings:
    """How the learned tagger labels, from the project's `[plugins.learned]` table.

    version: the trained version to tag with (a folder under models/learned/); empty means
      the one `curator learn` trained last.
    threshold: the calibrated probability from which a tag becomes a label; a negative
      value means the one it was trained with (0.5 unless `curator learn --threshold`).
    """

    version: str = ""
    threshold: float = setting(-1.0, maximum=1)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> LearnedSettings:
        """Build from the table; unknown keys and bad values are named."""
        return settings_from_table(cls, values, TABLE)
