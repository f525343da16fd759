"""The Ollama writer's settings: the project's `[plugins.ollama]` table, checked by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from curator.api import setting, settings_from_table
from curator.errors import SettingsError

TABLE = "[plugins.ollama]"


@dataclass(frozen=True)
class OllamaSettings:
    """Which Ollama server and model write prompts, and how their answers are checked.

    model: the Ollama model (`ollama pull MODEL` first); a 3B Llama by default.
    host: the Ollama server's address.
    temperature: sampling temperature; each segment's seed keeps answers reproducible.
    max_chars: the longest prompt accepted; a longer answer is asked for again.
    retries: further attempts after a rejected answer or a transient error (a server that
      is restarting, a timeout), waiting `backoff` seconds, then twice that, and so on.
    timeout: seconds one request may take.
    backoff: seconds before the first retry.
    """

    model: str = "llama3.2:3b"
    host: str = "http://localhost:11434"
    temperature: float = setting(0.7, minimum=0)
    max_chars: int = setting(300, minimum=40)
    retries: int = setting(3, minimum=0)
    timeout: float = setting(120.0, above=0)
    backoff: float = setting(1.0, minimum=0)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> OllamaSettings:
        """Build from a `[plugins.ollama]` table; unknown keys and bad values are named."""
        settings = settings_from_table(cls, values, TABLE)
        settings.check()
        return settings

    def check(self) -> None:
        """The checks across what the fields declare: model and host must name something."""
        empty = [key for key in ("model", "host") if not getattr(self, key).strip()]
        if empty:
            raise SettingsError(f"{TABLE} {' and '.join(empty)} must not be empty")
