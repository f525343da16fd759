"""Running a tagger or analyzer over the catalogue: decode ahead, shard, merge, resume.

How results reach the catalogue (DESIGN.md decision 2): the rows of finished segments are
collected and closed as a Parquet shard every `shard_size` segments or `shard_seconds`
seconds, whichever comes first, and each shard is merged in one transaction. A catalogue
held by another process never fails a segment: the shard waits on disk and is merged at
the next shard, at the end of the run, or by the next run. Merging is idempotent, so a
shard merged twice changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import queue
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from curator.api import Analyzer, Measurement, PluginContext, SegmentAudio, Tagger, TagResult
from curator.catalogue.audio import decode_window
from curator.errors import AudioError, CatalogBusy, CuratorError
from curator.music import VALUE_FACETS, value_text
from curator.project import Project
from curator.registry import HostedPlugins, Registry, load_registry
from curator.storage import RunRecord
from curator.tagging import shards

Progress = Callable[[int, int], None]
Plugin = Tagger | Analyzer


@dataclass
class RunSummary:
    """What one `curator tag` / `curator analyze` did."""

    run_id: int | None
    plugin: str
    pending: int = 0
    done: int = 0
    failed: int = 0
    interrupted: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. leftover shards set aside


def plugin_context(project: Project, name: str, registry: Registry | None = None) -> PluginContext:
    """What plugin `name` is given: its settings table, the vocabulary, a cache folder, the
    catalogue (its plugin's migrations applied first) and the other plugins of `registry`
    (None: the installed ones)."""
    registry = registry or load_registry()
    migrations = registry.migrations_of(name)
    if migrations:  # most plugins own none, and then the catalogue is not even opened
        project.catalog.migrate(migrations)
    tagging = project.settings.tagging
    return PluginContext(
        settings=project.settings.plugins.get(name, {}),
        vocabulary=project.vocabulary(),
        project_root=project.root,
        cache_dir=project.root / "cache" / name,
        offline=tagging.offline or os.environ.get("HF_HUB_OFFLINE") == "1",
        device=tagging.device,
        catalog=project.catalog,
        plugins=HostedPlugins(registry, partial(plugin_context, project, registry=registry)),
    )


def host_id() -> str:
    """This machine, as runs record it (the process is recorded apart, as the run's pid)."""
    return socket.gethostname()


# -- is a run alive? -----------------------------------------------------------------------

# The runs this process is running now: its own pid is alive whatever became of them.
_ACTIVE_RUNS: set[int] = set()


def run_state(run: Mapping[str, Any]) -> str:
    """What a run is now: its recorded status, except that a run recorded as "running"
    is "interrupted" when its process on this host is gone, and "running on HOST" when it
    runs on another host (whose processes cannot be seen from here)."""
    if run["status"] != "running":
        return str(run["status"])
    if run.get("host") and run["host"] != host_id():
        return f"running on {run['host']}"
    return "running" if _alive_here(run.get("pid"), run["id"]) else "interrupted"


def _alive_here(pid: int | None, run_id: int) -> bool:
    if pid is None:
        return False  # recorded before runs kept their process: long over
    if pid == os.getpid():
        return run_id in _ACTIVE_RUNS
    return process_alive(pid)


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists on this machine (a zombie, killed but not reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): the signal test is all there is
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def settle_dead_runs(project: Project, runs: Iterable[Mapping[str, Any]] | None = None) -> None:
    """Record as interrupted the runs still recorded as running whose process is gone.

    A run whose last write was refused by a busy catalogue stays "running" on record; every
    command that starts work settles such runs first, so none stays "running" forever.
    """
    runs = project.catalog.runs() if runs is None else runs
    dead = [r["id"] for r in runs if r["status"] == "running" and run_state(r) == "interrupted"]
    project.catalog.mark_runs_interrupted(dead)


def run_record(project: Project, kind: str, plugin: Plugin, from_cache: bool = False) -> RunRecord:
    """The run's identity: its settings hash decides which segments count as done."""
    settings = plugin.settings_for_run()
    vocabulary = project.vocabulary() if kind == "tag" else None
    vocabulary_hash = vocabulary.fingerprint() if vocabulary else None
    identity = json.dumps(
        [kind, plugin.name, plugin.version, settings, vocabulary_hash], sort_keys=True, default=str
    )
    return RunRecord(
        kind,
        plugin.name,
        plugin.version,
        settings,
        hashlib.sha256(identity.encode()).hexdigest()[:16],
        vocabulary_hash,
        [],
        from_cache,
        host_id(),
    )


# -- decoding ahead of the model ---------------------------------------------------------


@dataclass
class Batch:
    audio: list[SegmentAudio]
    failures: list[tuple[str, str]]


def decode_batches(
    segments: list[dict[str, Any]],
    plugin: Plugin,
    size: int,
    stop: threading.Event,
    workers: int = 1,
) -> Iterator[Batch]:
    """Batches of decoded segments, in order; `workers` background threads decode ahead
    while the model runs (soundfile and soxr release the GIL, so threads do decode in
    parallel)."""
    ready: queue.Queue[Batch | None] = queue.Queue(maxsize=max(3, workers))
    worker = threading.Thread(
        target=_decode_into, daemon=True, args=(segments, plugin, size, workers, ready, stop)
    )
    worker.start()
    while (batch := ready.get()) is not None:
        yield batch
    worker.join()


def decode_threads(setting: int, cpus: float | None = None) -> int:
    """Threads decoding audio for one process: `setting`, or when it is 0 (auto) the CPUs a
    Ray actor reserves (`cpus`), else half this machine's cores (the model has the rest),
    1 to 8. One is enough for a model on a CPU; a GPU eats windows faster than one thread
    decodes them (docs/ray.md)."""
    if setting:
        return setting
    available = cpus if cpus is not None else (os.cpu_count() or 2) / 2
    return max(1, min(8, int(available)))


def _decode_into(
    segments: list[dict[str, Any]],
    plugin: Plugin,
    size: int,
    workers: int,
    ready: queue.Queue[Batch | None],
    stop: threading.Event,
) -> None:
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="curator-decode") as pool:
            # At most `workers` batches decoding at once, handed over in the segments' order.
            decoding: deque[Future[Batch]] = deque()
            for start in range(0, len(segments), size):
                if stop.is_set():
                    break
                decoding.append(pool.submit(_decode_batch, segments[start : start + size], plugin))
                if len(decoding) >= workers:
                    ready.put(decoding.popleft().result())
            while decoding and not stop.is_set():
                ready.put(decoding.popleft().result())
            for future in decoding:
                future.cancel()
    finally:
        ready.put(None)


def _decode_batch(rows: list[dict[str, Any]], plugin: Plugin) -> Batch:
    batch = Batch([], [])
    for row in rows:
        try:
            audio = decode_window(
                Path(row["source"]),
                row["start"],
                row["duration"],
                plugin.sample_rate,
                plugin.channels,
            )
            batch.audio.append(SegmentAudio(row["id"], audio, plugin.sample_rate))
        except AudioError as exc:
            batch.failures.append((row["id"], exc.reason))
    return batch


# -- turning plugin output into rows ---------------------------------------------------------


@dataclass
class LabelColumns:
    """Model labels as columns: for each, the row of its segment, facet, tag and score."""

    rows: np.ndarray
    facets: np.ndarray
    tags: np.ndarray
    scores: np.ndarray


def model_labels(plugin: Tagger, tags: list[tuple[str, str]], scores: np.ndarray) -> LabelColumns:
    """Tags reaching their threshold, best `top_k` per facet, computed a facet at a time."""
    names = np.array([tag for _, tag in tags], dtype=object)
    parts = [
        _facet_labels(plugin, facet, tags, names, scores)
        for facet in dict.fromkeys(f for f, _ in tags)
    ]
    if not parts:
        return LabelColumns(*(np.array([], dtype=d) for d in (int, object, object, float)))
    return LabelColumns(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def _facet_labels(
    plugin: Tagger, facet: str, tags: list[tuple[str, str]], names: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, ...]:
    columns = np.array([i for i, (f, _) in enumerate(tags) if f == facet])
    limits = np.array([plugin.label_threshold(facet, tags[i][1]) for i in columns])
    values = np.nan_to_num(scores[:, columns], nan=-np.inf)
    order = np.argsort(-values, axis=1, kind="stable")[:, : plugin.label_top_k(facet)]
    best = np.take_along_axis(values, order, axis=1)
    rows, ranks = np.nonzero(best >= limits[order])
    chosen = columns[order[rows, ranks]]
    return rows, np.full(len(rows), facet, dtype=object), names[chosen], best[rows, ranks]


def score_matrix(results: list[TagResult], tags: list[tuple[str, str]]) -> np.ndarray:
    """Scores in the run's tag order; a tag a result lacks scores as NaN."""
    return np.array(
        [[r.scores.get(f, {}).get(t, np.nan) for f, t in tags] for r in results], dtype=np.float32
    )


class ShardWriter:
    """Collects one run's rows, as column chunks, and closes them as a shard when due."""

    def __init__(
        self,
        project: Project,
        run_id: int,
        plugin: Plugin,
        size: int,
        seconds: float = math.inf,
        in_memory: bool = False,
    ) -> None:
        self.project, self.run_id, self.plugin = project, run_id, plugin
        self.size, self.seconds = size, seconds
        # in_memory: this process merges its own results (no worker elsewhere), so they go
        # straight into the catalogue instead of through Parquet shards.
        self.in_memory = in_memory
        self.folder = project.runs_dir / f"{run_id:06d}"
        self.chunks: dict[str, list[dict[str, np.ndarray]]] = {}
        self.segment_ids: list[str] = []
        self.opened_at = 0.0  # when the first segment of the open shard finished
        self.unmerged: list[shards.Shard] = []  # on disk, waiting for a busy catalogue

    def add_rows(self, table: str, **columns: Any) -> None:
        """Equal-length columns (arrays or lists) of rows for `table`."""
        self.chunks.setdefault(table, []).append({k: _as_array(v) for k, v in columns.items()})

    def add(self, table: str, **values: Any) -> None:
        """One row."""
        self.add_rows(table, **{name: [value] for name, value in values.items()})

    def finish_segments(
        self, ids: list[str], status: str, reasons: list[str | None] | None = None
    ) -> None:
        count = len(ids)
        self.add_rows(
            "items",
            run_id=np.full(count, self.run_id),
            segment_id=ids,
            status=np.full(count, status, dtype=object),
            reason=np.array(reasons or [None] * count, dtype=object),
        )
        if not self.segment_ids:
            self.opened_at = time.monotonic()
        self.segment_ids += ids

    def finish_segment(self, segment_id: str, status: str, reason: str | None = None) -> None:
        self.finish_segments([segment_id], status, [reason])

    def take(self) -> tuple[dict[str, dict[str, np.ndarray]], list[str]]:
        """The rows added so far, as tables, and their segments; the writer is empty after.

        What a worker of another engine (a Ray actor) sends back to the writing process.
        """
        tables = {name: _concat(chunks) for name, chunks in self.chunks.items()}
        segment_ids, self.chunks, self.segment_ids = self.segment_ids, {}, []
        return tables, segment_ids

    def add_finished(
        self, tables: Mapping[str, Mapping[str, np.ndarray]], segment_ids: list[str]
    ) -> None:
        """Rows another process made for `segment_ids`, their `items` rows included (`take`)."""
        for name, columns in tables.items():
            self.add_rows(name, **columns)
        if not self.segment_ids:
            self.opened_at = time.monotonic()
        self.segment_ids += segment_ids

    @contextmanager
    def staged(self) -> Iterator[None]:
        """Keep the rows added in the body only if it ends without an exception.

        A batch the model fails on is retried a segment at a time: the rows it had added
        must go, or the retries would add the same segments again.
        """
        kept = {table: len(chunks) for table, chunks in self.chunks.items()}
        segments = len(self.segment_ids)
        try:
            yield
        except BaseException:
            self.chunks = {t: c[: kept[t]] for t, c in self.chunks.items() if kept.get(t)}
            del self.segment_ids[segments:]
            raise

    def due(self) -> bool:
        """Whether the open shard holds `size` segments or has been open `seconds`."""
        if not self.segment_ids:
            return False
        elapsed = time.monotonic() - self.opened_at
        return len(self.segment_ids) >= self.size or elapsed >= self.seconds

    def flush(self, final: bool = False) -> None:
        """Close the open shard and merge every shard not merged yet.

        While the catalogue is busy the shards wait on disk for the next flush; at the
        `final` one a busy catalogue raises CatalogBusy, and they wait for the next run.
        """
        with interrupts_deferred():
            self._flush(final)

    def _flush(self, final: bool) -> None:
        if self.segment_ids:
            tables = {name: _concat(chunks) for name, chunks in self.chunks.items()}
            if self.in_memory:
                self.project.catalog.merge_columns(
                    self.run_id, self.plugin.name, tables, self.segment_ids
                )
            else:
                number = shards.next_shard_number(self.folder)
                self.unmerged.append(
                    shards.write_shard(
                        self.folder, number, self.run_id, tables, self.segment_ids, self.plugin.name
                    )
                )
            self.chunks, self.segment_ids = {}, []
        self._merge_unmerged(final)

    def _merge_unmerged(self, final: bool) -> None:
        while self.unmerged:
            shard = self.unmerged[0]
            try:
                problem = merge_or_quarantine(self.project, shard.folder, self.plugin.name)
            except CatalogBusy as exc:
                if not final:
                    return
                raise CatalogBusy(
                    f"{exc} ({len(self.unmerged)} finished shard(s) of run {self.run_id} are "
                    f"kept in {self.folder}; the next tag or analyze run merges them)"
                ) from exc
            self.unmerged.pop(0)
            if problem:
                raise CuratorError(problem)
        if final:
            # A shard whose writing an interrupt cut short was written again in full.
            for unfinished in shards.unfinished_shard_folders(self.folder):
                shards.remove_folder(unfinished)
            shards.remove_if_empty(self.folder)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C or SIGTERM during the body is raised as KeyboardInterrupt once it ends.

    DuckDB turns an interrupt in the middle of a query into "Query interrupted": a shard
    half-written, or a good shard's merge failing and the shard set aside. Writing and
    merging a shard takes a moment; the interrupt waits for it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    for number in handlers:
        signal.signal(number, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    if received:
        raise KeyboardInterrupt


def _as_array(values: Any) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values
    if values and isinstance(values[0], np.ndarray):
        return np.stack(values).astype(np.float32)
    if any(isinstance(v, str) for v in values) or all(v is None for v in values):
        return np.array(values, dtype=object)
    return np.array(values)


def _concat(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}


def merge_or_quarantine(project: Project, folder: Path, plugin: str = "") -> str | None:
    """Merge the finished shard in `folder` and delete it; returns None.

    A shard that cannot be merged is moved to runs/quarantined/ and a line naming it and
    the reason is returned: it must never block the runs after it. A busy catalogue is not
    the shard's fault: CatalogBusy is raised and the shard stays where it is.
    """
    try:
        shard = shards.read_shard(folder)
        project.catalog.merge_shard(
            shard.folder, shard.run_id, shard.plugin or plugin, shard.tables, shard.segment_ids
        )
    except CatalogBusy:
        raise
    except Exception as exc:  # any other reason is the shard's: set it aside, go on
        reason = f"{type(exc).__name__}: {exc}"
        moved = shards.quarantine(folder, project.runs_dir, reason)
        return f"shard {folder} could not be merged ({reason}); moved to {moved}"
    shards.discard(shard)
    return None


def merge_leftover_shards(project: Project) -> list[str]:
    """Merge the shards that runs no longer running left behind, remove their unfinished
    shard folders, and quarantine what cannot be merged; returns a line per quarantined
    shard. The folders of runs still running (in a live process here, or on another host)
    are theirs and left alone. A busy catalogue raises CatalogBusy and changes nothing.
    """
    runs = {run["id"]: run for run in project.catalog.runs()}
    settle_dead_runs(project, runs.values())
    notes = []
    for run_id, folder in shards.run_folders(project.runs_dir).items():
        run = runs.get(run_id)
        if run is not None and run_state(run).startswith("running"):
            continue
        for unfinished in shards.unfinished_shard_folders(folder):
            shards.remove_folder(unfinished)
        plugin = run["plugin"] if run else ""
        for finished in shards.finished_shard_folders(folder):
            if run is None:
                reason = f"run {run_id} is not in the catalogue"
                moved = shards.quarantine(finished, project.runs_dir, reason)
                notes.append(f"shard {finished} could not be merged ({reason}); moved to {moved}")
            elif problem := merge_or_quarantine(project, finished, plugin):
                notes.append(problem)
        shards.remove_if_empty(folder)
    return notes


# -- the runs ----------------------------------------------------------------------------------


class RunWork:
    """What differs between taggers and analyzers: how a batch's output becomes rows."""

    kind = ""

    def __init__(self, project: Project, plugin: Any) -> None:
        self.project, self.plugin = project, plugin
        self.tags: list[tuple[str, str]] = []

    def process(self, batch: list[SegmentAudio], writer: ShardWriter) -> None:
        raise NotImplementedError


class _Tagging(RunWork):
    kind = "tag"

    def __init__(self, project: Project, plugin: Tagger) -> None:
        super().__init__(project, plugin)
        self.tags = plugin.tag_order()

    def process(self, batch: list[SegmentAudio], writer: ShardWriter) -> None:
        results = self.plugin.tag(batch)
        if len(results) != len(batch):
            raise CuratorError(
                f"{self.plugin.name} returned {len(results)} results for {len(batch)} segments"
            )
        write_tag_rows(self.plugin, self.tags, [s.segment_id for s in batch], results, writer)


def write_tag_rows(
    plugin: Tagger,
    tags: list[tuple[str, str]],
    ids: list[str],
    results: np.ndarray | list[TagResult],
    writer: ShardWriter,
) -> None:
    """Scores, model labels and embeddings of one batch (or of the whole cache) as columns."""
    matrix = results if isinstance(results, np.ndarray) else score_matrix(results, tags)
    segment_ids = np.array(ids, dtype=object)
    _add_labels(
        writer, f"{plugin.name}@{plugin.version}", segment_ids, model_labels(plugin, tags, matrix)
    )
    writer.add_rows(
        "scores",
        segment_id=segment_ids,
        run_id=np.full(len(ids), writer.run_id),
        scores=matrix.astype(np.float32),
    )
    if not isinstance(results, np.ndarray) and plugin.embedding_model:
        _add_embeddings(writer, plugin.embedding_model, ids, results)
    writer.finish_segments(ids, "done")


def _add_labels(
    writer: ShardWriter, source: str, segment_ids: np.ndarray, labels: LabelColumns
) -> None:
    count = len(labels.rows)
    constant = lambda value: np.full(count, value, dtype=object)  # noqa: E731
    writer.add_rows(
        "labels",
        segment_id=segment_ids[labels.rows],
        facet=labels.facets,
        tag=labels.tags,
        source=constant(source),
        source_kind=constant("model"),
        present=np.ones(count, dtype=bool),
        value=constant(None),
        run_id=np.full(count, writer.run_id),
        score=labels.scores,
        actor=constant(None),
    )


def _add_embeddings(
    writer: ShardWriter, model: str, ids: list[str], results: list[TagResult]
) -> None:
    kept = [(i, r.embedding) for i, r in zip(ids, results, strict=True) if r.embedding is not None]
    if kept:
        writer.add_rows(
            "embeddings",
            segment_id=[i for i, _ in kept],
            model=np.full(len(kept), model, dtype=object),
            run_id=np.full(len(kept), writer.run_id),
            vector=np.stack([np.asarray(e, np.float32) for _, e in kept]),
        )


class _Analysis(RunWork):
    kind = "analyze"
    # Measurements that become labels when confident enough; the others are only stored.
    LABELLED = VALUE_FACETS

    def process(self, batch: list[SegmentAudio], writer: ShardWriter) -> None:
        results = self.plugin.analyze(batch)
        if len(results) != len(batch):
            raise CuratorError(
                f"{self.plugin.name} returned {len(results)} results for {len(batch)} segments"
            )
        for segment, measurements in zip(batch, results, strict=True):
            for measurement in measurements:
                self._write(segment.segment_id, measurement, writer)
            writer.finish_segment(segment.segment_id, "done")

    def _write(self, segment_id: str, m: Measurement, writer: ShardWriter) -> None:
        writer.add(
            "measurements",
            segment_id=segment_id,
            run_id=writer.run_id,
            name=m.name,
            value=m.value,
            text=m.text,
            confidence=m.confidence,
        )
        if m.name in self.LABELLED and m.confidence >= self.project.settings.tagging.min_confidence:
            measured = m.text if m.text is not None else f"{m.value:g}"
            # A label keeps the one spelling (Essentia's "Eb" as "D#"), so pages can offer it.
            value = value_text(m.name, measured) or measured
            writer.add(
                "labels",
                segment_id=segment_id,
                facet=m.name,
                tag=m.name,
                source=f"{self.plugin.name}@{self.plugin.version}",
                source_kind="model",
                present=True,
                value=value,
                run_id=writer.run_id,
                score=m.confidence,
                actor=None,
            )


# How a run's pending segments are processed: (work, pending, batch size, writer, summary,
# progress). The local engine decodes ahead in a thread; curator.tagging.ray_engine spreads
# them over Ray actors. Either way the rows reach the catalogue through `writer`.
Engine = Callable[
    [RunWork, list[dict[str, Any]], int, ShardWriter, RunSummary, Progress | None], None
]


def run_plugin(
    project: Project,
    kind: str,
    name: str,
    batch_size: int | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    registry: Registry | None = None,
    engine: Engine | None = None,
) -> RunSummary:
    """Run tagger or analyzer `name` (kind "tag" or "analyze") on every usable segment
    that no run of it with these settings (and vocabulary) has done yet, on `engine`
    (None: this process)."""
    work = set_up_work(project, kind, name, registry)
    return run_work(project, work, batch_size, limit, progress, engine or process_locally)


def set_up_work(
    project: Project, kind: str, name: str, registry: Registry | None = None
) -> RunWork:
    """Plugin `name` of `kind` ("tag" or "analyze"), set up for `project`, with how its
    output becomes rows: what every process running it needs, once."""
    getter, work_class = _RUN_WORK[kind]
    registry = registry or load_registry()
    plugin = getattr(registry, getter)(name)
    plugin.setup(plugin_context(project, name, registry))
    return work_class(project, plugin)


def run_tagger(project: Project, name: str, **options: Any) -> RunSummary:
    """Tag every usable segment this tagger (with these settings) has not tagged yet."""
    return run_plugin(project, "tag", name, **options)


def run_analyzer(project: Project, name: str, **options: Any) -> RunSummary:
    """Analyze every usable segment this analyzer (with these settings) has not done yet."""
    return run_plugin(project, "analyze", name, **options)


_RUN_WORK: dict[str, tuple[str, type[RunWork]]] = {
    "tag": ("tagger", _Tagging),
    "analyze": ("analyzer", _Analysis),
}


def run_work(
    project: Project,
    work: RunWork,
    batch_size: int | None,
    limit: int | None,
    progress: Progress | None,
    engine: Engine,
) -> RunSummary:
    """Start or resume the run of `work`'s plugin and let `engine` process its pending segments."""
    notes = merge_leftover_shards(project)
    record = run_record(project, work.kind, work.plugin)
    record = RunRecord(**{**record.__dict__, "tags": work.tags})
    pending = project.catalog.pending_segments(record.settings_hash, limit)
    summary = RunSummary(None, work.plugin.name, pending=len(pending), notes=notes)
    if not pending:
        _close_completed_run(project, record)
        return summary
    run_id = start_or_resume_run(project, record)
    project.catalog.start_progress(run_id, len(pending))  # Home shows done/total as it goes
    summary.run_id = run_id
    tagging = project.settings.tagging
    writer = ShardWriter(project, run_id, work.plugin, tagging.shard_size, tagging.shard_seconds)
    size = batch_size or tagging.batch_size
    engine(work, pending, size, writer, summary, progress)
    return summary


def _close_completed_run(project: Project, record: RunRecord) -> None:
    # An interrupted run whose every segment is merged (it was stopped while recording its
    # end) is finished: say so, as an uninterrupted run would.
    resumed = resumable_run(project, record)
    if resumed is not None:
        project.catalog.set_run_status(resumed, "finished")


def start_or_resume_run(project: Project, record: RunRecord) -> int:
    """The id of this host's interrupted run with the same settings, resumed, or a new run."""
    catalog = project.catalog
    run_id = resumable_run(project, record)
    if run_id is None:
        run_id = catalog.start_run(record)
    else:
        catalog.claim_run(run_id, record.host, record.pid)
    _ACTIVE_RUNS.add(run_id)
    return run_id


def resumable_run(project: Project, record: RunRecord) -> int | None:
    """This host's newest unfinished run with the same settings whose process is gone.

    A run still alive in another process is never taken over: two processes would write
    the same shard folder.
    """
    for run in project.catalog.unfinished_runs(record.settings_hash):
        if run["host"] in (None, record.host) and run_state(run) == "interrupted":
            return int(run["id"])
    return None


def process_locally(
    work: RunWork,
    pending: list[dict[str, Any]],
    size: int,
    writer: ShardWriter,
    summary: RunSummary,
    progress: Progress | None,
) -> None:
    """The local engine: this process decodes ahead in a thread and runs the plugin."""
    stop = threading.Event()
    threads = decode_threads(work.project.settings.tagging.decode_workers)
    with recording_run(work, writer, summary, stop.set):
        for batch in decode_batches(pending, work.plugin, size, stop, threads):
            process_batch(work, batch, writer, summary)
            if writer.due():
                writer.flush()
            if progress:
                progress(summary.done + summary.failed, summary.pending)


@contextmanager
def recording_run(
    work: RunWork, writer: ShardWriter, summary: RunSummary, stop: Callable[[], None]
) -> Iterator[None]:
    """Run the body; whatever happens, `stop()` the producers, merge what is finished and
    record the run's outcome (see `recording_outcome`)."""

    def finish(status: str, error: str | None) -> None:
        stop()
        writer.flush(final=True)
        work.project.catalog.set_run_status(writer.run_id, status, error)

    with recording_outcome(summary, finish):
        yield


@contextmanager
def recording_outcome(summary: Any, finish: Callable[[str, str | None], None]) -> Iterator[None]:
    """Run the body, then call `finish(status, error)` whatever happened.

    Ctrl-C ends the body as "interrupted" (`summary.interrupted` is set and nothing is
    raised: finished work is kept and a re-run resumes); any other exception as "failed",
    with its message, and is raised again.
    """
    status, error = "finished", None
    try:
        yield
    except KeyboardInterrupt:
        status, summary.interrupted = "interrupted", True
    except Exception as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        try:
            finish(status, error)
        finally:
            _ACTIVE_RUNS.discard(summary.run_id)


def process_batch(work: RunWork, batch: Batch, writer: ShardWriter, summary: RunSummary) -> None:
    """Add a decoded batch's rows to `writer`; a segment the plugin fails on (found by
    retrying the batch a segment at a time) is recorded as failed, the others go on."""
    for segment_id, reason in batch.failures:
        _fail(segment_id, reason, writer, summary)
    if not batch.audio:
        return
    try:
        with writer.staged():
            work.process(batch.audio, writer)
        summary.done += len(batch.audio)
    except Exception as exc:
        if len(batch.audio) == 1:
            _fail(batch.audio[0].segment_id, f"{type(exc).__name__}: {exc}", writer, summary)
            return
        # Find the segment(s) at fault instead of failing the whole batch.
        for one in batch.audio:
            process_batch(work, Batch([one], []), writer, summary)


def _fail(segment_id: str, reason: str, writer: ShardWriter, summary: RunSummary) -> None:
    summary.failed += 1
    summary.failures.append((segment_id, reason))
    writer.finish_segment(segment_id, "failed", reason)


def retag_from_cache(project: Project, name: str, registry: Registry | None = None) -> RunSummary:
    """Re-score every cached embedding of a tagger against the current vocabulary, no audio."""
    registry = registry or load_registry()
    plugin = registry.tagger(name)
    plugin.setup(plugin_context(project, name, registry))
    ids, matrix = _cached_embeddings(project, plugin)
    tags = plugin.tag_order()
    record = RunRecord(
        **{**run_record(project, "tag", plugin, from_cache=True).__dict__, "tags": tags}
    )
    run_id = project.catalog.start_run(record)
    writer = ShardWriter(project, run_id, plugin, size=len(ids), in_memory=True)
    write_tag_rows(plugin, tags, ids, plugin.tag_embeddings(matrix), writer)
    writer.flush(final=True)
    project.catalog.set_run_status(run_id, "finished")
    return RunSummary(run_id, name, pending=len(ids), done=len(ids))


def _cached_embeddings(project: Project, plugin: Tagger) -> tuple[list[str], np.ndarray]:
    if not plugin.embedding_model:
        raise CuratorError(f"{plugin.name} keeps no embeddings, so it cannot re-tag from cache")
    ids, matrix = project.catalog.embeddings(plugin.embedding_model)
    if not ids:
        raise CuratorError(
            f"no cached embeddings for {plugin.name} yet: run "
            f"`curator tag --plugin {plugin.name}` first"
        )
    return ids, matrix
