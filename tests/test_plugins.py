"""The plugin contract: every hook tested and documented; broken plugins reported, not fatal."""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from curator import hookimpl, hookspecs
from curator.api import (
    Analyzer,
    Embedder,
    Exporter,
    Migration,
    PromptWriter,
    Tagger,
    TagResult,
)
from curator.errors import CuratorError
from curator.project import Project, init_project
from curator.registry import UnknownPlugin, load_registry
from curator.registry.manager import get_plugin_manager
from curator.tagging.runs import run_tagger
from curator.testing import registry_of

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "writing-plugins.md"


def hook_signatures() -> dict[str, str]:
    """Each hook's signature exactly as written in curator/hookspecs.py."""
    tree = ast.parse(Path(hookspecs.__file__).read_text())
    return {
        node.name: f"{node.name}({ast.unparse(node.args)}) -> {ast.unparse(node.returns)}"
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }


def test_every_hook_has_a_test() -> None:
    names = {name for name in dir(sys.modules[__name__]) if name.startswith("test_hook_")}
    missing = {f"test_hook_{hook}" for hook in hook_signatures()} - names
    assert not missing, f"hooks without a test: {sorted(missing)}"


def test_every_hook_is_documented_with_its_exact_signature() -> None:
    docs = DOCS.read_text()
    missing = [sig for sig in hook_signatures().values() if sig not in docs]
    assert not missing, f"{DOCS.name} lacks: {missing}"


class Everything:
    """One plugin contributing one of each kind."""

    class Tag(Tagger):
        name, facets = "t", ("instruments",)

        def tag(self, batch):
            return [TagResult({"instruments": {"piano": 1.0}}) for _ in batch]

    class Measure(Analyzer):
        name = "a"

        def analyze(self, batch):
            return [[] for _ in batch]

    class Embed(Embedder):
        name = "e"

        def embed_text(self, phrases):
            return np.eye(len(phrases), dtype=np.float32)

    class Write(PromptWriter):
        name = "w"

        def write(self, metadata, seed):
            return "A beat."

    class Export(Exporter):
        name = "x"

        def export(self, records, out):
            return out

    @hookimpl
    def register_taggers(self, register):
        register(self.Tag())

    @hookimpl
    def register_analyzers(self, register):
        register(self.Measure())

    @hookimpl
    def register_embedders(self, register):
        register(self.Embed())

    @hookimpl
    def register_prompt_writers(self, register):
        register(self.Write())

    @hookimpl
    def register_exporters(self, register):
        register(self.Export())


def test_hook_register_taggers() -> None:
    tagger = registry_of(Everything()).tagger("t")
    assert tagger.tag([object()])[0].scores == {"instruments": {"piano": 1.0}}


def test_hook_register_analyzers() -> None:
    assert registry_of(Everything()).analyzer("a").analyze([object()]) == [[]]


def test_hook_register_embedders() -> None:
    assert registry_of(Everything()).embedder("e").embed_text(["a", "b"]).shape == (2, 2)


def test_hook_register_prompt_writers() -> None:
    assert registry_of(Everything()).prompt_writer("w").write({}, 0) == "A beat."


def test_hook_register_exporters(tmp_path: Path) -> None:
    assert registry_of(Everything()).exporter("x").export([], tmp_path) == tmp_path


class Counting:
    """A plugin that keeps a table of its own: its tagger counts the segments it sees there."""

    class Count(Tagger):
        name, facets = "count", ("instruments",)

        def setup(self, context):
            super().setup(context)
            with context.catalog.transaction() as con:
                con.execute("INSERT INTO counting_runs VALUES (?, 0)", [context.settings["run"]])

        def tag(self, batch):
            with self.context.catalog.transaction() as con:
                con.execute("UPDATE counting_runs SET segments = segments + ?", [len(batch)])
            return [TagResult({"instruments": {"piano": 0.0}}) for _ in batch]

    def __init__(self, *migrations: Migration) -> None:
        self.migrations = migrations or (
            Migration("counting", 1, "001_runs", "CREATE TABLE counting_runs (run VARCHAR)"),
            Migration(
                "counting", 2, "002_segments", "ALTER TABLE counting_runs ADD segments INTEGER"
            ),
        )

    @hookimpl
    def register_taggers(self, register):
        register(self.Count())

    @hookimpl
    def register_migrations(self, register):
        for migration in self.migrations:
            register(migration)


