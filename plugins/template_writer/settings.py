"""The template writer's settings: the project's `[plugins.template]` table, checked by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from curator.api import setting, settings_from_table

TABLE = "[plugins.template]"


@dataclass(frozen=True)
class TemplateSettings:
    """How the template writer words a prompt.

    synonym_rate: the chance (0 to 1) that a tag is named by one of its vocabulary
      synonyms instead of its own name; 0 always uses tag names.
    """

    synonym_rate: float = setting(0.5, minimum=0, maximum=1)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TemplateSettings:
        """Build from a `[plugins.template]` table; unknown keys and bad values are named."""
        return settings_from_table(cls, values, TABLE)
