"""Template plugin: the default prompt writer, natural sentences from tags, offline."""

from __future__ import annotations

from collections.abc import Callable

from curator import hookimpl
from curator.api import PromptWriter

from .settings import TemplateSettings
from .writer import TemplateWriter

__all__ = ["TemplateSettings", "TemplateWriter", "register_prompt_writers"]


@hookimpl
def register_prompt_writers(register: Callable[[PromptWriter], None]) -> None:
    """Contribute the template writer."""
    register(TemplateWriter())
