"""Writing a training prompt per segment with a prompt-writer plugin, and checking prompts."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from curator.api import PromptWriter
from curator.catalogue.metadata import segment_metadata
from curator.errors import CuratorError, PromptRejected
from curator.music import (
    key_mentions,
    key_name,
    mentions_tempo,
    scale_mentions,
    scale_name,
    tempo_mentions,
)
from curator.project import Project
from curator.registry import Registry, load_registry
from curator.storage import RunRecord
from curator.storage.prompts import (
    HUMAN,
    PromptOutcome,
    PromptRow,
    cached_prompts,
    delete_human_prompt,
    prompts_in_use,
    save_prompt_batch,
    save_prompts,
    stored_input_keys,
)
from curator.storage.selections import selection_items
from curator.tagging.runs import host_id, plugin_context, recording_outcome, start_or_resume_run
from curator.vocabulary import Vocabulary

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


# -- checking a prompt ------------------------------------------------------------------------


# Unicode's control characters (category Cc) other than line breaks, which are named apart.
_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def text_problems(text: str, max_chars: int | None = None) -> list[str]:
    """What makes `text` unusable as a prompt at all: empty, several lines, control
    characters, too long."""
    problems = []
    if not text.strip():
        problems.append("empty")
    if "\n" in text or "\r" in text:
        problems.append("more than one line")
    controls = sorted({repr(c) for c in _CONTROL.findall(text)})
    if controls:
        problems.append(f"control character(s) {', '.join(controls)}")
    if max_chars is not None and len(text) > max_chars:
        problems.append(f"{len(text)} characters, more than {max_chars}")
    return problems


def prompt_problems(
    text: str,
    metadata: Mapping[str, Any],
    vocabulary: Vocabulary | None = None,
    max_chars: int | None = None,
    require_tags: bool = True,
) -> list[str]:
    """Every reason `text` is not a faithful prompt for `metadata` (empty list: it is).

    Checks the text itself, that no tempo, key or scale contradicts (or is absent from)
    the metadata, and (require_tags) that every tag is named, by its name or a synonym.
    """
    problems = text_problems(text, max_chars)
    problems += tempo_problems(text, metadata.get("tempo"))
    problems += key_problems(text, metadata.get("key"), metadata.get("scale"))
    if require_tags:
        missing = missing_tags(text, metadata, vocabulary)
        if missing:
            problems.append(f"does not mention {', '.join(missing)}")
    return problems


def tag_lists(metadata: Mapping[str, Any]) -> dict[str, list[str]]:
    """facet -> its tags, from the metadata's `<facet>_tags` lists."""
    return {
        key.removesuffix("_tags"): list(value)
        for key, value in metadata.items()
        if key.endswith("_tags") and value
    }


def tag_phrases(vocabulary: Vocabulary | None, facet: str, tag: str) -> tuple[str, ...]:
    """The tag's name and synonyms; just the name for a tag the vocabulary lacks."""
    if vocabulary is not None and facet in vocabulary.facet_names:
        known = vocabulary.facet(facet).tag(tag)
        if known is not None:
            return known.phrases
    return (tag,)


def missing_tags(
    text: str, metadata: Mapping[str, Any], vocabulary: Vocabulary | None
) -> list[str]:
    """The metadata's tags that `text` names neither by name nor by any synonym."""
    said = _normalized(text)
    return [
        tag
        for facet, tags in tag_lists(metadata).items()
        for tag in tags
        if not any(_mentions(said, p) for p in tag_phrases(vocabulary, facet, tag))
    ]


def _normalized(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9&]+", " ", text.lower()).split())


def _mentions(normalized_text: str, phrase: str) -> bool:
    # "hi-hat" matches "hi hat", "hihat" and "hi-hats"; words never match inside others.
    words = _normalized(phrase).split()
    if not words:
        return False
    body = "[ ]?".join(re.escape(w) for w in words)
    return re.search(rf"(?<![a-z0-9&]){body}(?:s|es)?(?![a-z0-9&])", normalized_text) is not None