def test_hook_register_migrations(ingested_project: Project) -> None:
    """A plugin's migrations run before its plugin runs, once, tracked under its own scope."""
    project = ingested_project
    with (project.root / "curator.toml").open("a") as settings:
        settings.write('\n[plugins.count]\nrun = "first"\n')
    project = init_project(project.root)
    registry = registry_of(Counting())
    assert [(m.scope, m.number) for m in registry.migrations] == [("counting", 1), ("counting", 2)]
    summary = run_tagger(project, "count", registry=registry)
    assert summary.failed == 0
    again = run_tagger(project, "count", registry=registry_of(Counting()))  # nothing to do
    with project.catalog.connect() as con:
        rows = con.execute(
            "SELECT run, segments FROM counting_runs ORDER BY segments DESC"
        ).fetchall()
    assert rows == [("first", summary.done), ("first", 0)] and again.pending == 0
    applied = [(s, n) for s, n, _ in project.catalog.applied_migrations() if s == "counting"]
    assert applied == [("counting", 1), ("counting", 2)]


def test_a_migration_that_fails_names_itself_and_leaves_nothing_of_itself(curator_project) -> None:
    broken = Counting(
        Migration("counting", 1, "001_runs", "CREATE TABLE counting_runs (run VARCHAR)"),
        Migration("counting", 2, "002_typo", "ALTER TABLE counting_rnus ADD segments INTEGER"),
    )
    with pytest.raises(CuratorError, match="counting migration 002_typo failed") as failed:
        run_tagger(curator_project, "count", registry=registry_of(broken))
    assert "\n" not in str(failed.value)
    scopes = {(s, n) for s, n, _ in curator_project.catalog.applied_migrations()}
    assert ("counting", 1) in scopes and ("counting", 2) not in scopes


def test_a_plugin_cannot_take_the_core_scope_or_another_plugin_s_number() -> None:
    core = Migration("curator", 99, "099_mine", "CREATE TABLE x (a INTEGER)")
    taken = Migration("counting", 1, "001_other", "CREATE TABLE y (a INTEGER)")
    registry = registry_of(Counting(), Counting(core, taken))
    assert [(m.scope, m.number) for m in registry.migrations] == [("counting", 1), ("counting", 2)]
    problems = [e for errors in registry.errors.values() for e in errors]
    assert any("scope 'curator' belongs to Curator" in e for e in problems), problems
    assert any("counting 001 is already registered" in e for e in problems), problems


def test_an_unknown_name_lists_what_is_there() -> None:
    with pytest.raises(UnknownPlugin, match=r"no tagger named 'nope' \(available: t\)"):
        registry_of(Everything()).tagger("nope")


def test_a_hook_that_raises_is_reported_and_others_still_work() -> None:
    class Broken:
        @hookimpl
        def register_taggers(self, register):
            raise RuntimeError("weights missing")

    registry = registry_of(Broken(), Everything())
    assert registry.tagger("t")
    (errors,) = [e for name, e in registry.errors.items() if name != "Everything"]
    assert errors == ["register_taggers raised RuntimeError: weights missing"]


def test_duplicate_names_keep_the_first_and_say_so() -> None:
    registry = registry_of(Everything(), Everything())
    assert registry.names("taggers") == ["t"]
    assert any("already taken" in e for errors in registry.errors.values() for e in errors)


