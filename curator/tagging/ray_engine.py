"""The Ray engine: a run's segments spread over a pool of Ray actors, one process writing.

DESIGN.md decision 8. The driver (the `curator tag` / `curator analyze` process) starts or
resumes the run as the local engine does, and hands Ray Data only each pending segment's
id, file, start and duration: audio never travels through the object store. Each actor
sets the plugin up once (through the registry, with the project's settings), decodes its
own windows and turns the plugin's output into the very rows a ShardWriter takes
(`curator.tagging.runs.process_batch`), so labels, scores, embeddings and measurements are
those of the local engine, and a failing segment is recorded as failed. The rows come back
to the driver, which alone writes shards and merges them. An actor that dies is replaced
and its segments redone (Ray Data's max_restarts / max_task_retries); rows of a segment
that come back twice are kept once.

Ray is imported only here, and only when a run uses this engine.
"""

from __future__ import annotations

import logging
import math
import pickle
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from curator.errors import CuratorError
from curator.project import Project
from curator.registry import Registry, load_registry
from curator.settings import TaggingSettings
from curator.tagging.runs import (
    Progress,
    RunSummary,
    RunWork,
    ShardWriter,
    decode_batches,
    decode_threads,
    host_id,
    process_batch,
    recording_run,
    run_plugin,
    run_record,
    set_up_work,
)

Tables = dict[str, dict[str, np.ndarray]]

