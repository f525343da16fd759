"""Kill -9 at random moments: tag, analyze, ingest and export end as a clean run would.

Each command runs as a real CLI process and is killed (SIGKILL) at a seeded random moment
after it has reached the catalogue, sometimes while another process holds the catalogue
longer than the lock timeout; then the same command is run again to completion. The
catalogue must then equal the one an uninterrupted run made in a second project from the
same audio (ignoring run ids, timestamps and the project's own paths), the export's
manifest must be byte for byte the same, later runs must work, and no shard or staging
folder may be left behind.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import curator_command

from curator.cli import cli
from curator.demo import render_demo_dataset
from curator.export.records import MANIFEST
from curator.export.staging import staging_path
from curator.project import Project, init_project, open_project

# Kills are placed by watching the command's open files in /proc (see wait_for_opens).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc"),
]

SEED = 11
KILLS = 10  # per command; HELD of them while another process holds the catalogue
HELD = 3
HOLD_SECONDS = 2.5  # well past the lock timeout below
SETTINGS = """\
[ingest]
segment_min_seconds = 4.0
segment_max_seconds = 6.0
workers = 1
commit_every = 1
[catalog]
lock_timeout_seconds = 1.0
[tagging]
batch_size = 1
shard_size = 2
"""
# What each command runs, and the plugins its process loads (CURATOR_LOAD_PLUGINS): only
# the ones it uses, so that a process starts in seconds.
COMMANDS: dict[str, tuple[list[str], str]] = {
    "ingest": (["ingest", "{audio}"], ""),
    "tag": (["tag", "--plugin", "brightness"], "brightness"),
    "analyze": (["analyze", "--plugin", "essentia"], "essentia"),
    "export": (["export", "{out}"], "stable-audio-tools,template"),
}
ORDER = ("ingest", "tag", "analyze", "export")

# What must match a clean run, without run ids, timestamps or the project's own paths.
STATE_SQL = {
    "tracks": "SELECT id, content_hash, path, duration, sample_rate, channels, format, "
    "subtype, status, reason FROM tracks",
    "files": "SELECT path, size, mtime_ns, track_id, status, reason FROM files",
    "segments": "SELECT id, track_id, idx, start, duration, rms_db, peak_db, silent, "
    "excluded, note FROM segments",
    "labels": "SELECT segment_id, facet, tag, source, source_kind, present, value, score, "
    "actor FROM labels",
    "scores": "SELECT r.plugin, r.plugin_version, s.segment_id, s.scores FROM scores s "
    "JOIN runs r ON r.id = s.run_id",
    "measurements": "SELECT r.plugin, m.segment_id, m.name, m.value, m.text, m.confidence "
    "FROM measurements m JOIN runs r ON r.id = m.run_id",
    "embeddings": "SELECT segment_id, model, vector FROM embeddings",
    "done": "SELECT DISTINCT r.kind, r.plugin, i.segment_id FROM run_items i "
    "JOIN runs r ON r.id = i.run_id WHERE i.status = 'done'",
    "failed": "SELECT r.plugin, i.segment_id, i.reason FROM run_items i "
    "JOIN runs r ON r.id = i.run_id WHERE i.status <> 'done'",
    "prompts": "SELECT segment_id, writer, text, source_kind, input_key FROM prompts",
    "exports": "SELECT DISTINCT selection, exporter, settings, content_hash, n_segments, "
    "n_files, left_out FROM exports",
    "runs left running": "SELECT kind, plugin FROM runs WHERE status = 'running'",
}

# A second process that takes the catalogue read-write when told to and keeps it.
HOLDER = """
import sys, time, duckdb
print("ready", flush=True)
sys.stdin.readline()
while True:
    try:
        con = duckdb.connect(sys.argv[1])
        break
    except duckdb.IOException:
        time.sleep(0.01)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


@dataclass
class Reference:
    """The clean run: the project before each command, what each did, how often it opened
    the catalogue, and the export's manifest."""

    audio: Path
    stages: dict[str, Path]  # a copy of the project before each command
    opens: dict[str, int]  # how often each command opened the catalogue
    states: dict[str, dict[str, list[tuple[Any, ...]]]]  # after each command
    manifest: bytes


@dataclass
class Outcome:
    """What the kills of one command met, for the assertion messages."""

    plan: list[str] = field(default_factory=list)
    partial: int = 0  # kills that left the work part-done


