"""The plugin manager: hook specs, the `curator` entry-point group, and load failures.

Built-in plugins are entry points of this package in the same group, so they are loaded
exactly as a third party's would be. Nothing here runs at import: call
`get_plugin_manager()`.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

import pluggy

from curator import hookspecs

GROUP = "curator"


@dataclass
class LoadReport:
    """Which plugins loaded, and for each that did not, its error."""

    loaded: dict[str, str] = field(default_factory=dict)  # name -> distribution version
    failed: dict[str, str] = field(default_factory=dict)  # name -> error in words
    skipped: list[str] = field(default_factory=list)  # left out by CURATOR_LOAD_PLUGINS


class CuratorPluginManager(pluggy.PluginManager):
    """A PluginManager that remembers how loading each entry point went."""

    def __init__(self) -> None:
        super().__init__(GROUP)
        self.add_hookspecs(hookspecs)
        self.report = LoadReport()


def allowed_plugins() -> set[str] | None:
    """Names in CURATOR_LOAD_PLUGINS (comma-separated), or None to load every plugin."""
    value = os.environ.get("CURATOR_LOAD_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def get_plugin_manager(load_entry_points: bool = True) -> CuratorPluginManager:
    """A new manager with every installed plugin that loads; failures are recorded, not raised."""
    pm = CuratorPluginManager()
    if load_entry_points:
        for entry_point in sorted(entry_points(group=GROUP), key=lambda e: e.name):
            _load(pm, entry_point, allowed_plugins())
    pm.check_pending()
    if os.environ.get("CURATOR_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda message: print(message, end="", file=sys.stderr))
        pm.enable_tracing()
    return pm


def _load(pm: CuratorPluginManager, entry_point: EntryPoint, allowed: set[str] | None) -> None:
    name = entry_point.name
    if allowed is not None and name not in allowed:
        pm.report.skipped.append(name)
        return
    try:
        pm.register(entry_point.load(), name=name)
    except Exception as exc:  # a broken plugin must never take the others down
        pm.report.failed[name] = _describe(exc)
        return
    dist = entry_point.dist
    pm.report.loaded[name] = dist.version if dist else "?"


def _describe(exc: BaseException) -> str:
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    place = f" ({where.filename}:{where.lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{place}"
