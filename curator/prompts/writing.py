"""Writing a training prompt per segment with a prompt-writer plugin, stored in batches.

Each prompt a writer returns is checked (curator.prompts.checking) before it is stored; a
prompt written before from the same input comes from the cache.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from curator.api import PromptWriter
from curator.catalogue.metadata import segment_metadata
from curator.errors import CuratorError, PromptRejected
from curator.project import Project
from curator.prompts.checking import key_problems, tag_lists, tempo_problems, text_problems
from curator.registry import Registry, load_registry
from curator.storage import RunRecord
from curator.storage.prompts import (
    PromptOutcome,
    PromptRow,
    cached_prompts,
    prompt_check,
    prompts_version,
    save_prompt_batch,
    save_prompt_check,
    stored_input_keys,
)
from curator.tagging.runs import host_id, plugin_context, recording_outcome, start_or_resume_run

DEFAULT_WRITER = "template"
BATCH_SEGMENTS = 2048  # prompts stored per transaction at most ...
BATCH_SECONDS = 5.0  # ... and at least this often, so a slow LLM loses little to a Ctrl-C
EXAMPLES = 3

Progress = Callable[[int, int], None]


@dataclass
class PromptSummary:
    """What one `write_prompts` did: written now, taken from the cache, current, failed."""

    writer: str  # name@version
    run_id: int | None = None
    segments: int = 0
    written: int = 0
    from_cache: int = 0
    skipped: int = 0
    failed: int = 0
    deferred: int = 0  # due, but left for later by `limit`
    interrupted: bool = False
    failures: list[tuple[str, str]] = field(default_factory=list)  # (segment id, reason)
    examples: list[tuple[str, str]] = field(default_factory=list)  # (segment id, prompt)

    def fail(self, segment_id: str, reason: str) -> None:
        self.failed += 1
        self.failures.append((segment_id, reason))


# -- identity of a prompt's input ----------------------------------------------------------


def segment_seed(seed: int, segment_id: str) -> int:
    """The seed a writer gets for one segment: stable across runs, machines and orders."""
    digest = hashlib.sha256(f"{seed}:{segment_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def input_key(
    metadata: Mapping[str, Any],
    writer: str,
    settings: Mapping[str, Any],
    vocabulary_hash: str | None,
    seed: int,
) -> str:
    """What a prompt is written from, hashed: the metadata (less the file's location,
    which says nothing about the sound), writer@version, its settings, vocabulary, seed."""
    described = {k: v for k, v in metadata.items() if k != "source"}
    identity = json.dumps(
        [described, writer, dict(settings), vocabulary_hash, seed], sort_keys=True, default=str
    )
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


# -- writing ------------------------------------------------------------------------------------


def prompt_writer(project: Project, name: str, registry: Registry | None = None) -> PromptWriter:
    """The writer plugin `name`, set up with the project's settings and vocabulary."""
    registry = registry or load_registry()
    writer: PromptWriter = registry.prompt_writer(name)
    writer.setup(plugin_context(project, name, registry))
    return writer


def write_prompts(
    project: Project,
    segment_ids: Sequence[str] | None = None,
    writer: str = DEFAULT_WRITER,
    seed: int = 0,
    force: bool = False,
    progress: Progress | None = None,
    *,
    limit: int | None = None,
    registry: Registry | None = None,
) -> PromptSummary:
    """Write and store a prompt for each usable segment (or each of `segment_ids`).

    A segment whose prompt by this writer@version was written from the same metadata,
    settings, vocabulary and seed is skipped unless `force`; an input answered before comes
    from the cache. A segment that fails is reported with its reason and the rest go on.
    Prompts are stored in batches, so an interrupted run resumes where it stopped.
    A run that finds the metadata and this writer's prompts as they were when every prompt
    of the same job was last current reads no metadata at all (two fingerprints, ~0.1 s).
    """
    plugin = prompt_writer(project, writer, registry)
    job = _PromptRun(project, plugin, seed)
    summary = PromptSummary(job.label)
    job_key = job.job_key(segment_ids)
    # Taken before the metadata is read, so a label changed meanwhile is seen next time.
    metadata_version = project.catalog.metadata_version()
    check = (job_key, segment_ids, metadata_version)
    if not force and _all_current(project, job.label, check, summary):
        return summary
    records = _records(project, segment_ids, summary)
    keys = {sid: job.key(sid, record) for sid, record in records.items()}
    summary.segments = len(keys)
    current = {} if force else stored_input_keys(project.catalog, job.label)
    todo = [sid for sid, key in keys.items() if current.get(sid) != key]
    summary.skipped = len(keys) - len(todo)
    if limit is not None:
        summary.deferred = max(0, len(todo) - limit)
        todo = todo[:limit]
    if todo:
        cached = {} if force else cached_prompts(project.catalog, [keys[s] for s in todo])
        summary.run_id = job.start_run()
        project.catalog.start_progress(summary.run_id, len(todo))  # Home shows done/total
        job.write_all([(sid, records[sid], keys[sid]) for sid in todo], cached, summary, progress)
    if not (summary.failed or summary.deferred or summary.interrupted):
        fingerprint = _fingerprint(project, job.label, segment_ids, metadata_version)
        save_prompt_check(project.catalog, job_key, fingerprint, summary.segments)
    return summary


def _fingerprint(
    project: Project, writer: str, segment_ids: Sequence[str] | None, metadata_version: str
) -> str:
    """The metadata and the writer's stored prompts of these segments (None: all): if
    neither changed, neither did whether those prompts are current."""
    return f"{metadata_version}/{prompts_version(project.catalog, writer, segment_ids)}"