def catalogue_state(project: Project) -> dict[str, list[tuple[Any, ...]]]:
    with project.catalog.connect() as con:
        return {
            name: sorted(map(tuple, con.execute(sql).fetchall()), key=repr)
            for name, sql in STATE_SQL.items()
        }


def command_line(command: str, project: Path, out: Path, audio: Path) -> list[str]:
    args, _ = COMMANDS[command]
    return [a.format(audio=audio, out=out) for a in args] + ["--project", str(project)]


def start(command: str, project: Path, out: Path, audio: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "CURATOR_LOAD_PLUGINS": COMMANDS[command][1], "COLUMNS": "200"}
    return subprocess.Popen(
        curator_command(*command_line(command, project, out, audio)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def holds_catalogue(pid: int, catalogue: Path) -> bool:
    """Whether process `pid` has the catalogue file open (it has got past its start-up)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(catalogue):
                return True
        except OSError:
            continue
    return False


def wait_for_opens(process: subprocess.Popen[str], catalogue: Path, count: int) -> int:
    """Until the command has opened the catalogue `count` times, or has ended; returns how
    often it did. Each open is one step of its work (DESIGN.md decision 2: a process opens,
    works and closes), so counting them places a kill at a point of the work, not of the
    clock. Polling can miss a very short open: the count is a lower bound.
    """
    seen, was_open = 0, False
    while seen < count and process.poll() is None:
        is_open = holds_catalogue(process.pid, catalogue)
        seen += is_open and not was_open
        was_open = is_open
        time.sleep(0.002)
    return seen


def run_to_completion(command: str, project: Path, out: Path, audio: Path) -> str:
    """The same command again, in this process through the real CLI; it must succeed."""
    result = CliRunner().invoke(cli, command_line(command, project, out, audio))
    assert result.exit_code == 0, f"`curator {command}` after a kill: {result.output}"
    return result.output


def copy_project(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def leftovers(project: Path, out: Path | None) -> list[str]:
    """Shard folders, files under runs/, and anything beside the export but the export."""
    runs = project / "runs"
    found = [str(p) for p in runs.rglob("*") if p.is_file() or p.name.startswith("shard-")]
    if out is not None:
        found += [str(p) for p in out.parent.iterdir() if p != out]
    return found


# -- the clean run ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """Four short rendered beats (two segments each), every command run once, unkilled."""
    root = tmp_path_factory.mktemp("crash")
    audio = root / "audio"
    render_demo_dataset(audio, 4, seed=SEED)
    (audio / "truth.json").unlink()
    project = init_project(root / "reference")
    (project.root / "curator.toml").write_text(SETTINGS)
    stages, opens, states = {}, {}, {}
    out = root / "reference-export" / "out"
    for command in ORDER:
        stages[command] = copy_project(project.root, root / f"before-{command}")
        process = start(command, project.root, out, audio)
        opens[command] = wait_for_opens(process, project.catalog.path, 10**6)
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, f"clean `curator {command}`: {stderr}"
        states[command] = catalogue_state(open_project(project.root))
    return Reference(audio, stages, opens, states, (out / MANIFEST).read_bytes())


def test_the_clean_run_did_every_part_of_the_work(reference: Reference) -> None:
    state = reference.states["export"]
    assert len(state["tracks"]) == 4 and len(state["segments"]) == 8
    assert {plugin for _, plugin, _ in state["done"]} == {"brightness", "essentia", "template"}
    assert state["scores"] and state["measurements"] and state["prompts"]
    assert state["failed"] == [] and state["runs left running"] == []
    assert len(reference.manifest.splitlines()) == 8


# -- killing each command ---------------------------------------------------------------


class Holder:
    """A child process that opens the catalogue read-write when told, and keeps it."""

    def __init__(self, catalogue: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(catalogue), str(HOLD_SECONDS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._line() == "ready"

    def take(self) -> None:
        """Take the catalogue as soon as the command lets go of it; back when held."""
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        assert self._line() == "held"

    def _line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def wait(self) -> None:
        assert self.process.wait(timeout=60) == 0


def plan(command: str) -> list[tuple[str, float, float]]:
    """(kind, where, delay) per round: KILLS kills (HELD of them while another process holds
    the catalogue) and one round that meets the held catalogue and ends by itself. `where`
    (0 to 1) says after how much of the work, `delay` (s) how long after that catalogue open.
    """
    rng = random.Random(f"{SEED}-{command}")
    kinds = ["kill"] * (KILLS - HELD) + ["kill while held"] * HELD + ["held, no kill"]
    rng.shuffle(kinds)
    return [(kind, rng.random(), rng.choice([0.0, rng.uniform(0, 0.2)])) for kind in kinds]


def one_round(
    reference: Reference, command: str, number: int, kind: str, where: float, delay: float,
    root: Path,
) -> tuple[Path, Path, str]:  # fmt: skip
    """Run `command` in a fresh copy of the project, stop it as `kind` says, and return
    (project, export folder, what the command met)."""
    project = copy_project(reference.stages[command], root / f"{command}-{number:02d}")
    out = root / f"exported-{number:02d}" / "out"
    catalogue = project / "catalog.duckdb"
    holder = Holder(catalogue) if "held" in kind else None
    process = start(command, project, out, reference.audio)
    opened = wait_for_opens(process, catalogue, 1 + int(where * reference.opens[command]))
    time.sleep(delay)
    if holder is not None:
        holder.take()
        if kind == "kill while held":
            time.sleep(where * HOLD_SECONDS)
    if kind.startswith("kill") and process.poll() is None:
        met = f"killed after {opened} opens"
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    else:
        _, stderr = process.communicate(timeout=300)
        assert "Traceback" not in stderr, f"round {number} ({kind}): {stderr}"
        met = f"it ended by itself with {process.returncode}"
    if holder is not None:
        holder.wait()
    return project, out, met


def work_kept(command: str, project: Path, out: Path, reference: Reference) -> tuple[int, int]:
    """How much of the command's work a kill left done, of how much a whole run does:
    tracks ingested; segments the tagger or analyzer did; for an export, prompts written
    and audio files staged (two steps per segment)."""
    state = catalogue_state(open_project(project))
    if command == "ingest":
        return len(state["tracks"]), len(reference.states[command]["tracks"])
    if command == "export":
        whole = 2 * len(state["segments"])
        if out.exists():
            return whole, whole
        return len(state["prompts"]) + len(list(staging_path(out).rglob("*.wav"))), whole
    plugin = COMMANDS[command][1]
    done = lambda rows: sum(row[1] == plugin for row in rows)  # noqa: E731
    return done(state["done"]), done(reference.states[command]["done"])


@pytest.mark.parametrize("command", ORDER)
def test_a_killed_command_run_again_ends_as_a_clean_run(
    reference: Reference, command: str, tmp_path: Path
) -> None:
    outcome = Outcome()
    for number, (kind, at, delay) in enumerate(plan(command)):
        project, out, met = one_round(reference, command, number, kind, at, delay, tmp_path)
        where = (
            f"`curator {command}` seed {SEED} round {number}: {kind} at {at:.2f} "
            f"+ {delay:.2f} s, {met}"
        )
        done, whole = work_kept(command, project, out, reference)
        outcome.plan.append(f"{where}; {done} of {whole} kept")
        outcome.partial += met.startswith("killed") and 0 < done < whole
        run_to_completion(command, project, out, reference.audio)
        state = catalogue_state(open_project(project))
        for table, rows in reference.states[command].items():
            assert state[table] == rows, f"{where}: table {table} differs from a clean run's"
        if command == "export":
            assert (out / MANIFEST).read_bytes() == reference.manifest, where
        assert leftovers(project, out if command == "export" else None) == [], where
    print("\n".join(outcome.plan))  # what each kill met: `pytest -rP` shows it
    assert outcome.partial, (
        f"no kill caught the work part-done (a whole run opens the catalogue "
        f"{reference.opens[command]} times):\n" + "\n".join(outcome.plan)
    )
    later_runs_work(project, tmp_path / "later-export" / "out", reference)


def later_runs_work(project: Path, out: Path, reference: Reference) -> None:
    """After the kills, every command works on the project and finds nothing left to do."""
    for command in ORDER:
        run_to_completion(command, project, out, reference.audio)
    status = CliRunner().invoke(cli, ["status", "--project", str(project)])
    assert status.exit_code == 0, status.output
    state = catalogue_state(open_project(project))
    for table, rows in reference.states["export"].items():
        assert state[table] == rows, f"later runs: table {table} differs from a clean run's"
    assert leftovers(project, out) == []
