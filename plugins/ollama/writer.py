"""The `ollama` PromptWriter: a local LLM writes each prompt; answers are checked, retried."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from curator.api import PluginContext, PromptWriter, Vocabulary, prompt_problems
from curator.errors import CuratorError, PromptRejected

from .fewshot import messages
from .settings import OllamaSettings

if TYPE_CHECKING:  # the client (and httpx) load when a prompt is written, not at start-up
    import ollama

_WRAPPING_QUOTES = ('"', "'", "\u201c", "\u201d", "\u2018", "\u2019", "`")
_PREFACE = re.compile(r"^\s*(?:prompt|answer|output)\s*:\s*", re.IGNORECASE)


class OllamaUnavailable(CuratorError):
    """The Ollama server could not be reached, or kept failing; nothing more can be written."""


class OllamaModelMissing(CuratorError):
    """The Ollama server does not have the model the settings name."""


class _Transient(Exception):
    """A failure worth retrying after a pause: no connection, a timeout, a busy server."""


class OllamaWriter(PromptWriter):
    """Asks an Ollama model for each prompt with a few-shot conversation, and accepts an
    answer only when it is one line within `max_chars`, names every tag (or a synonym) and
    names no tempo, key or scale that the metadata lacks or contradicts. A rejected answer
    is asked for again with another seed; after `retries` the segment fails with the reasons."""

    name = "ollama"
    version = "1"

    def setup(self, context: PluginContext) -> None:
        """Read the settings; the server is first contacted when a prompt is written."""
        self.context = context
        self.settings = OllamaSettings.from_mapping(context.settings)
        self._client: ollama.Client | None = None

    def settings_for_run(self) -> dict[str, Any]:
        # The host, timeout and retries change how an answer is got, not what it says.
        settings = self._settings()
        return {
            "model": settings.model,
            "temperature": settings.temperature,
            "max_chars": settings.max_chars,
        }

    def write(self, metadata: Mapping[str, Any], seed: int) -> str:
        settings = self._settings()
        rejected: list[str] = []
        transient: _Transient | None = None
        for attempt in range(settings.retries + 1):
            if attempt:
                time.sleep(settings.backoff * 2 ** (attempt - 1))
            try:
                # The same seed gives the same answer, so a retry asks with another one.
                answer, cut_off = self._ask(metadata, seed + attempt)
            except _Transient as exc:
                transient = exc
                continue
            transient = None
            text = clean(answer)
            problems = prompt_problems(text, metadata, self._vocabulary(), settings.max_chars)
            if cut_off:
                problems.append("cut off at the token limit")
            if not problems:
                return text
            rejected.append(f"{'; '.join(problems)}: {text!r}")
        if transient is not None:
            raise OllamaUnavailable(self._unavailable(transient))
        raise PromptRejected(
            f"{settings.model} gave {len(rejected)} unusable answer(s); last: {rejected[-1]}"
        )

    # -- talking to the server -------------------------------------------------------------

    def _ask(self, metadata: Mapping[str, Any], seed: int) -> tuple[str, bool]:
        """The model's answer, and whether it was cut off by the token limit."""
        import httpx
        import ollama

        settings = self._settings()
        try:
            response = self._connection().chat(
                model=settings.model,
                messages=messages(metadata, self._vocabulary(), settings.max_chars),
                options={
                    "temperature": settings.temperature,
                    "seed": seed,
                    # About four characters a token; room to spare, since length is checked.
                    "num_predict": settings.max_chars // 2 + 16,
                },
            )
        except ConnectionError as exc:  # what the client raises when nothing listens
            raise _Transient(f"cannot connect ({exc})") from exc
        except httpx.TimeoutException as exc:
            raise _Transient(f"no answer within {settings.timeout:g} s") from exc
        except httpx.TransportError as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from exc
        except ollama.ResponseError as exc:
            raise self._response_error(exc) from exc
        return response.message.content or "", response.done_reason == "length"

    def _response_error(self, exc: ollama.ResponseError) -> Exception:
        settings = self._settings()
        if exc.status_code == 404:
            return OllamaModelMissing(
                f"Ollama at {settings.host} has no model {settings.model!r} ({exc.error}); "
                f"run `ollama pull {settings.model}` or set [plugins.ollama] model"
            )
        if exc.status_code in (429, 502, 503, 504) or exc.status_code >= 500:
            return _Transient(f"the server answered {exc.status_code}: {exc.error}")
        return CuratorError(
            f"Ollama at {settings.host} refused the request ({exc.status_code}: {exc.error})"
        )

    def _unavailable(self, last: _Transient) -> str:
        settings = self._settings()
        return (
            f"Ollama at {settings.host} failed {settings.retries + 1} time(s), last: {last}. "
            f"Start it with `ollama serve` and fetch the model with `ollama pull "
            f"{settings.model}`, or set [plugins.ollama] host"
        )

    def _connection(self) -> ollama.Client:
        if getattr(self, "_client", None) is None:
            import ollama

            settings = self._settings()
            self._client = ollama.Client(host=settings.host, timeout=settings.timeout)
        assert self._client is not None
        return self._client

    def _settings(self) -> OllamaSettings:
        return getattr(self, "settings", None) or OllamaSettings()

    def _vocabulary(self) -> Vocabulary | None:
        context = getattr(self, "context", None)
        return context.vocabulary if context else None


def clean(answer: str) -> str:
    """The answer without surrounding space, a "Prompt:" preface or wrapping quotes.

    Anything else (a second line, control characters) is left for the checks to reject.
    """
    text = _PREFACE.sub("", answer.strip()).strip()
    while len(text) > 1 and text[0] in _WRAPPING_QUOTES and text[-1] in _WRAPPING_QUOTES:
        text = text[1:-1].strip()
    return text
