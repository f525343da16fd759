"""The typed facade core code uses to reach plugins: taggers, analyzers, embedders, ..."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from curator.api import Analyzer, Embedder, Exporter, PromptWriter, Tagger
from curator.errors import CuratorError
from curator.registry.manager import CuratorPluginManager, get_plugin_manager

KINDS: dict[str, tuple[str, type]] = {
    "taggers": ("register_taggers", Tagger),
    "analyzers": ("register_analyzers", Analyzer),
    "embedders": ("register_embedders", Embedder),
    "prompt_writers": ("register_prompt_writers", PromptWriter),
    "exporters": ("register_exporters", Exporter),
}


class UnknownPlugin(CuratorError):
    """A command named a tagger, analyzer, ... that no loaded plugin provides."""


@dataclass
class Contributions[T]:
    """What plugins registered through one hook, by name, with who registered each."""

    items: dict[str, T] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)


@dataclass
class Registry:
    """Everything the loaded plugins contribute, and every error met while collecting it."""

    pm: CuratorPluginManager
    contributions: dict[str, Contributions[Any]]
    errors: dict[str, list[str]]  # plugin name -> problems (load failure, bad registration)

    def get(self, kind: str, name: str) -> Any:
        items = self.contributions[kind].items
        if name not in items:
            known = ", ".join(sorted(items)) or "none installed"
            label = kind.rstrip("s").replace("_", " ")
            raise UnknownPlugin(f"no {label} named {name!r} (available: {known})")
        return items[name]

    def tagger(self, name: str) -> Tagger:
        return self.get("taggers", name)

    def analyzer(self, name: str) -> Analyzer:
        return self.get("analyzers", name)

    def embedder(self, name: str) -> Embedder:
        return self.get("embedders", name)

    def prompt_writer(self, name: str) -> PromptWriter:
        return self.get("prompt_writers", name)

    def exporter(self, name: str) -> Exporter:
        return self.get("exporters", name)

    def names(self, kind: str) -> list[str]:
        return sorted(self.contributions[kind].items)


def load_registry(pm: CuratorPluginManager | None = None) -> Registry:
    """Call every register_* hook and collect what comes back, de-duplicated by name."""
    pm = pm or get_plugin_manager()
    errors: dict[str, list[str]] = {name: [err] for name, err in pm.report.failed.items()}
    contributions = {kind: _collect(pm, hook, base, errors) for kind, (hook, base) in KINDS.items()}
    return Registry(pm, contributions, errors)


def _collect(
    pm: CuratorPluginManager, hook_name: str, base: type, errors: dict[str, list[str]]
) -> Contributions[Any]:
    found: Contributions[Any] = Contributions()
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        owner = pm.get_name(impl.plugin) or repr(impl.plugin)
        try:
            impl.function(register=_register_into(found, owner, base, errors))
        except Exception as exc:  # one plugin's broken hook must not hide the others
            errors.setdefault(owner, []).append(f"{hook_name} raised {type(exc).__name__}: {exc}")
    return found


def _register_into(
    found: Contributions[Any], owner: str, base: type, errors: dict[str, list[str]]
) -> Callable[[Any], None]:
    def register(item: Any) -> None:
        problem = _registration_problem(found, item, base)
        if problem:
            errors.setdefault(owner, []).append(problem)
            return
        found.items[item.name] = item
        found.owners[item.name] = owner

    return register


def _registration_problem(found: Contributions[Any], item: Any, base: type) -> str | None:
    if not isinstance(item, base):
        return f"registered {item!r}, which is not a {base.__name__}"
    name: str = getattr(item, "name", "")
    if not name:
        return f"registered a {base.__name__} without a name"
    if name in found.items:
        return (
            f"{base.__name__} name {name!r} is already taken by plugin "
            f"{found.owners[name]!r}; this one was ignored"
        )
    return None
