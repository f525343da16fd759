"""The Ray engine on a real local Ray cluster: the local engine's results, dead actors, resume."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import curator_command

import curator.plugins.essentia
import curator.plugins.trap
import curator_brightness
from curator import hookimpl
from curator.catalogue.ingest import ingest
from curator.project import Project, init_project, open_project
from curator.tagging.ray_engine import RayOptions, run_on_ray
from curator.tagging.runs import run_plugin
from curator.testing import registry_of

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_cluster():
    """One local cluster for the module; this module's test plugins travel to its actors."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def new_project(root: Path, audio: Path, shard_size: int = 256) -> Project:
    project = init_project(root)
    if shard_size != 256:
        toml = project.root / "curator.toml"
        toml.write_text(toml.read_text().replace("shard_size = 256", f"shard_size = {shard_size}"))
        project = open_project(project.root)
    ingest(project, [audio])
    return project


def results(project: Project) -> dict[str, Any]:
    """Everything a run leaves in the catalogue, as comparable values."""
    catalog = project.catalog
    (run,) = catalog.runs()
    ids, scores = catalog.scores(run["id"])
    return {
        "labels": [
            (r["segment_id"], r["facet"], r["tag"], r["value"], r["score"], r["source"])
            for r in catalog.labels()
        ],
        "scores": (ids, scores.tolist()),
        "measurements": catalog.measurements(run["id"]),
        "items": done_items(project),
    }


