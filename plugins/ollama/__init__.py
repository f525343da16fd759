"""Ollama plugin: a prompt writer that asks a local LLM, checks its answer, and retries."""

from __future__ import annotations

from collections.abc import Callable

from curator import hookimpl
from curator.api import PromptWriter

from .settings import OllamaSettings
from .writer import OllamaModelMissing, OllamaUnavailable, OllamaWriter

__all__ = [
    "OllamaModelMissing",
    "OllamaSettings",
    "OllamaUnavailable",
    "OllamaWriter",
    "register_prompt_writers",
]


@hookimpl
def register_prompt_writers(register: Callable[[PromptWriter], None]) -> None:
    """Contribute the Ollama writer; cheap, it reaches the server only when writing."""
    register(OllamaWriter())