def tempo_problems(text: str, tempo: Any) -> list[str]:
    """A BPM the text names that the metadata lacks or that differs by more than 1."""
    if tempo is None:
        return ["names a tempo the metadata does not have"] if mentions_tempo(text) else []
    wrong = [n for n in tempo_mentions(text) if abs(n - float(tempo)) > 1.0]
    return [f"names {n:g} BPM, the metadata says {float(tempo):g}" for n in wrong]


def key_problems(text: str, key: Any, scale: Any) -> list[str]:
    """A key or scale the text names that the metadata lacks or that differs from it."""
    named = key_mentions(text)
    scales = scale_mentions(text) + [m.scale for m in named if m.scale]
    problems = []
    for mention in named:
        if key is None:
            problems.append(f"names the key {mention.spelt}, the metadata has none")
        elif mention.key != key_name(str(key)):
            problems.append(f"names the key {mention.spelt}, the metadata says {key}")
    for named_scale in scales:
        if scale is None:
            problems.append(f"names a {named_scale} scale, the metadata has none")
        elif named_scale != scale_name(str(scale)):
            problems.append(f"names a {named_scale} scale, the metadata says {scale}")
    return problems


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
    """
    plugin = prompt_writer(project, writer, registry)
    job = _Job(project, plugin, seed)
    summary = PromptSummary(job.label)
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
        job.write_all([(sid, records[sid], keys[sid]) for sid in todo], cached, summary, progress)
    return summary


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


class _Job:
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
        self.add(PromptRow(segment_id, self.label, text, self.run_id, key), summary)

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


# -- curators' edits and the prompts page -------------------------------------------------------


def edit_prompt(project: Project, segment_id: str, text: str) -> None:
    """Store a curator's prompt for a segment; it wins over every writer's."""
    text = text.strip()
    problems = text_problems(text)
    if problems:
        raise CuratorError(f"prompt for {segment_id} not saved: {'; '.join(problems)}")
    save_prompts(project.catalog, [PromptRow(segment_id, HUMAN, text)])


def revert_prompt(project: Project, segment_id: str) -> bool:
    """Drop the curator's prompt for a segment, so the writers' is used again."""
    return delete_human_prompt(project.catalog, segment_id)


def selection_segment_ids(project: Project, selection: str) -> list[str]:
    """The segments of a named selection (UnknownSelection names the known ones)."""
    return [item.segment_id for item in selection_items(project.catalog, selection)]


def prompt_table(
    project: Project,
    selection: str | None = None,
    text: str | None = None,
    tag: str | None = None,
) -> list[dict[str, Any]]:
    """Segments with their metadata and the prompt in use (and who wrote it), filtered by
    selection, by a tag of any facet, and by text in the prompt, segment id or file name."""
    records = segment_metadata(project, include_unusable=selection is not None)
    ids = selection_segment_ids(project, selection) if selection else list(records)
    in_use = prompts_in_use(project.catalog, ids)
    rows = [_table_row(sid, records[sid], in_use.get(sid)) for sid in ids if sid in records]
    if tag:
        rows = [r for r in rows if tag in r["tags"]]
    if text:
        needle = text.lower()
        rows = [
            r
            for r in rows
            if needle in (r["prompt"] or "").lower()
            or needle in r["id"]
            or needle in r["source"].lower()
        ]
    return rows


def _table_row(segment_id: str, record: dict[str, Any], prompt: PromptRow | None) -> dict:
    return {
        "id": segment_id,
        "source": record["source"],
        "start": record["start"],
        "duration": record["duration"],
        "tags": [t for tags in tag_lists(record).values() for t in tags],
        "tempo": record.get("tempo"),
        "key": " ".join(str(record[k]) for k in ("key", "scale") if record.get(k)) or None,
        "prompt": prompt.text if prompt else None,
        "writer": prompt.writer if prompt else None,
    }