def _all_current(
    project: Project,
    writer: str,
    check: tuple[str, Sequence[str] | None, str],
    summary: PromptSummary,
) -> bool:
    """Whether every prompt of the job (key, segments, metadata version) was current when
    the catalogue last looked as it does now; then the summary says so, no metadata read."""
    job_key, segment_ids, metadata_version = check
    found = prompt_check(project.catalog, job_key)
    if found is None or found[0] != _fingerprint(project, writer, segment_ids, metadata_version):
        return False
    summary.segments = summary.skipped = found[1]
    return True


def _records(
    project: Project, segment_ids: Sequence[str] | None, summary: PromptSummary
) -> dict[str, dict[str, Any]]:
    if segment_ids is None:
        return segment_metadata(project)
    known = segment_metadata(project, include_unusable=True)
    wanted = list(dict.fromkeys(segment_ids))
    for segment_id in wanted:
        if segment_id not in known:
            summary.fail(segment_id, "no segment with this id in the catalogue")
    return {sid: known[sid] for sid in wanted if sid in known}


class _PromptRun:
    """One writer's run: its identity, the batch being written, and storing it."""

    def __init__(self, project: Project, plugin: PromptWriter, seed: int) -> None:
        self.project, self.plugin, self.seed = project, plugin, seed
        self.label = f"{plugin.name}@{plugin.version}"
        self.settings = plugin.settings_for_run()
        context = getattr(plugin, "context", None)
        self.vocabulary = context.vocabulary if context else None
        self.vocabulary_hash = self.vocabulary.fingerprint() if self.vocabulary else None
        self.run_id: int | None = None
        self.rows: list[PromptRow] = []
        self.outcomes: list[PromptOutcome] = []
        self.flushed_at = time.monotonic()

    def job_key(self, segment_ids: Sequence[str] | None) -> str:
        """What decides the prompts of this run apart from each segment's metadata, and
        which segments it covers (None: every usable one)."""
        wanted = None if segment_ids is None else sorted(set(segment_ids))
        identity = [self.label, self.settings, self.vocabulary_hash, self.seed, wanted]
        text = json.dumps(identity, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def key(self, segment_id: str, record: Mapping[str, Any]) -> str:
        seed = segment_seed(self.seed, segment_id)
        return input_key(record, self.label, self.settings, self.vocabulary_hash, seed)

    def start_run(self) -> int:
        settings = {**self.settings, "seed": self.seed}
        identity = json.dumps(
            ["prompt", self.label, settings, self.vocabulary_hash], sort_keys=True, default=str
        )
        record = RunRecord(
            "prompt",
            self.plugin.name,
            self.plugin.version,
            settings,
            hashlib.sha256(identity.encode()).hexdigest()[:16],
            self.vocabulary_hash,
            [],
            False,
            host_id(),
        )
        self.run_id = start_or_resume_run(self.project, record)
        return self.run_id

    def write_all(
        self,
        todo: list[tuple[str, dict[str, Any], str]],
        cached: dict[str, str],
        summary: PromptSummary,
        progress: Progress | None,
    ) -> None:
        with recording_outcome(summary, self.finish):
            for done, (segment_id, record, key) in enumerate(todo, 1):
                self.write_one(segment_id, record, key, cached, summary)
                if progress:
                    progress(done, len(todo))

    def finish(self, status: str, error: str | None) -> None:
        self.flush()
        if self.run_id is not None:
            self.project.catalog.set_run_status(self.run_id, status, error)

    def write_one(
        self,
        segment_id: str,
        record: dict[str, Any],
        key: str,
        cached: dict[str, str],
        summary: PromptSummary,
    ) -> None:
        text = cached.get(key)
        try:
            if text is None:
                text = self.plugin.write(record, segment_seed(self.seed, segment_id)).strip()
            problems = text_problems(text) + tempo_problems(text, record.get("tempo"))
            problems += key_problems(text, record.get("key"), record.get("scale"))
            if problems:
                raise PromptRejected(f"{'; '.join(problems)}: {text!r}")
        except CuratorError as exc:
            if not isinstance(exc, PromptRejected):
                raise  # the writer cannot work at all: stop, keeping what was written
            self.failed(segment_id, str(exc), summary)
            return
        except Exception as exc:  # one segment's trouble must not stop the others
            self.failed(segment_id, f"{type(exc).__name__}: {exc}", summary)
            return
        if key in cached:
            summary.from_cache += 1
        else:
            summary.written += 1
        written_from = tag_lists(record)  # to tell later whether the tags changed since
        self.add(
            PromptRow(segment_id, self.label, text, self.run_id, key, None, written_from), summary
        )

    def failed(self, segment_id: str, reason: str, summary: PromptSummary) -> None:
        summary.fail(segment_id, reason)
        self.outcomes.append(PromptOutcome(segment_id, "failed", reason))
        self.flush_if_due()

    def add(self, row: PromptRow, summary: PromptSummary) -> None:
        self.rows.append(row)
        self.outcomes.append(PromptOutcome(row.segment_id, "done"))
        if len(summary.examples) < EXAMPLES:
            summary.examples.append((row.segment_id, row.text))
        self.flush_if_due()

    def flush_if_due(self) -> None:
        due = time.monotonic() - self.flushed_at >= BATCH_SECONDS
        if len(self.outcomes) >= BATCH_SEGMENTS or due:
            self.flush()

    def flush(self) -> None:
        if self.outcomes:
            save_prompt_batch(self.project.catalog, self.rows, self.run_id, self.outcomes)
        self.rows, self.outcomes = [], []
        self.flushed_at = time.monotonic()