def test_registering_the_wrong_type_is_refused() -> None:
    class Wrong:
        @hookimpl
        def register_taggers(self, register):
            register("not a tagger")

    registry = registry_of(Wrong())
    assert registry.names("taggers") == []
    assert "which is not a Tagger" in next(iter(registry.errors.values()))[0]


@pytest.fixture
def installed_broken_plugin(tmp_path: Path, monkeypatch) -> None:
    """A real distribution on sys.path whose `curator` entry point raises at import."""
    (tmp_path / "broken_plugin.py").write_text("raise ImportError('needs libfoo.so')\n")
    dist = tmp_path / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[curator]\nbroken = broken_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_a_plugin_that_fails_to_load_is_listed_with_its_error(
    installed_broken_plugin, run_cli
) -> None:
    report = {p["name"]: p for p in json.loads(run_cli("plugins", "--json").output)}
    assert report["broken"]["status"] == "failed"
    assert "ImportError: needs libfoo.so" in report["broken"]["errors"][0]
    assert report["brightness"]["provides"]["taggers"] == [{"name": "brightness", "version": "1"}]
    assert load_registry().tagger("brightness")


def test_load_plugins_switch_limits_what_loads(monkeypatch) -> None:
    monkeypatch.setenv("CURATOR_LOAD_PLUGINS", "brightness")
    pm = get_plugin_manager()
    assert set(pm.report.loaded) == {"brightness"}
    assert "clap" in pm.report.skipped


def test_trace_switch_prints_the_hook_calls_of_a_real_command(run_curator) -> None:
    env = {**os.environ, "CURATOR_LOAD_PLUGINS": "brightness", "CURATOR_TRACE_PLUGINS": "1"}
    result = run_curator("plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    # brightness implements register_taggers only: the trace shows its call and result.
    assert "register_taggers [hook]" in result.stderr
    assert "finish register_taggers" in result.stderr
    assert [p["name"] for p in json.loads(result.stdout) if p["status"] == "loaded"] == [
        "brightness"
    ]


def test_plugins_left_out_by_the_switch_are_listed_as_skipped(run_curator) -> None:
    env = {**os.environ, "CURATOR_LOAD_PLUGINS": "brightness"}
    report = {p["name"]: p for p in json.loads(run_curator("plugins", "--json", env=env).stdout)}
    assert report["clap"] == {
        "name": "clap",
        "version": None,
        "status": "skipped",
        "provides": {},
        "errors": [],
    }
    listed = run_curator("plugins", env=env)
    assert listed.returncode == 0, listed.stderr
    (clap_row,) = [line for line in listed.stderr.splitlines() if " clap " in line]  # rich
    assert "skipped (not in CURATOR_LOAD_PLUGINS)" in clap_row


def test_plugins_command_lists_the_built_ins(run_cli) -> None:
    result = run_cli("plugins")
    for name in ("clap", "essentia", "musicnn", "minilm", "brightness"):
        assert name in result.output


def test_plugins_in_a_project_shows_its_plugin_tables_and_names_a_misspelt_one(
    project: Project, run_cli, monkeypatch
) -> None:
    monkeypatch.delenv("CURATOR_PROJECT", raising=False)
    monkeypatch.chdir(project.root.parent)  # no curator.toml here or above
    settings = project.root / "curator.toml"
    settings.write_text(
        settings.read_text() + "\n[plugins.trap]\nbatch_windows = 8\n[plugins.clapp]\nhop = 1\n"
    )
    shown = run_cli("plugins", "--project", project.root)
    assert "[plugins.trap]" in shown.output
    assert f"{settings}: [plugins.clapp] configures no installed plugin" in shown.output
    report = {
        p["name"]: p
        for p in json.loads(run_cli("plugins", "--json", "--project", project.root).stdout)
    }
    assert report["trap"]["configured"] == ["trap"]
    assert report["clap"]["configured"] == []
    outside = json.loads(run_cli("plugins", "--json").stdout)
    assert all("configured" not in entry for entry in outside)