# Plugin batches per actor call: enough that decoding the next batch overlaps the model,
# few enough that a replaced actor redoes little and results show as they come.
BATCHES_PER_CALL = 4
INSTALL_HINT = (
    "install Curator's ray extra: `uv sync --extra ray` (or pip install 'curator-audio[ray]')"
)


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide a run goes on Ray (`[tagging] ray_*`, or the CLI's flags).

    address: "auto" or "ray://head:10001" joins a running cluster; empty starts a local
      one for the run and stops it after.
    actors: actors in the pool; 0 fits as many as the cluster's CPUs (or GPUs) allow.
    cpus_per_actor / gpus_per_actor: what each actor reserves.
    """

    address: str = ""
    actors: int = 0
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0

    @classmethod
    def from_settings(cls, tagging: TaggingSettings, **given: Any) -> RayOptions:
        """The `[tagging] ray_*` settings, with the options `given` (None: not given) over them."""
        options = cls(
            tagging.ray_address,
            tagging.ray_actors,
            tagging.ray_cpus_per_actor,
            tagging.ray_gpus_per_actor,
        )
        chosen = {key: value for key, value in given.items() if value is not None}
        return cls(**{**options.__dict__, **chosen})

    def pool_size(self, resources: Mapping[str, float], calls: int) -> int:
        """Actors to start: as asked, else as many as the cluster's resources hold; never
        more than there are calls to make."""
        if self.actors:
            return max(1, min(self.actors, calls))
        if self.gpus_per_actor > 0:
            fit = resources.get("GPU", 0.0) / self.gpus_per_actor
        else:
            fit = resources.get("CPU", 1.0) / self.cpus_per_actor
        return max(1, min(math.floor(fit), calls))


@dataclass(frozen=True)
class WorkerJob:
    """What each actor is sent to set the plugin up as the driver did (no audio, no model)."""

    project: Project
    kind: str
    name: str
    run_id: int
    settings_hash: str
    batch_size: int
    decode_threads: int
    registry: Callable[[], Registry] = load_registry


class SegmentWorker:
    """One Ray actor: the plugin set up once; each call decodes and processes its segments."""

    def __init__(self, job: WorkerJob) -> None:
        self.job = job
        self.work = set_up_work(job.project, job.kind, job.name, job.registry())
        found = run_record(job.project, job.kind, self.work.plugin).settings_hash
        if found != job.settings_hash:
            # Another version of the plugin, its weights, settings or vocabulary on this node
            # would write results the run's identity does not describe.
            raise CuratorError(
                f"on {host_id()}, {job.name} is not set up as on the driver (settings hash "
                f"{found}, the run's is {job.settings_hash}): every node needs the same "
                "Curator, plugins, model files and project settings (docs/ray.md)"
            )

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Segments (id, source, start, duration) -> one row: their result rows, pickled."""
        writer = ShardWriter(self.job.project, self.job.run_id, self.work.plugin, size=1)
        summary = RunSummary(self.job.run_id, self.job.name)
        rows = segment_rows(batch)
        for decoded in decode_batches(
            rows, self.work.plugin, self.job.batch_size, threading.Event(), self.job.decode_threads
        ):
            process_batch(self.work, decoded, writer, summary)
        tables, segment_ids = writer.take()
        payload = pickle.dumps((tables, segment_ids), protocol=pickle.HIGHEST_PROTOCOL)
        return {"segments": np.array([len(segment_ids)]), "rows": np.array([payload], dtype=object)}


def segment_rows(batch: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """A Ray batch of pending segments as the rows `decode_batches` reads."""
    return [
        {"id": str(i), "source": str(s), "start": float(a), "duration": float(d)}
        for i, s, a, d in zip(
            batch["id"], batch["source"], batch["start"], batch["duration"], strict=True
        )
    ]


class RayEngine:
    """An `Engine` for `run_plugin`: the pending segments go to a pool of Ray actors."""

    def __init__(
        self,
        project: Project,
        options: RayOptions,
        registry: Callable[[], Registry] = load_registry,
    ) -> None:
        self.project, self.options, self.registry = project, options, registry

    def __call__(
        self,
        work: RunWork,
        pending: list[dict[str, Any]],
        size: int,
        writer: ShardWriter,
        summary: RunSummary,
        progress: Progress | None,
    ) -> None:
        record = run_record(work.project, work.kind, work.plugin)
        job = WorkerJob(
            self.project,
            work.kind,
            work.plugin.name,
            writer.run_id,
            record.settings_hash,
            size,
            decode_threads(
                self.project.settings.tagging.decode_workers, self.options.cpus_per_actor
            ),
            self.registry,
        )
        seen: set[str] = set()
        with recording_run(work, writer, summary, lambda: None), connected(self.options.address):
            for tables, segment_ids in results(job, pending, self.options):
                tables, segment_ids = without_seen(tables, segment_ids, seen)
                count_outcomes(tables.get("items", {}), summary)
                writer.add_finished(tables, segment_ids)
                if writer.due():
                    writer.flush()
                if progress:
                    progress(summary.done + summary.failed, summary.pending)


def run_on_ray(
    project: Project,
    kind: str,
    name: str,
    options: RayOptions | None = None,
    registry: Callable[[], Registry] = load_registry,
    **run_options: Any,
) -> RunSummary:
    """`run_plugin` on the Ray engine; `registry` makes the registry, here and in each actor."""
    options = options or RayOptions.from_settings(project.settings.tagging)
    engine = RayEngine(project, options, registry)
    return run_plugin(project, kind, name, registry=registry(), engine=engine, **run_options)


def results(
    job: WorkerJob, pending: list[dict[str, Any]], options: RayOptions
) -> Iterator[tuple[Tables, list[str]]]:
    """Each actor call's result rows and segments, as they come."""
    import ray

    calls_size = job.batch_size * BATCHES_PER_CALL
    calls = math.ceil(len(pending) / calls_size)
    items = [{key: row[key] for key in ("id", "source", "start", "duration")} for row in pending]
    dataset = ray.data.from_items(items, override_num_blocks=min(calls, 200)).map_batches(
        SegmentWorker,
        fn_constructor_args=(job,),
        batch_size=calls_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=options.pool_size(ray.cluster_resources(), calls)),
        num_cpus=options.cpus_per_actor,
        num_gpus=options.gpus_per_actor or None,
        # Ray Data's actor pools restart a dead actor and retry its calls without limit
        # (max_restarts = max_task_retries = -1 by default): its segments are redone.
    )
    try:
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for payload in batch["rows"]:
                yield pickle.loads(payload)
    except ray.exceptions.RayError as exc:
        raise CuratorError(f"the Ray run of {job.name} stopped: {ray_reason(exc)}") from None


def ray_reason(exc: BaseException) -> str:
    """The line of a Ray error that says why (Ray's own messages hold whole tracebacks)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception")) and " " not in head:
            return line
    return lines[0] if lines else type(exc).__name__


def without_seen(
    tables: Tables, segment_ids: list[str], seen: set[str]
) -> tuple[Tables, list[str]]:
    """The rows of segments not seen before (a retried call may bring some back); marks
    the new ones seen."""
    fresh = [segment_id for segment_id in segment_ids if segment_id not in seen]
    seen.update(fresh)
    if len(fresh) == len(segment_ids):
        return tables, segment_ids
    keep = np.array(fresh, dtype=object)
    kept = {}
    for name, columns in tables.items():
        rows = np.isin(columns["segment_id"], keep)
        kept[name] = {column: values[rows] for column, values in columns.items()}
    return kept, fresh


def count_outcomes(items: Mapping[str, np.ndarray], summary: RunSummary) -> None:
    """Add the segments done and failed, with the failures' reasons, to `summary`."""
    if not items:
        return
    status = items["status"]
    summary.done += int(np.count_nonzero(status == "done"))
    failed = status == "failed"
    summary.failed += int(np.count_nonzero(failed))
    summary.failures += [
        (str(i), str(r))
        for i, r in zip(items["segment_id"][failed], items["reason"][failed], strict=True)
    ]


@contextmanager
def connected(address: str) -> Iterator[None]:
    """Ray joined at `address` (empty: a local cluster started for the run, stopped after).

    Ray already initialised in this process (a test's cluster, a notebook) is used as it is.
    """
    try:
        import ray
    except ImportError:
        raise CuratorError(
            f"the ray engine needs Ray, which is not installed: {INSTALL_HINT}"
        ) from None
    quiet_ray_data()
    if ray.is_initialized():
        yield
        return
    _init(ray, address)
    try:
        yield
    finally:
        ray.shutdown()


def _init(ray: Any, address: str) -> None:
    # ray.init makes SIGTERM exit the process at once; a run must stop as on Ctrl-C, merging
    # what it finished (curator.cli.common.interruptible), so the handler is put back.
    handler = signal.getsignal(signal.SIGTERM)
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            ray.init(include_dashboard=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        if not address:
            raise CuratorError(f"could not start a local Ray cluster: {exc}") from None
        raise CuratorError(
            f"could not join Ray at {address}: {exc} (is the cluster running there? With "
            "an explicit address Ray authenticates only when RAY_AUTH_MODE=token is set, "
            "with the cluster's token in ~/.ray/auth_token: docs/ray.md)"
        ) from None
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, handler)


def quiet_ray_data() -> None:
    """Ray Data's progress lines would drown the run's own progress bar."""
    import ray

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
