"""The Ollama writer's settings: the project's `[plugins.ollama]` table, checked by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from curator.errors import SettingsError
from curator.settings import settings_from_table

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
    temperature: float = 0.7
    max_chars: int = 300
    retries: int = 3
    timeout: float = 120.0
    backoff: float = 1.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> OllamaSettings:
        """Build from a `[plugins.ollama]` table; unknown keys and bad values are named."""
        settings = settings_from_table(cls, values, TABLE)
        settings.check()
        return settings

    def check(self) -> None:
        bounds = {
            "max_chars": self.max_chars >= 40,
            "retries": self.retries >= 0,
            "timeout": self.timeout > 0,
            "backoff": self.backoff >= 0,
            "temperature": self.temperature >= 0,
            "model": bool(self.model.strip()),
            "host": bool(self.host.strip()),
        }
        bad = [key for key, ok in bounds.items() if not ok]
        if bad:
            raise SettingsError(
                f"{TABLE} {', '.join(bad)} out of range (max_chars >= 40, retries >= 0, "
                "timeout > 0, backoff >= 0, temperature >= 0, model and host not empty)"
            )
