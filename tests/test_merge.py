"""Merging run results while other processes hold the catalogue: nothing failed, lost or wedged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import curator_command
from tests_support import HatTagger, LevelAnalyzer, Plugin

from curator.api import Measurement
from curator.catalogue.ingest import ingest
from curator.errors import CatalogBusy, CuratorError
from curator.project import Project, init_project, open_project
from curator.status import project_status
from curator.storage import RunRecord
from curator.tagging import shards
from curator.tagging.runs import host_id, run_analyzer, run_tagger
from curator.testing import registry_of

# A child that opens the catalogue read-write, says so, and keeps it until its stdin closes:
# the test decides when the catalogue is free again, so nothing depends on timing.
# It retries its own open: the run under test may hold the file for a merge at that moment.
HOLDER = (
    "import duckdb, sys, time\n"
    "for attempt in range(600):\n"
    "    try:\n"
    "        con = duckdb.connect(sys.argv[1])\n"
    "        break\n"
    "    except duckdb.IOException:\n"
    "        time.sleep(0.05)\n"
    "print('holding', flush=True)\n"
    "sys.stdin.read()\n"
    "con.close()\n"
)


class CatalogueHolder:
    """Another process holding the project's catalogue open, read-write."""

    def __init__(self, project: Project) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(project.root / "catalog.duckdb")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout and self.process.stdout.readline().strip() == "holding"

    def release(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        assert self.process.wait(timeout=30) == 0


class HoldingTagger(HatTagger):
    """Hands the catalogue to another process at one model call and takes it back at a later one."""

    def __init__(self, project: Project, hold_at: int, release_at: int | None) -> None:
        super().__init__()
        self.project, self.hold_at, self.release_at = project, hold_at, release_at
        self.holder: CatalogueHolder | None = None

    def tag(self, batch):
        if self.calls + 1 == self.hold_at:
            self.holder = CatalogueHolder(self.project)
        if self.calls + 1 == self.release_at and self.holder:
            self.holder.release()
        return super().tag(batch)


def small_shards(root: Path, shard_size: int = 2, lock_timeout: float = 1.0) -> Project:
    settings = root / "curator.toml"
    text = settings.read_text().replace("shard_size = 256", f"shard_size = {shard_size}")
    text = text.replace("lock_timeout_seconds = 120.0", f"lock_timeout_seconds = {lock_timeout}")
    settings.write_text(text)
    return open_project(root)


@pytest.fixture
def project(tmp_path: Path, loud_and_quiet: Path) -> Project:
    project = init_project(tmp_path / "project")
    ingest(project, [loud_and_quiet])
    return small_shards(project.root)


def items(project: Project) -> list[tuple[int, str, str, str | None]]:
    with project.catalog.connect() as con:
        return con.execute(
            "SELECT run_id, segment_id, status, reason FROM run_items ORDER BY ALL"
        ).fetchall()


def shard_folders(project: Project) -> list[Path]:
    return sorted(project.runs_dir.glob("*/shard-*"))


def assert_tagged_once(project: Project, *run_ids: int) -> None:
    """Every segment done exactly once by the given runs, nothing failed, no shard left."""
    rows = [row for row in items(project) if row[0] in run_ids]
    assert sorted(row[2] for row in rows) == ["done"] * 12
    assert len({segment for _, segment, _, _ in rows}) == 12
    scored = [i for run_id in run_ids for i in project.catalog.scores(run_id)[0]]
    assert len(scored) == len(set(scored)) == 12
    assert shard_folders(project) == []


def test_a_catalogue_busy_mid_run_fails_no_segment(project: Project) -> None:
    # Held from the 3rd model call to the 7th: the shards closed meanwhile wait on disk (each
    # try waits the whole lock timeout first) and are merged once the catalogue is free.
    tagger = HoldingTagger(project, hold_at=3, release_at=7)
    summary = run_tagger(project, "hats", batch_size=1, registry=registry_of(Plugin(tagger)))
    assert (summary.done, summary.failed, summary.failures) == (12, 0, [])
    assert_tagged_once(project, summary.run_id)
    (run,) = project.catalog.runs()
    assert (run["status"], run["done"], run["failed"]) == ("finished", 12, 0)
    # Later runs, of any plugin, start and finish.
    registry = registry_of(Plugin(LevelAnalyzer()))
    assert run_analyzer(project, "level", registry=registry).done == 12


def test_a_catalogue_busy_at_the_end_keeps_the_shards_for_the_next_run(project: Project) -> None:
    tagger = HoldingTagger(project, hold_at=11, release_at=None)
    registry = registry_of(Plugin(tagger))
    with pytest.raises(CatalogBusy, match="kept"):
        run_tagger(project, "hats", batch_size=1, registry=registry)
    assert tagger.holder
    tagger.holder.release()
    kept = shard_folders(project)
    assert kept, "the unmerged results wait on disk"
    first = project.catalog.runs()[0]
    assert first["status"] == "running"  # it could not record its end: the catalogue was busy

    # Every segment was computed: the next run only merges what waited, and the run ends
    # as an uninterrupted one would have.
    second = run_tagger(project, "hats", batch_size=1, registry=registry)
    assert (second.pending, second.notes) == (0, [])
    assert_tagged_once(project, first["id"])
    assert [r["status"] for r in project.catalog.runs()] == ["finished"]
    assert not project.runs_dir.exists() or not any(project.runs_dir.iterdir())


def test_merging_a_shard_twice_changes_nothing(project: Project) -> None:
    registry = registry_of(Plugin(HatTagger()))
    summary = run_tagger(project, "hats", limit=4, registry=registry)
    run_id = summary.run_id
    segments = [r["id"] for r in project.catalog.segment_rows()][4:6]
    tables = {
        "items": {
            "run_id": np.array([run_id] * 2),
            "segment_id": np.array(segments, dtype=object),
            "status": np.array(["done"] * 2, dtype=object),
            "reason": np.array([None] * 2, dtype=object),
        },
        "scores": {
            "segment_id": np.array(segments, dtype=object),
            "run_id": np.array([run_id] * 2),
            "scores": np.array([[0.9, 0.1], [0.2, 0.8]], dtype=np.float32),
        },
    }
    shard = shards.write_shard(project.runs_dir / f"{run_id:06d}", 1, run_id, tables, segments)
    merged = []
    for _ in range(2):
        project.catalog.merge_shard(shard.folder, run_id, "hats", shard.tables, segments)
        ids, scores = project.catalog.scores(run_id)
        merged.append((items(project), ids, scores.tolist()))
    assert merged[0] == merged[1]
    assert len(merged[1][0]) == len(set(merged[1][1])) == 6


def item_columns(run_id: int, segments: list[str]) -> dict[str, np.ndarray]:
    return {
        "run_id": np.array([run_id] * len(segments)),
        "segment_id": np.array(segments, dtype=object),
        "status": np.array(["done"] * len(segments), dtype=object),
        "reason": np.array([None] * len(segments), dtype=object),
    }


def test_a_leftover_shard_that_cannot_merge_is_set_aside_and_blocks_no_run(
    project: Project,
) -> None:
    hats = registry_of(Plugin(HatTagger()))
    run_id = run_tagger(project, "hats", limit=4, registry=hats).run_id
    segments = [r["id"] for r in project.catalog.segment_rows()][4:6]
    folder = project.runs_dir / f"{run_id:06d}"
    # What the old per-segment retries left: the same (run, segment) twice in one shard.
    twice = shards.write_shard(folder, 1, run_id, {"items": item_columns(run_id, segments * 2)}, [])
    garbled = shards.write_shard(folder, 2, run_id, {"items": item_columns(run_id, segments)}, [])
    (garbled.folder / shards.MANIFEST).write_text("{not json")
    orphan = shards.write_shard(
        project.runs_dir / "000099", 1, 99, {"items": item_columns(99, segments)}, segments
    )

    summary = run_analyzer(project, "level", registry=registry_of(Plugin(LevelAnalyzer())))
    assert summary.done == 12
    assert len(summary.notes) == 3
    for note, shard, reason in zip(
        summary.notes,
        (twice, garbled, orphan),
        ("duplicate key", "unreadable manifest", "run 99 is not in the catalogue"),
        strict=True,
    ):
        assert str(shard.folder) in note and reason in note
    set_aside = shards.quarantined(project.runs_dir)
    assert [Path(s["shard"]).name for s in set_aside] == [
        "000001-shard-000001",
        "000001-shard-000002",
        "000099-shard-000001",
    ]
    assert "duplicate key" in set_aside[0]["reason"]
    assert shard_folders(project) == []
    # The segments of the shards set aside were never recorded as done: the next run does them.
    rest = run_tagger(project, "hats", registry=hats)
    assert rest.done == 8
    assert_tagged_once(project, run_id, rest.run_id)


def test_unfinished_shards_of_a_run_that_is_over_are_removed(project: Project) -> None:
    hats = registry_of(Plugin(HatTagger()))
    run_id = run_tagger(project, "hats", limit=4, registry=hats).run_id
    unfinished = project.runs_dir / f"{run_id:06d}" / "shard-000007"
    unfinished.mkdir(parents=True)
    (unfinished / "items.parquet").write_bytes(b"PAR1 cut short by a kill")
    run_analyzer(project, "level", registry=registry_of(Plugin(LevelAnalyzer())))
    assert not project.runs_dir.exists() or list(project.runs_dir.iterdir()) == []


def test_a_shard_closes_after_shard_seconds_so_results_show_as_they_come(
    project: Project,
) -> None:
    class Watching(HatTagger):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[int] = []  # segments the catalogue held as done at each call

        def tag(self, batch):
            self.seen.append(len(items(project)))
            return super().tag(batch)

    settings = project.root / "curator.toml"
    settings.write_text(
        settings.read_text()
        .replace("shard_size = 2", "shard_size = 256")
        .replace("shard_seconds = 30.0", "shard_seconds = 0.000001")
    )
    tagger = Watching()
    run_tagger(
        open_project(project.root), "hats", batch_size=3, registry=registry_of(Plugin(tagger))
    )
    assert tagger.seen == [0, 3, 6, 9]


def test_shard_seconds_must_be_positive(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p")
    settings = project.root / "curator.toml"
    settings.write_text(settings.read_text().replace("shard_seconds = 30.0", "shard_seconds = 0"))
    with pytest.raises(CuratorError, match="shard_seconds"):
        open_project(project.root)


def only_plugin(name: str = "brightness") -> dict[str, str]:
    """The environment of a CLI process that loads only the plugin it runs (starts faster)."""
    return {**os.environ, "CURATOR_LOAD_PLUGINS": name}


def ended_process_id() -> int:
    """The id of a process that has come and gone."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(timeout=30)
    return process.pid


def status_of_runs(run_curator, root: Path) -> dict[str, str]:
    result = run_curator("status", "--json", "--project", root)
    assert result.returncode == 0, result.stderr
    return {run["plugin"]: run["status"] for run in json.loads(result.stdout)["runs"]}


def test_status_tells_a_live_run_from_a_dead_one(project: Project, run_curator) -> None:
    def record(plugin: str, host: str, pid: int) -> RunRecord:
        return RunRecord("tag", plugin, "1", {}, plugin, None, [], False, host, pid)

    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        live = project.catalog.start_run(record("live", host_id(), worker.pid))
        project.catalog.start_run(record("gone", host_id(), ended_process_id()))
        project.catalog.start_run(record("remote", "render-box-7", 4242))
        assert status_of_runs(run_curator, project.root) == {
            "live": "running",
            "gone": "interrupted",
            "remote": "running on render-box-7",
        }
        # A live run's folder is its own: another run leaves its unfinished shard alone.
        writing = project.runs_dir / f"{live:06d}" / "shard-000001"
        writing.mkdir(parents=True)
        run_analyzer(project, "level", registry=registry_of(Plugin(LevelAnalyzer())))
        assert writing.is_dir()
    finally:
        worker.kill()
        worker.wait(timeout=30)
    assert status_of_runs(run_curator, project.root)["live"] == "interrupted"
    run_analyzer(project, "level", registry=registry_of(Plugin(LevelAnalyzer())))
    assert not writing.parent.exists()
    recorded = {r["plugin"]: r["status"] for r in project.catalog.runs()}
    assert recorded["live"] == recorded["gone"] == "interrupted"  # recorded so at the next run
    assert recorded["remote"] == "running"


def test_tag_and_analyze_in_a_project_whose_path_has_a_quote(
    tmp_path: Path, loud_and_quiet: Path, run_curator
) -> None:
    root = tmp_path / "Ana's beats, take 2"
    ingest(init_project(root), [loud_and_quiet])
    for command in (
        ("tag", "--plugin", "brightness", "--limit", "3", "--project", root),
        ("analyze", "--plugin", "essentia", "--limit", "1", "--project", root),
    ):
        result = run_curator(*command, timeout=300, env=only_plugin(command[2]))
        assert result.returncode == 0, result.stderr
    runs = open_project(root).catalog.runs()
    assert [(r["plugin"], r["status"], r["done"]) for r in runs] == [
        ("brightness", "finished", 3),
        ("essentia", "finished", 1),
    ]


def test_a_real_tag_run_outlasts_a_catalogue_held_past_the_lock_timeout(
    tmp_path: Path, loud_and_quiet: Path, run_curator
) -> None:
    # The case: shards of a few segments, a 3 s lock timeout, and another process
    # holding the catalogue for longer than that while `curator tag` runs.
    project = init_project(tmp_path / "project")
    ingest(project, [loud_and_quiet])
    project = small_shards(project.root, shard_size=2, lock_timeout=3)
    command = curator_command(
        "tag", "--plugin", "brightness", "--batch-size", "1", "--project", project.root
    )
    tagging = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=only_plugin()
    )
    try:
        while len(items(project)) < 2 and tagging.poll() is None:
            time.sleep(0.1)
        holder = CatalogueHolder(project)
        time.sleep(7)  # the hold, longer than two lock timeouts: not an assertion
        holder.release()
        _, stderr = tagging.communicate(timeout=120)
    finally:
        tagging.kill()
    if tagging.returncode != 0:
        # The run ended inside the hold: it says what it kept, in one line, and the
        # next run merges it.
        assert "kept" in stderr and "Traceback" not in stderr, stderr
        again = run_curator(*command[3:], timeout=120, env=only_plugin())
        assert again.returncode == 0, again.stderr
    done = [(segment, status) for run, segment, status, _ in items(project)]
    assert sorted(status for _, status in done) == ["done"] * 12
    assert len(set(done)) == 12
    assert shard_folders(project) == []
    assert [run["status"] for run in project_status(project)["runs"]] == ["finished"]
    later = run_analyzer(project, "level", registry=registry_of(Plugin(LevelAnalyzer())))
    assert later.done == 12


def test_home_page_shows_what_each_run_is_and_the_shards_set_aside(
    project: Project, monkeypatch
) -> None:
    from streamlit.testing.v1 import AppTest

    from curator import app as app_package

    record = RunRecord("tag", "gone", "1", {}, "gone", None, [], False, host_id(), 0)
    project.catalog.start_run(RunRecord(**{**record.__dict__, "pid": ended_process_id()}))
    project.catalog.start_run(RunRecord(**{**record.__dict__, "plugin": "remote", "host": "b7"}))
    orphan = project.runs_dir / "000099" / "shard-000001"
    orphan.mkdir(parents=True)
    shards.quarantine(orphan, project.runs_dir, "run 99 is not in the catalogue")
    monkeypatch.setenv("CURATOR_PROJECT", str(project.root))
    home = str(Path(app_package.__file__).parent / "Home.py")
    page = AppTest.from_file(home, default_timeout=60).run()
    assert not page.exception, page.exception
    runs = next(d.value for d in page.dataframe if "plugin" in d.value.columns)
    assert dict(zip(runs["plugin"], runs["status"], strict=True)) == {
        "gone": "interrupted",
        "remote": "running on b7",
    }
    assert any("run 99 is not in the catalogue" in w.value for w in page.warning)


def test_a_shard_of_its_own_that_cannot_merge_fails_the_run_and_is_set_aside(
    project: Project,
) -> None:
    class Nameless(LevelAnalyzer):
        name = "nameless"

        def analyze(self, batch):  # a plugin bug: a measurement without a name
            return [[Measurement(None, value=1.0)] for _ in batch]  # type: ignore[arg-type]

    with pytest.raises(CuratorError, match="could not be merged") as raised:
        run_analyzer(project, "nameless", registry=registry_of(Plugin(Nameless())))
    (set_aside,) = shards.quarantined(project.runs_dir)
    assert Path(set_aside["shard"]).name == "000001-shard-000001"
    assert "NOT NULL" in set_aside["reason"] and "000001" in str(raised.value)
    assert [run["status"] for run in project.catalog.runs()] == ["failed"]
    # Nothing was recorded as done, and other runs go on.
    assert items(project) == []
    assert run_tagger(project, "hats", registry=registry_of(Plugin(HatTagger()))).done == 12
