"""Plugins use only the public API, and get what else they need from the host's context."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from test_learned import OPTIONS, reviewed  # noqa: F401 - the fixture, used by name
from test_suspects import EMBEDDING

import curator.plugins.learned as learned_plugin
from curator import hookimpl
from curator.api import PluginContext, SegmentAudio, Tagger, TagResult
from curator.curation.probes import learn
from curator.errors import CuratorError
from curator.project import init_project
from curator.registry.template import create_plugin
from curator.tagging.runs import plugin_context
from curator.testing import registry_of

REPO = Path(__file__).resolve().parent.parent
# What a plugin may import from Curator; `curator` itself only for `hookimpl`.
PUBLIC = ("curator.api", "curator.errors", "curator.testing")


def curator_imports(path: Path) -> list[tuple[int, str]]:
    """Every (line, module[.name]) a Python file imports from Curator, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == "curator"]


def is_public(name: str) -> bool:
    return name == "curator.hookimpl" or any(
        name == module or name.startswith(module + ".") for module in PUBLIC
    )


def private_imports(files: list[Path]) -> list[str]:
    return [
        f"{path.relative_to(path.anchor)}:{line} imports {name}"
        for path in files
        for line, name in curator_imports(path)
        if not is_public(name)
    ]


def test_the_rule_catches_an_internal_import(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "from curator import hookimpl\nfrom curator.api import Tagger\n"
        "def f():\n    from curator.registry import load_registry\n    import curator.storage\n"
    )
    assert [name for _, name in curator_imports(plugin)] == [
        "curator.hookimpl",
        "curator.api.Tagger",
        "curator.registry.load_registry",
        "curator.storage",
    ]
    assert len(private_imports([plugin])) == 2


def test_built_in_plugins_import_only_the_public_api() -> None:
    files = sorted((REPO / "plugins").rglob("*.py"))
    assert len(files) > 20
    assert private_imports(files) == []


def test_the_example_plugin_and_its_tests_import_only_the_public_api() -> None:
    example = REPO / "examples" / "curator-brightness"
    files = sorted(p for p in example.rglob("*.py") if ".egg-info" not in str(p))
    assert {p.name for p in files} >= {"__init__.py", "test_brightness.py"}
    assert private_imports(files) == []


def test_a_plugin_made_from_the_template_imports_only_the_public_api(tmp_path: Path) -> None:
    files = [p for p in create_plugin(tmp_path / "new", "trap-snare") if p.suffix == ".py"]
    assert len(files) == 2
    assert private_imports(files) == []


# -- other plugins, through the context ------------------------------------------------------


class Source:
    """A tagger that makes the embeddings the learned tagger was trained on."""

    class Embed(Tagger):
        name, facets, sample_rate, channels = "seed", ("instruments",), 22050, 2
        embedding_model = EMBEDDING

        def tag(self, batch):
            return [TagResult({}, np.ones(16, np.float32)) for _ in batch]

    @hookimpl
    def register_taggers(self, register):
        register(self.Embed())


def test_the_learned_tagger_reaches_its_source_through_the_context(reviewed) -> None:  # noqa: F811
    """The host's registry (not a second one) gives the source, set up with its own table."""
    project = reviewed.project
    learn(project, OPTIONS)
    with (project.root / "curator.toml").open("a") as settings:
        settings.write('\n[plugins.seed]\nmarker = "from the project"\n')
    project = init_project(project.root)
    registry = registry_of(learned_plugin, Source())
    tagger = registry.tagger("learned")
    tagger.setup(plugin_context(project, "learned", registry))
    assert (tagger.sample_rate, tagger.channels) == (22050, 2)
    (result,) = tagger.tag([SegmentAudio("s", np.zeros((8, 2), np.float32), 22050)])
    source = registry.tagger("seed")
    assert source.context.settings == {"marker": "from the project"}
    assert set(result.scores["instruments"]) == {tag for _, tag in tagger.tag_order()}


def test_outside_a_host_the_learned_tagger_says_what_it_needs(reviewed) -> None:  # noqa: F811
    learn(reviewed.project, OPTIONS)
    tagger = learned_plugin.LearnedTagger()
    tagger.setup(PluginContext(project_root=reviewed.project.root))
    with pytest.raises(CuratorError, match="seed"):
        tagger.tag([SegmentAudio("s", np.zeros((8, 1), np.float32), 48000)])
