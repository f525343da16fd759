"""What `curator plugins` reports: every plugin, its version, what it provides, its errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from curator.registry import KINDS, Registry

# How `curator plugins` words each status in its table.
STATUS_TEXT = {"loaded": "ok", "skipped": "skipped (not in CURATOR_LOAD_PLUGINS)"}


def plugin_report(registry: Registry) -> list[dict[str, Any]]:
    """One entry per plugin (loaded, failed, or left out by CURATOR_LOAD_PLUGINS), by name."""
    pm = registry.pm
    names = set(pm.report.loaded) | set(pm.report.failed) | set(registry.errors)
    names |= set(pm.report.skipped)
    names |= {owner for kind in KINDS for owner in registry.contributions[kind].owners.values()}
    return [_entry(registry, name) for name in sorted(names)]


def configured_in(report: list[dict[str, Any]], tables: Mapping[str, Any]) -> list[str]:
    """Note on each entry the `[plugins.NAME]` tables of a project that configure what it
    provides (`configured`); returns the tables that configure nothing installed."""
    used: set[str] = set()
    for entry in report:
        provided = {item["name"] for items in entry["provides"].values() for item in items}
        entry["configured"] = sorted(provided & set(tables))
        used |= provided
    return sorted(set(tables) - used)


def status_text(entry: dict[str, Any]) -> str:
    """An entry's status in words: its errors, or what STATUS_TEXT says."""
    return "; ".join(entry["errors"]) or STATUS_TEXT.get(entry["status"], entry["status"])


def _entry(registry: Registry, name: str) -> dict[str, Any]:
    provides = {kind: _provided(registry, kind, name) for kind in KINDS}
    return {
        "name": name,
        "version": registry.pm.report.loaded.get(name),
        "status": _status(registry, name),
        "provides": {kind: items for kind, items in provides.items() if items},
        "errors": registry.errors.get(name, []),
    }


def _status(registry: Registry, name: str) -> str:
    if name in registry.pm.report.failed:
        return "failed"
    return "skipped" if name in registry.pm.report.skipped else "loaded"


def _provided(registry: Registry, kind: str, owner: str) -> list[dict[str, str]]:
    found = registry.contributions[kind]
    return [
        {"name": item, "version": str(getattr(found.items[item], "version", ""))}
        for item, who in sorted(found.owners.items())
        if who == owner
    ]
