"""`curator export`: a selection (or the whole usable catalogue) built into a training-set folder.

The build chooses the segments and their prompts from the catalogue, then hands them on:
`staging` proves and prepares the folder, `audio` writes each segment's files, `records`
the manifest and Parquet metadata, the exporter plugin the trainer's own files; the
finished folder is swapped into place and the catalogue records it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from curator.api import Exporter, PluginContext
from curator.catalogue.metadata import segment_metadata
from curator.duplicates.units import read_units
from curator.errors import CuratorError, SettingsError
from curator.export.audio import (
    FORMATS,
    SUBTYPES,
    Progress,
    audio_state,
    reuse_key,
    write_audio,
)
from curator.export.records import (
    MANIFEST,
    METADATA,
    SECONDS,
    ExportSegment,
    ExportSummary,
    build_records,
    catalogue_record,
    content_hash,
    count_records,
    manifest_bytes,
    write_metadata_parquet,
)
from curator.export.staging import (
    check_destination,
    clear_for_exporter,
    mark_finished,
    prepare_staging,
    remove_previous,
    swap_into_place,
)
from curator.project import Project
from curator.registry import Registry, load_registry
from curator.settings import ExportSettings
from curator.storage.exports import exports as recorded_exports
from curator.storage.exports import record_export
from curator.storage.prompts import effective_prompts
from curator.storage.selections import SelectionItem, selection_items
from curator.tagging.runs import settle_dead_runs

# -- settings ----------------------------------------------------------------------------------


def export_settings(project: Project, **overrides: Any) -> ExportSettings:
    """The project's `[export]` table with the given values (None: keep) put over it, checked."""
    chosen = {key: value for key, value in overrides.items() if value is not None}
    settings = dataclasses.replace(project.settings.export, **chosen)
    check_settings(settings)
    return settings


def check_settings(settings: ExportSettings) -> None:
    """Raise SettingsError naming the first export setting that cannot work."""
    problems = {
        "format": (settings.format in FORMATS, f"one of {', '.join(FORMATS)}"),
        "bit_depth": (settings.bit_depth in SUBTYPES, "16 or 24"),
        "sample_rate": (8000 <= settings.sample_rate <= 192000, "between 8000 and 192000"),
        "channels": (settings.channels in (1, 2), "1 or 2"),
        "seconds": (settings.seconds in SECONDS, '"segment" or "track"'),
        "workers": (settings.workers >= 0, "0 (one per core) or more"),
    }
    for key, (ok, expected) in problems.items():
        if not ok:
            value = getattr(settings, key)
            raise SettingsError(f"export.{key} must be {expected}, got {value!r}")


# -- the export --------------------------------------------------------------------------------


def export(
    project: Project,
    out: Path,
    selection: str | None = None,
    settings: ExportSettings | None = None,
    progress: Progress | None = None,
    registry: Registry | None = None,
    dedupe: bool = False,
) -> ExportSummary:
    """Export `selection` (None: every usable segment, all in train) to the folder `out`.

    `dedupe` writes one member of each duplicate unit (curator.duplicates.units) and lists
    the others as left out, naming the member written instead.

    The folder is built beside `out` and renamed into place at the end, so an interrupted
    or failed export leaves the previous one intact; running it again reuses the audio the
    interrupted run already wrote. Segments whose source cannot be read are left out and
    listed in the summary; the others are exported. A destination Curator may not write
    to (see `check_destination`) is refused before anything is written.
    """
    settings = settings or export_settings(project)
    check_settings(settings)
    out = out.expanduser().resolve()
    check_destination(project, out)
    # A prompt run an earlier export finished while the catalogue was busy may still be
    # recorded as running; with no prompt missing now, nothing else would settle it.
    settle_dead_runs(project)
    registry = registry or load_registry()
    exporter = _exporter(project, settings.exporter, registry)
    summary = ExportSummary(out, selection, f"{exporter.name}@{exporter.version}")
    segments = chosen_segments(project, selection, summary, dedupe)
    prompts = _prompts(project, segments, settings, progress, summary, registry)
    segments = [s for s in segments if s.id in prompts]
    _check_something_left(segments, out, summary)
    reuse = reuse_key(project, settings)
    planned = [path for s in segments for path in s.files(settings.format)]
    staging = prepare_staging(out, reuse, planned)
    written = write_audio(segments, staging, settings, out, reuse, progress, summary)
    _check_something_left(written, out, summary)
    records = build_records(written, prompts, settings)
    _finish_staging(staging, records, settings, exporter, out, reuse, summary)
    swap_into_place(staging, out)
    summary.export_id = record_export(project.catalog, catalogue_record(summary, settings))
    remove_previous(out)
    return summary


def exports(project: Project) -> list[dict[str, Any]]:
    """Every export the catalogue recorded, newest first, with its settings and left-out
    segments decoded (`curator exports`)."""
    return recorded_exports(project.catalog)


def _check_something_left(
    segments: Sequence[ExportSegment], out: Path, summary: ExportSummary
) -> None:
    # An empty export would replace a good one; stable-audio-tools would find no file.
    if not segments:
        reasons = "; ".join(f"{s}: {r}" for s, r in summary.left_out[:5])
        raise CuratorError(f"nothing to export to {out}: {reasons or 'no usable segment'}")


def _exporter(project: Project, name: str, registry: Registry) -> Exporter:
    exporter = registry.exporter(name)
    exporter.setup(
        PluginContext(
            settings=project.settings.plugins.get(name, {}),
            project_root=project.root,
            cache_dir=project.root / "cache" / name,
        )
    )
    return exporter


