"""The `[plugins.essentia]` settings: defaults, and checks that name the key at fault."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curator.api import reject_unknown_keys
from curator.errors import SettingsError

TABLE = "[plugins.essentia]"
BPM_METHODS = ("degara", "multifeature")
# The profiles Essentia's KeyExtractor accepts (its `profileType` parameter).
KEY_PROFILES = (
    "diatonic", "krumhansl", "temperley", "weichai", "tonictriad", "temperley2005", "thpcp",
    "shaath", "gomez", "noland", "faraldo", "pentatonic", "edmm", "edma", "bgate", "braw",
)  # fmt: skip


@dataclass(frozen=True)
class EssentiaSettings:
    """How the Essentia analyzer measures tempo, key, scale and loudness.

    bpm_method: "degara" (default) or "multifeature", RhythmExtractor2013's beat tracker.
      Degara was about as accurate as multifeature on rendered beats and 2.7x faster; its
      confidence is derived by this plugin (see confidence.py), multifeature's is Essentia's own.
    tempo_min / tempo_max: estimates outside this range are halved or doubled into it; inside
      it, the tracker's reading stands. The default is the octave 75-150: trap is written both
      in half time (70-80) and full time (130-150), and trackers pick either octave, so one
      octave gives each beat one reading. On rendered beats (held-out seed) it put 90% of
      degara's tempos within 4% of the truth, against 62% with 70-160. A catalogue of fast
      trap (150-170) should raise it, e.g. 85-170. tempo_max must be at least twice
      tempo_min, so every estimate has a place in the range.
    key_profile: the key profile KeyExtractor correlates with, "edma" (electronic music,
      major and minor) by default; any of Essentia's profileType names.
    tempocnn_graph: path to a TempoCNN graph (`deeptemp-k16-3.pb`); when given, TempoCNN
      estimates the tempo and its patch probabilities give the confidence. Never downloaded.
    sample_rate: the rate Curator decodes segments at; rhythm runs at 44100 Hz (what
      RhythmExtractor2013 is tuned for) and TempoCNN at 11025 Hz, resampled when different.
    loudness: also measure the EBU R128 integrated loudness (LUFS). Off by default: on a
      25 s segment it costs about 0.17 s, as much as tempo, key and scale together.
    """

    bpm_method: str = "degara"
    tempo_min: float = 75.0
    tempo_max: float = 150.0
    key_profile: str = "edma"
    tempocnn_graph: Path | None = None
    sample_rate: int = 44100
    loudness: bool = False

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> EssentiaSettings:
        """Build from the project's table, rejecting unknown keys and bad values by name."""
        reject_unknown_keys(cls, table, TABLE)
        values = {name: _converted(name, value) for name, value in table.items()}
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        _check_choice("bpm_method", self.bpm_method, BPM_METHODS)
        _check_choice("key_profile", self.key_profile, KEY_PROFILES)
        if not (self.tempo_min > 0 and self.tempo_max >= 2 * self.tempo_min):
            raise SettingsError(
                f"{TABLE} tempo_min/tempo_max: need 0 < tempo_min and tempo_max >= 2 * tempo_min"
                f" so halving or doubling always lands in the range (got {self.tempo_min:g}"
                f"-{self.tempo_max:g})"
            )
        if self.sample_rate < 8000:
            raise SettingsError(f"{TABLE} sample_rate: {self.sample_rate} Hz is too low")
        if self.tempocnn_graph is not None and not self.tempocnn_graph.is_file():
            raise SettingsError(f"{TABLE} tempocnn_graph: no file at {self.tempocnn_graph}")


def _converted(name: str, value: Any) -> Any:
    """TOML gives ints for `tempo_min = 70` and strings for paths; coerce, or say what is wrong."""
    kinds: dict[str, type] = {"tempo_min": float, "tempo_max": float, "sample_rate": int}
    if name in kinds:
        return _number(name, value, kinds[name])
    if name == "tempocnn_graph":
        return None if value in (None, "") else Path(str(value)).expanduser()
    if name == "loudness" and not isinstance(value, bool):
        raise SettingsError(f"{TABLE} loudness: expected true or false, got {value!r}")
    return value


def _number(name: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SettingsError(f"{TABLE} {name}: expected a finite number, got {value!r}")
    if kind is int and value != int(value):
        raise SettingsError(f"{TABLE} {name}: expected a whole number, got {value!r}")
    return kind(value)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SettingsError(f"{TABLE} {name}: {value!r} is not one of {', '.join(choices)}")