def label_keys(found: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [label[:4] + label[5:] for label in found["labels"]]


def label_scores(found: dict[str, Any]) -> list[float | None]:
    return [label[4] for label in found["labels"]]


def close(a: list[Any], b: list[Any]) -> bool:
    """Equal, or (scores) equal to float32 rounding: 1e-5 relative, 1e-7 absolute."""
    if a == b:
        return True
    as_array = functools.partial(np.array, dtype=np.float64)
    return bool(np.allclose(as_array(a), as_array(b), rtol=1e-5, atol=1e-7))


def done_items(project: Project) -> list[str]:
    with project.catalog.connect() as con:
        rows = con.execute("SELECT segment_id FROM run_items WHERE status = 'done'").fetchall()
    return sorted(segment_id for (segment_id,) in rows)


@pytest.mark.parametrize(
    ("kind", "name", "module"),
    [
        ("tag", "brightness", curator_brightness),
        pytest.param("tag", "trap", curator.plugins.trap, marks=pytest.mark.slow),
        pytest.param("analyze", "essentia", curator.plugins.essentia, marks=pytest.mark.slow),
    ],
)
def test_ray_gives_exactly_the_local_engines_results(
    ray_cluster, tmp_path: Path, loud_and_quiet: Path, kind: str, name: str, module: Any
) -> None:
    registry = functools.partial(registry_of, module)
    local = new_project(tmp_path / "local", loud_and_quiet)
    on_ray = new_project(tmp_path / "ray", loud_and_quiet)
    assert run_plugin(local, kind, name, registry=registry()).done == 12
    summary = run_on_ray(on_ray, kind, name, RayOptions(actors=2), registry, batch_size=2)
    assert (summary.done, summary.failed, summary.interrupted) == (12, 0, False)
    expected, found = results(local), results(on_ray)
    assert found["items"] == expected["items"] and len(found["items"]) == 12
    assert found["measurements"] == expected["measurements"]
    assert found["scores"][0] == expected["scores"][0]
    # The same labels and scores, to float32's precision: an actor has one thread and its own
    # batches, and a network's sums come out in another order (a few units in the last place).
    assert label_keys(found) == label_keys(expected)
    assert close(label_scores(found), label_scores(expected))
    assert close(found["scores"][1], expected["scores"][1])
    assert [run["status"] for run in on_ray.catalog.runs()] == ["finished"]
    assert not list(on_ray.runs_dir.glob("*/shard-*"))


class CrashOnceTagger(curator_brightness.BrightnessTagger):
    """The brightness tagger, except that the first actor to tag a batch dies on the spot."""

    name = "crash-once"

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def tag(self, batch):
        if not self.marker.exists():
            self.marker.touch()
            os._exit(1)  # as a process killed by the kernel: no exception, no cleanup
        return super().tag(batch)


class CrashOncePlugin:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    @hookimpl
    def register_taggers(self, register) -> None:
        register(CrashOnceTagger(self.marker))


def crash_once_registry(marker: Path):
    return registry_of(CrashOncePlugin(marker))


def test_a_dead_actor_is_replaced_and_every_segment_done_once(
    ray_cluster, tmp_path: Path, loud_and_quiet: Path
) -> None:
    project = new_project(tmp_path / "project", loud_and_quiet, shard_size=1)
    marker = tmp_path / "crashed"
    registry = functools.partial(crash_once_registry, marker)
    summary = run_on_ray(project, "tag", "crash-once", RayOptions(actors=2), registry, batch_size=1)
    assert marker.exists()  # an actor did die mid-call
    assert (summary.done, summary.failed) == (12, 0)
    items = done_items(project)
    assert len(items) == len(set(items)) == 12
    ids, _ = project.catalog.scores(summary.run_id)
    assert len(ids) == len(set(ids)) == 12
    assert len(project.catalog.labels()) == 12  # bright or dark: one label each


def test_an_interrupted_driver_resumes_without_duplicates(
    ray_cluster, tmp_path: Path, loud_and_quiet: Path
) -> None:
    project = new_project(tmp_path / "project", loud_and_quiet, shard_size=1)
    registry = functools.partial(registry_of, curator_brightness)

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt  # Ctrl-C once the first results are in

    options = RayOptions(actors=1)
    first = run_on_ray(
        project, "tag", "brightness", options, registry, batch_size=1, progress=interrupt
    )
    assert first.interrupted and 0 < first.done < 12
    assert [run["status"] for run in project.catalog.runs()] == ["interrupted"]
    assert len(done_items(project)) == first.done  # what came back is merged, nothing lost
    second = run_on_ray(project, "tag", "brightness", options, registry, batch_size=1)
    assert second.run_id == first.run_id and second.done == 12 - first.done
    items = done_items(project)
    assert len(items) == len(set(items)) == 12
    assert [run["status"] for run in project.catalog.runs()] == ["finished"]


def test_ray_options_come_from_settings_and_flags(tmp_path: Path) -> None:
    project = init_project(tmp_path / "project")
    toml = project.root / "curator.toml"
    toml.write_text(toml.read_text().replace('ray_address = ""', 'ray_address = "auto"'))
    tagging = open_project(project.root).settings.tagging
    options = RayOptions.from_settings(tagging, actors=3, gpus_per_actor=None)
    assert options == RayOptions(address="auto", actors=3, cpus_per_actor=1.0, gpus_per_actor=0)
    assert RayOptions(actors=3).pool_size({"CPU": 8}, calls=2) == 2
    assert RayOptions(cpus_per_actor=2).pool_size({"CPU": 8}, calls=10) == 4
    assert RayOptions(gpus_per_actor=0.5).pool_size({"CPU": 8, "GPU": 2}, calls=10) == 4


def test_help_names_the_engine_options(run_cli) -> None:
    for command in ("tag", "analyze"):
        output = run_cli(command, "--help").output
        for flag in ("--engine", "--address", "--num-actors", "--cpus-per-actor"):
            assert flag in output


def test_ray_flags_need_the_ray_engine(run_cli, tmp_path: Path) -> None:
    project = init_project(tmp_path / "project")
    result = run_cli("analyze", "--address", "auto", "--project", project.root, expect=None)
    assert result.exit_code == 2 and "--address only apply to --engine ray" in result.output


def test_the_local_engine_never_imports_ray(tmp_path: Path, loud_and_quiet: Path) -> None:
    project = new_project(tmp_path / "project", loud_and_quiet)
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from curator.cli import cli\n"
        "for args in (['--help'], ['tag', '--plugin', 'brightness', '--project', sys.argv[1]]):\n"
        "    result = CliRunner().invoke(cli, args)\n"
        "    assert result.exit_code == 0, result.output\n"
        "print('ray' in sys.modules)\n"
    )
    env = {**os.environ, "CURATOR_LOAD_PLUGINS": "brightness"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(project.root)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    assert len(done_items(project)) == 12


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


SLOW_PLUGIN = """\
import time

import curator_brightness
from curator import hookimpl


class SlowBrightness(curator_brightness.BrightnessTagger):
    name = "slow-brightness"

    def tag(self, batch):
        time.sleep(0.5 * len(batch))  # long enough that a signal lands mid-run, whatever the load
        return super().tag(batch)


@hookimpl
def register_taggers(register):
    register(SlowBrightness())
"""


@pytest.fixture
def slow_plugin(tmp_path: Path) -> Path:
    """A folder that, on PYTHONPATH, installs the plugin "slow-brightness" as pip would:
    a module and a dist-info whose entry point Curator's registry finds."""
    folder = tmp_path / "site"
    info = folder / "slow_brightness-0.1.dist-info"
    info.mkdir(parents=True)
    (folder / "slow_brightness.py").write_text(SLOW_PLUGIN)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: slow-brightness\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[curator]\nslow-brightness = slow_brightness\n")
    return folder


def with_path(folder: Path) -> dict[str, str]:
    paths = [str(folder), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


@pytest.fixture
def ray_head(slow_plugin: Path):
    """A cluster started as a curator would, with `ray start --head` (--block: stopping
    that one process stops the cluster's processes, and no one else's); its workers can
    import the slow plugin, as every node of a real cluster has the plugins installed."""
    port = free_port()
    # Ray's sockets live under RAY_TMPDIR, whose path must stay short.
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    command = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block"]
    command += [f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2"]
    command += ["--include-dashboard=false", "--disable-usage-stats"]
    env = {**with_path(slow_plugin), "RAY_TMPDIR": str(temp)}
    head = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while not listening(port) and head.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert listening(port), head.stderr.read().decode() if head.poll() is not None else ""
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()
        head.communicate(timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_cli_on_a_running_cluster_stops_on_sigterm_and_resumes(
    ray_head: str, slow_plugin: Path, tmp_path: Path, loud_and_quiet: Path
) -> None:
    project = new_project(tmp_path / "project", loud_and_quiet, shard_size=1)
    command = curator_command(
        "tag", "--plugin", "slow-brightness", "--engine", "ray", "--address", ray_head,
        "--num-actors", "1", "--batch-size", "1", "--project", project.root,
    )  # fmt: skip
    # An explicit address joins with a token only when told to (Ray's token authentication).
    env = {**with_path(slow_plugin), "CURATOR_LOAD_PLUGINS": "slow-brightness"}
    env["RAY_AUTH_MODE"] = "token"
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 240
    while not done_items(project) and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Interrupted" in stderr
    partial = done_items(project)
    assert 0 < len(partial) < 12
    assert [run["status"] for run in project.catalog.runs()] == ["interrupted"]
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr
    items = done_items(project)
    assert len(items) == len(set(items)) == 12
    assert [run["status"] for run in project.catalog.runs()] == ["finished"]