def _finish_staging(
    staging: Path,
    records: list[dict[str, Any]],
    settings: ExportSettings,
    exporter: Exporter,
    out: Path,
    reuse: Mapping[str, Any],
    summary: ExportSummary,
) -> None:
    """Write the manifest, the Parquet metadata and the exporter's files, then the marker."""
    clear_for_exporter(staging, reuse, summary.exporter)
    manifest = manifest_bytes(records)
    (staging / MANIFEST).write_bytes(manifest)
    write_metadata_parquet(records, staging / METADATA)
    count_records(summary, records)
    summary.left_out.sort()
    summary.content_hash = content_hash(manifest, audio_state(settings), summary.exporter)
    exporter.export(records, staging, final=out)
    mark_finished(staging, summary, settings, reuse, {r["filepath"] for r in records})


# -- choosing segments and prompts -------------------------------------------------------------


def chosen_segments(
    project: Project, selection: str | None, summary: ExportSummary, dedupe: bool = False
) -> list[ExportSegment]:
    """The selection's segments that are still usable, by id (with `dedupe`, one per
    duplicate unit); the others go to `left_out`."""
    catalog = project.catalog
    usable = {row["id"]: row for row in catalog.segment_rows()}
    if selection is None:
        items = [SelectionItem(segment_id) for segment_id in sorted(usable)]
    else:
        items = selection_items(catalog, selection)
    missing = [item.segment_id for item in items if item.segment_id not in usable]
    summary.left_out += _unusable_reasons(project, missing)
    items = [item for item in items if item.segment_id in usable]
    if dedupe:
        items = _one_per_unit(project, items, summary)
    metadata = segment_metadata(project)
    return [_segment(usable[item.segment_id], item, metadata[item.segment_id]) for item in items]


def _one_per_unit(
    project: Project, items: list[SelectionItem], summary: ExportSummary
) -> list[SelectionItem]:
    """One item per duplicate unit; the others are left out, each naming the one kept."""
    units = read_units(project.catalog)
    folded = units.fold(item.segment_id for item in items)
    summary.left_out += [
        (segment, f"a duplicate (--dedupe): {units.link_words(segment, kept)}, exported instead")
        for segment, kept in folded.left_out.items()
    ]
    return [item for item in items if item.segment_id not in folded.left_out]


def _segment(row: Mapping[str, Any], item: SelectionItem, meta: Mapping[str, Any]) -> ExportSegment:
    return ExportSegment(
        id=row["id"],
        track_id=row["track_id"],
        source=row["source"],
        start=float(row["start"]),
        duration=float(row["duration"]),
        track_duration=float(row["track_duration"]),
        split=item.split,
        repeats=_copies(item),
        weight=float(item.weight),
        metadata=meta,
    )


def _copies(item: SelectionItem) -> int:
    # Repeats upsample rare tags for training; validation measures each segment once, or
    # its loss would weigh the repeated segments more.
    return 1 if item.split == "validation" else max(1, int(item.repeats))


def _unusable_reasons(project: Project, segment_ids: Sequence[str]) -> list[tuple[str, str]]:
    if not segment_ids:
        return []
    rows = {row["id"]: row for row in project.catalog.segment_rows(include_unusable=True)}
    reasons = []
    for segment_id in segment_ids:
        row = rows.get(segment_id)
        if row is None:
            reason = "no longer in the catalogue"
        elif row["excluded"]:
            reason = "excluded from training by a curator since the selection was made"
        elif row["silent"]:
            reason = "flagged silent"
        else:
            reason = f"its track is missing ({row['source']} is gone; run `curator ingest`)"
        reasons.append((segment_id, reason))
    return reasons


def _prompts(
    project: Project,
    segments: Sequence[ExportSegment],
    settings: ExportSettings,
    progress: Progress | None,
    summary: ExportSummary,
    registry: Registry,
) -> dict[str, str]:
    """segment id -> prompt; segments without one get one written, or are left out."""
    ids = [s.id for s in segments]
    writer = settings.writer or None
    prompts = effective_prompts(project.catalog, ids, writer=writer)
    missing = [i for i in ids if i not in prompts]
    reasons: dict[str, str] = {}
    summary.prompts_missing = len(missing)
    if missing:
        reasons = _write_missing_prompts(project, missing, settings, progress, registry)
        prompts = effective_prompts(project.catalog, ids, writer=writer)
        summary.prompts_written = sum(1 for i in missing if i in prompts)
    name = settings.writer or "template"
    summary.left_out += [
        (i, f"no prompt: {reasons.get(i, f'the {name!r} writer wrote none')}")
        for i in ids
        if i not in prompts
    ]
    return prompts


def _write_missing_prompts(
    project: Project,
    missing: list[str],
    settings: ExportSettings,
    progress: Progress | None,
    registry: Registry,
) -> dict[str, str]:
    """Write prompts for `missing`; returns why a segment got none (segment id -> reason)."""
    try:  # imported here: the prompt writers load only when a prompt is missing
        from curator.prompts.writing import write_prompts
    except ImportError as exc:
        raise CuratorError(
            f"{len(missing)} segment(s) have no prompt and no prompt writer could be loaded "
            f"({exc}); run `curator prompts` first"
        ) from exc
    written = write_prompts(
        project,
        segment_ids=missing,
        writer=settings.writer or "template",
        seed=settings.seed,
        progress=(lambda done, total: progress(done, total, "prompts")) if progress else None,
        registry=registry,
    )
    return dict(written.failures)
