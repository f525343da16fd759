"""The typed facade core code uses to reach plugins: taggers, analyzers, embedders, ..."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from curator.api import (
    Analyzer,
    Embedder,
    Exporter,
    Migration,
    PluginContext,
    PromptWriter,
    Tagger,
)
from curator.errors import CuratorError
from curator.registry.manager import CuratorPluginManager, get_plugin_manager
from curator.storage.catalog import CORE_SCOPE

KINDS: dict[str, tuple[str, type]] = {
    "taggers": ("register_taggers", Tagger),
    "analyzers": ("register_analyzers", Analyzer),
    "embedders": ("register_embedders", Embedder),
    "prompt_writers": ("register_prompt_writers", PromptWriter),
    "exporters": ("register_exporters", Exporter),
    "migrations": ("register_migrations", Migration),
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

    @property
    def migrations(self) -> list[Migration]:
        """Every plugin's migrations, by scope and number."""
        found = self.contributions["migrations"].items.values()
        return sorted(found, key=lambda m: (m.scope, m.number))

    def migrations_of(self, name: str) -> list[Migration]:
        """The migrations of the plugin(s) contributing a tagger, analyzer, ... called `name`."""
        owners = {
            found.owners[name]
            for kind, found in self.contributions.items()
            if kind != "migrations" and name in found.owners
        }
        owned = self.contributions["migrations"].owners
        return [m for m in self.migrations if owned[_key(m)] in owners]


@dataclass
class HostedPlugins:
    """The other plugins of a run, as a plugin reaches them (`PluginContext.plugins`)."""

    registry: Registry
    context_for: Callable[[str], PluginContext]  # the context a run of that plugin would get

    def names(self, kind: str) -> list[str]:
        return self.registry.names(kind)

    def tagger(self, name: str, set_up: bool = True) -> Tagger:
        tagger = self.registry.tagger(name)
        if set_up:
            tagger.setup(self.context_for(name))
        return tagger


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
        # Through the hook, not impl.function, so that CURATOR_TRACE_PLUGINS sees the call;
        # one plugin at a time, so that one broken hook does not hide the others.
        others = [plugin for plugin in pm.get_plugins() if plugin is not impl.plugin]
        try:
            pm.subset_hook_caller(hook_name, others)(
                register=_register_into(found, owner, base, errors)
            )
        except Exception as exc:
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
        found.items[_key(item)] = item
        found.owners[_key(item)] = owner

    return register


def _key(item: Any) -> str:
    """What must be unique: a plugin's name; a migration's scope and number."""
    if isinstance(item, Migration):
        return f"{item.scope} {item.number:03d}"
    return str(getattr(item, "name", ""))


def _registration_problem(found: Contributions[Any], item: Any, base: type) -> str | None:
    if not isinstance(item, base):
        return f"registered {item!r}, which is not a {base.__name__}"
    if isinstance(item, Migration):
        return _migration_problem(found, item)
    name: str = getattr(item, "name", "")
    if not name:
        return f"registered a {base.__name__} without a name"
    if name in found.items:
        return (
            f"{base.__name__} name {name!r} is already taken by plugin "
            f"{found.owners[name]!r}; this one was ignored"
        )
    return None


def _migration_problem(found: Contributions[Any], migration: Migration) -> str | None:
    if not migration.scope:
        return f"migration {migration.name!r} has no scope; use your plugin's name"
    if migration.scope == CORE_SCOPE:
        return (
            f"migration {migration.name!r}: scope {CORE_SCOPE!r} belongs to Curator; "
            "use your plugin's name"
        )
    if migration.number < 1:
        return f"migration {migration.name!r}: numbers start at 1, not {migration.number}"
    key = _key(migration)
    if key in found.items:
        return (
            f"migration {key} is already registered by plugin {found.owners[key]!r}; "
            "this one was ignored"
        )
    return None
