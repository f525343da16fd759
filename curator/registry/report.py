"""What `curator plugins` reports: every plugin, its version, what it provides, its errors."""

from __future__ import annotations

from typing import Any

from curator.registry import KINDS, Registry


def plugin_report(registry: Registry) -> list[dict[str, Any]]:
    """One entry per plugin (loaded or not), sorted by name."""
    pm = registry.pm
    names = set(pm.report.loaded) | set(pm.report.failed) | set(registry.errors)
    names |= {owner for kind in KINDS for owner in registry.contributions[kind].owners.values()}
    return [_entry(registry, name) for name in sorted(names)]


def _entry(registry: Registry, name: str) -> dict[str, Any]:
    provides = {kind: _provided(registry, kind, name) for kind in KINDS}
    return {
        "name": name,
        "version": registry.pm.report.loaded.get(name),
        "status": "failed" if name in registry.pm.report.failed else "loaded",
        "provides": {kind: items for kind, items in provides.items() if items},
        "errors": registry.errors.get(name, []),
    }


def _provided(registry: Registry, kind: str, owner: str) -> list[dict[str, str]]:
    found = registry.contributions[kind]
    return [
        {"name": item, "version": str(getattr(found.items[item], "version", ""))}
        for item, who in sorted(found.owners.items())
        if who == owner
    ]
