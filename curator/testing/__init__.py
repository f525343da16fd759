"""Fixtures and helpers for testing Curator and its plugins (a pytest plugin).

Use it from a plugin's tests with `pytest_plugins = ["curator.testing"]` in conftest.py:

- `curator_project`: a fresh project in a temporary folder.
- `beats`: a folder of rendered demo beats with known tempo, key and instruments, and
  `beats_truth`, their truth.json as a dict.
- `ingested_project`: `curator_project` with `beats` ingested.
- `plugin_registry(*plugins)`: a registry holding only the given plugin modules or objects
  (nothing installed is loaded), as `curator.registry.Registry`.

and, to call directly, `registry_of(*plugins)` (what `plugin_registry` gives),
`load_registry()`: every installed plugin, loaded as Curator loads them (for the "is
installed" test), and `metadata_label_by_label(project)`: the records `segment_metadata`
gives, grouped in Python from the effective labels (an independent oracle for tests, and
the baseline the prompts benchmark times).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from curator.catalogue.ingest import ingest
from curator.catalogue.metadata import TAG_FACETS
from curator.music import VALUE_FACETS
from curator.project import Project, init_project
from curator.registry import Registry, load_registry
from curator.registry.manager import get_plugin_manager

__all__ = [
    "beats",
    "beats_truth",
    "curator_project",
    "ingested_project",
    "load_registry",
    "plugin_registry",
    "registry_of",
]


def registry_of(*plugins: Any) -> Registry:
    """A registry of just these plugins (modules or objects with @hookimpl functions)."""
    pm = get_plugin_manager(load_entry_points=False)
    for number, plugin in enumerate(plugins):
        pm.register(plugin, name=getattr(plugin, "__name__", f"test-plugin-{number}"))
    return load_registry(pm)


@pytest.fixture
def curator_project(tmp_path: Path) -> Project:
    return init_project(tmp_path / "project")


@pytest.fixture(scope="session")
def beats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from curator.demo import render_demo_dataset

    folder = tmp_path_factory.mktemp("demo-beats")
    render_demo_dataset(folder, 6, seed=11)
    return folder


@pytest.fixture(scope="session")
def beats_truth(beats: Path) -> dict[str, Any]:
    return json.loads((beats / "truth.json").read_text())


@pytest.fixture
def ingested_project(curator_project: Project, beats: Path) -> Project:
    ingest(curator_project, [beats])
    return curator_project


@pytest.fixture
def plugin_registry() -> Callable[..., Registry]:
    return registry_of


def metadata_label_by_label(
    project: Project, include_unusable: bool = False
) -> dict[str, dict[str, Any]]:
    """The records as the effective labels state them, grouped here in Python, label by label
    (how segment_metadata was built before it moved into one DuckDB query)."""
    records: dict[str, dict[str, Any]] = {}
    for row in project.catalog.segment_rows(include_unusable):
        record = {"source": row["source"], "start": row["start"], "duration": row["duration"]}
        record |= {f"{facet}_tags": [] for facet in TAG_FACETS} | dict.fromkeys(VALUE_FACETS)
        records[row["id"]] = record
    for segment_id, facet, tag, present, value, _ in project.catalog.effective_labels():
        if segment_id in records and present and facet in TAG_FACETS:
            records[segment_id][f"{facet}_tags"].append(tag)
        elif segment_id in records and present and facet in VALUE_FACETS:
            records[segment_id][facet] = float(cast(str, value)) if facet == "tempo" else value
    return records
