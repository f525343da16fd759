"""The `[plugins.trap]` settings table, checked by name and type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curator.api import device_setting, precision_setting, setting, settings_from_table
from curator.errors import SettingsError

TABLE = "[plugins.trap]"


@dataclass(frozen=True)
class TrapSettings:
    """How the trap tagger runs, from the project's `[plugins.trap]` table.

    weights: a weights file made by `curator trap-train` (relative paths are taken from the
      project folder); empty means the one that ships with Curator.
    thresholds: tag -> the probability from which it becomes a label; tags not named keep
      the threshold chosen on validation data when the weights were trained.
    top_k: at most this many instrument labels per segment; 0 means no limit (each tag is
      its own yes/no, and a beat has many instruments at once).
    batch_windows: windows of audio per forward pass.
    device: "cpu", "cuda", "cuda:1", ...; empty means the run's device.
    precision: the network's forward pass: "fp32", "bf16" (autocast) or "fp16" (GPU only).
    """

    weights: str = ""
    thresholds: Mapping[str, float] = field(default_factory=dict)
    top_k: int = setting(0, minimum=0)
    batch_windows: int = setting(32, minimum=1)
    device: str = device_setting("", empty=True)
    precision: str = precision_setting()

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TrapSettings:
        """Build from the table; unknown keys and bad values are named."""
        settings = settings_from_table(cls, values, TABLE)
        for tag, value in dict(settings.thresholds).items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise SettingsError(
                    f"{TABLE} thresholds.{tag} = {value!r} must be a probability from 0 to 1"
                )
        return settings

    def weights_path(self, project_root: Path | None) -> Path | None:
        """The configured weights file, or None for the shipped one."""
        if not self.weights:
            return None
        return (project_root or Path.cwd()) / Path(self.weights).expanduser()
