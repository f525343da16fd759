"""`curator export`: a selection (or the whole usable catalogue) as a training-set folder.

What every exporter shares lives here: the per-file records (metadata, prompt, repeats,
split, source window), each segment's audio file and its repeated copies, the JSONL
manifest and Parquet metadata, resuming, the atomic rename into place, the content hash
and the catalogue's record. The trainer's own files come from an exporter plugin.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import soundfile as sf

from curator.api import Exporter, PluginContext
from curator.catalogue.audio import decode_window
from curator.catalogue.metadata import TAG_FACETS, segment_metadata
from curator.errors import AudioError, CuratorError, SettingsError
from curator.project import Project
from curator.registry import Registry, load_registry
from curator.settings import ExportSettings
from curator.storage.exports import ExportRecord, record_export
from curator.storage.prompts import effective_prompts
from curator.storage.selections import SPLITS, SelectionItem, selection_items

MANIFEST = "manifest.jsonl"
METADATA = "metadata.parquet"
STATE = "export.json"  # settings, counts, files: proves a folder is an export Curator wrote
MARKER = "curator_export"  # the key in STATE that says Curator wrote it, with its version
MARKER_VERSION = 1
WRITTEN = "files_written"  # in STATE: the files Curator wrote there, besides the manifest's
FORMATS = {"wav": "WAV", "flac": "FLAC"}
SUBTYPES = {16: "PCM_16", 24: "PCM_24"}
SECONDS = ("segment", "track")
# Bump when the audio written for the same settings would change (a resumed export then
# writes its audio again instead of reusing it).
AUDIO_VERSION = 1

Progress = Callable[[int, int, str], None]


@dataclass
class ExportSummary:
    """What one export did; `left_out` names every segment it could not use, and why."""

    out: Path
    selection: str | None
    exporter: str
    export_id: int | None = None
    segments: int = 0
    files: int = 0
    written: int = 0
    reused: int = 0
    prompts_written: int = 0
    content_hash: str = ""
    splits: dict[str, int] = field(default_factory=dict)
    left_out: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["out"] = str(self.out)
        data["left_out"] = [{"segment": s, "reason": r} for s, r in self.left_out]
        return data


@dataclass(frozen=True)
class ExportSegment:
    """One chosen segment with what its files need: source window, split, repeats, tags."""

    id: str
    track_id: str
    source: str
    start: float
    duration: float
    track_duration: float
    split: str
    repeats: int
    weight: float
    metadata: Mapping[str, Any]

    def files(self, ext: str) -> list[str]:
        """Paths relative to the export folder: the segment's file, then its copies."""
        names = [f"{self.id}.{ext}"] + [f"{self.id}.copy{k}.{ext}" for k in range(1, self.repeats)]
        return [f"{self.split}/{name}" for name in names]


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


def audio_state(settings: ExportSettings) -> dict[str, Any]:
    """What decides the bytes of every audio file; staged audio is reused only if it matches."""
    return {
        "version": AUDIO_VERSION,
        "format": settings.format,
        "bit_depth": settings.bit_depth,
        "sample_rate": settings.sample_rate,
        "channels": settings.channels,
    }


# -- the export --------------------------------------------------------------------------------


def export(
    project: Project,
    out: Path,
    selection: str | None = None,
    settings: ExportSettings | None = None,
    progress: Progress | None = None,
    registry: Registry | None = None,
) -> ExportSummary:
    """Export `selection` (None: every usable segment, all in train) to the folder `out`.

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
    registry = registry or load_registry()
    exporter = _exporter(project, settings.exporter, registry)
    summary = ExportSummary(out, selection, f"{exporter.name}@{exporter.version}")
    segments = chosen_segments(project, selection, summary)
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
    _swap_into_place(staging, out)
    summary.export_id = record_export(project.catalog, _export_record(summary, settings))
    _remove_previous(out)
    return summary


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


# -- choosing segments and prompts -------------------------------------------------------------


def chosen_segments(
    project: Project, selection: str | None, summary: ExportSummary
) -> list[ExportSegment]:
    """The selection's segments that are still usable, by id; the others go to `left_out`."""
    catalog = project.catalog
    usable = {row["id"]: row for row in catalog.segment_rows()}
    if selection is None:
        items = [SelectionItem(segment_id) for segment_id in sorted(usable)]
    else:
        items = selection_items(catalog, selection)
    missing = [item.segment_id for item in items if item.segment_id not in usable]
    summary.left_out += _unusable_reasons(project, missing)
    metadata = segment_metadata(project)
    return [
        _segment(usable[item.segment_id], item, metadata[item.segment_id])
        for item in items
        if item.segment_id in usable
    ]


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


# -- the staging folder ------------------------------------------------------------------------


def staging_path(out: Path) -> Path:
    """Where an export to `out` is built: a hidden folder beside it."""
    return out.parent / f".{out.name}.partial"


def previous_path(out: Path) -> Path:
    return out.parent / f".{out.name}.previous"


def reuse_key(project: Project, settings: ExportSettings) -> dict[str, Any]:
    """When a file written earlier holds the audio this export would write: same audio
    settings, same catalogue (where a segment id always names the same window)."""
    return {"audio": audio_state(settings), "catalog": str(project.catalog.path)}


def prepare_staging(out: Path, reuse: Mapping[str, Any], planned: Sequence[str] = ()) -> Path:
    """The staging folder, keeping what an interrupted run wrote if its audio settings match.

    `planned` names the audio files this run will write (relative to the folder); the
    staging marker lists them before they exist, so a run killed at any moment leaves a
    folder the next run can prove its own.
    """
    _check_ours(out)
    _recover_previous(out)
    staging = staging_path(out)
    _check_ours(staging)
    if staging.exists() and _read_state(staging).get("reuse") != reuse:
        remove_export(staging)
    staging.mkdir(parents=True, exist_ok=True)
    _claim(staging, reuse, [*planned, MANIFEST, METADATA])
    for split in SPLITS:
        (staging / split).mkdir(exist_ok=True)
    return staging


def _claim(
    staging: Path, reuse: Mapping[str, Any], planned: Sequence[str], exporting: str = ""
) -> None:
    """Mark `staging` as Curator's: the files in it now and those about to be written."""
    files, _ = _contents(staging)
    state: dict[str, Any] = {MARKER: MARKER_VERSION, "reuse": dict(reuse)}
    state[WRITTEN] = sorted(set(files) | set(planned))
    if exporting:
        state["exporting"] = exporting
    _write_json(staging / STATE, state)


def _recover_previous(out: Path) -> None:
    """Undo what a crash between the two renames of `_swap_into_place` left."""
    previous = previous_path(out)
    if not (previous.exists() or previous.is_symlink()):
        return
    if out.exists():
        remove_export(previous)
    else:
        _check_ours(previous)
        os.rename(previous, out)


def _read_state(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _swap_into_place(staging: Path, out: Path) -> None:
    if out.exists():
        os.rename(out, previous_path(out))
    os.rename(staging, out)


def _remove_previous(out: Path) -> None:
    # After the new export is recorded: if the old one cannot go, the new one still counts.
    try:
        remove_export(previous_path(out))
    except CuratorError as exc:
        raise CuratorError(f"exported to {out}, but kept the earlier export: {exc}") from exc


# -- what an export may replace ----------------------------------------------------------------


def check_destination(project: Project, out: Path) -> None:
    """Raise CuratorError unless an export may be built at `out` (an absolute path).

    Refused: a folder ingest scans or one holding the project's audio (the next ingest
    would take the exported files as new tracks), the project folder itself and the
    folders it manages, and any `out`, staging or previous folder that is not provably an
    export Curator wrote (`why_not_ours`).
    """
    _check_not_ingested(project, out)
    _check_not_managed(project, out)
    for folder in (out, staging_path(out), previous_path(out)):
        _check_ours(folder)


def _check_not_ingested(project: Project, out: Path) -> None:
    scanned: dict[Path, str] = {}
    for path, _, _ in project.catalog.file_rows():
        scanned.setdefault(Path(path).parent, path)
    for folder, path in scanned.items():
        real = folder.resolve()
        if out == real or real in out.parents:
            raise CuratorError(
                f"{out}: is inside {folder}, a folder ingest scans (it holds {path}); the next "
                "`curator ingest` would take the exported audio as new tracks, so choose a "
                "folder outside the project's audio sources"
            )
        if out in real.parents:
            raise CuratorError(
                f"{out}: holds the project's audio sources ({path}); choose a folder outside them"
            )


def _check_not_managed(project: Project, out: Path) -> None:
    if out == project.root or out in project.root.parents:
        raise CuratorError(
            f"{out}: holds the project's catalogue; choose a folder of its own, such as "
            f"{project.root / 'exports' / 'NAME'}"
        )
    for folder, what in _managed_folders(project).items():
        if out == folder or folder in out.parents:
            raise CuratorError(
                f"{out}: is inside {folder}, where Curator keeps {what}; choose a folder of its own"
            )


def _managed_folders(project: Project) -> dict[Path, str]:
    """The project's folders that Curator writes, reads back and cleans up by itself."""
    from curator.curation.probes import models_folder
    from curator.jobs.manage import jobs_dir  # imported here: export is not otherwise about jobs

    return {
        project.runs_dir: "the runs' shards",
        project.root / "cache": "the plugins' caches",
        project.vocabulary_dir: "the vocabulary",
        jobs_dir(project): "training jobs",
        models_folder(project): "learned taggers",
    }


def _check_ours(folder: Path) -> None:
    reason = why_not_ours(folder)
    if reason:
        raise CuratorError(
            f"{folder}: {reason}; Curator replaces only a folder it wrote itself, so choose "
            "a new or empty folder, or move the files away"
        )


def why_not_ours(folder: Path) -> str | None:
    """Why deleting `folder` could lose something Curator did not write, or None.

    None for a missing or empty folder, and for one that holds Curator's marker
    (export.json) and nothing but the files that marker lists: for a finished export, those
    it names plus the audio of a manifest whose content hash matches the marker's.
    """
    if folder.is_symlink():
        return "is a symbolic link, not a folder Curator made"
    if not folder.exists():
        return None
    if not folder.is_dir():
        return "exists and is not a folder"
    try:
        files, links = _contents(folder)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if links:
        return f"holds a symbolic link ({links[0]}), which Curator never writes"
    if not files or files == [_temporary(STATE)]:  # killed writing a new folder's marker
        return None
    state = _read_state(folder)
    if state.get(MARKER) != MARKER_VERSION or not _is_names(state.get(WRITTEN)):
        return _not_marked(folder, state)
    written = {*state[WRITTEN], STATE}
    finished = "content_hash" in state  # else a staging marker, which lists every file itself
    if finished and (folder / MANIFEST).is_file():
        audio, reason = _manifest_files(folder, state)
        if reason:
            return reason
        written |= audio
    strays = [path for path in files if not _is_written(path, written)]
    if strays and finished and not (folder / MANIFEST).is_file():
        return f"its {MANIFEST} is gone, so Curator cannot tell which files it wrote"
    # While an exporter plugin writes, Curator cannot name its files in advance: a staging
    # folder marked "exporting" holds them (see `_finish_staging`).
    if strays and not state.get("exporting"):
        more = f" and {len(strays) - 3} more" if len(strays) > 3 else ""
        return f"holds file(s) Curator did not write: {', '.join(strays[:3])}{more}"
    return None


def _not_marked(folder: Path, state: Mapping[str, Any]) -> str:
    matched = "content_hash" in state and (folder / MANIFEST).is_file()
    if matched and not _manifest_files(folder, state)[1]:
        return (
            "is an export by an earlier Curator, which did not record the files it wrote; "
            "delete it yourself if nothing else of yours is in it"
        )
    return f"holds files and is not a Curator export (no {STATE} written by Curator)"


def _manifest_files(folder: Path, state: Mapping[str, Any]) -> tuple[set[str], str | None]:
    """The audio files a finished export's manifest names, if its content hash matches."""
    manifest = (folder / MANIFEST).read_bytes()
    reuse = state.get("reuse")
    audio = reuse.get("audio") if isinstance(reuse, dict) else None
    if _hash(manifest, audio, state.get("exporter")) != state["content_hash"]:
        reason = f"its {MANIFEST} does not match the content hash in {STATE} (edited since)"
        return set(), reason
    return {json.loads(line)["filepath"] for line in manifest.decode().splitlines()}, None


def _is_written(path: str, written: set[str]) -> bool:
    """`path` is a listed file, the temporary it is written under, or bytecode of a listed
    module (stable-audio-tools imports custom_metadata.py, leaving __pycache__ beside it)."""
    if path in written:
        return True
    name = PurePosixPath(path)
    if name.name.startswith(".") and name.name.endswith(".tmp"):
        return str(name.with_name(name.name[1:-4])) in written
    if name.parent.name == "__pycache__" and name.suffix == ".pyc":
        module = name.parent.parent / f"{name.name.split('.')[0]}.py"
        return str(module) in written
    return False


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _contents(folder: Path) -> tuple[list[str], list[str]]:
    """Every file under `folder` and every symbolic link, as sorted relative POSIX paths."""
    files, links = [], []
    # Links to folders are listed, not followed; a folder that cannot be read is an error,
    # not a folder with nothing in it.
    for parent, dirs, names in os.walk(folder, onerror=_raise):
        for name, is_file in [(d, False) for d in dirs] + [(n, True) for n in names]:
            path = Path(parent) / name
            if path.is_symlink():
                links.append(path.relative_to(folder).as_posix())
            elif is_file:
                files.append(path.relative_to(folder).as_posix())
    return sorted(files), sorted(links)


def _raise(error: OSError) -> None:
    raise error


def remove_export(folder: Path) -> None:
    """Delete a folder Curator wrote, after proving it (`why_not_ours`).

    The manifest and then the marker go last, so a crash halfway leaves a folder that is
    still provably Curator's and the next run finishes the job.
    """
    _check_ours(folder)
    if not folder.exists():
        return
    try:
        files, _ = _contents(folder)
        last = [MANIFEST, STATE]
        for path in [p for p in files if p not in last] + [p for p in last if p in files]:
            (folder / path).unlink()
        for parent, _, _ in os.walk(folder, topdown=False, onerror=_raise):
            os.rmdir(parent)  # empty by now; rmdir (unlike rmtree) fails if someone added a file
    except OSError as exc:
        raise CuratorError(f"{folder}: cannot be deleted ({exc.strerror or exc})") from exc


# -- audio -------------------------------------------------------------------------------------


def write_audio(
    segments: Sequence[ExportSegment],
    staging: Path,
    settings: ExportSettings,
    out: Path,
    reuse: Mapping[str, Any],
    progress: Progress | None,
    summary: ExportSummary,
) -> list[ExportSegment]:
    """Write each segment's file and copies into `staging`; returns the segments written.

    A file already staged (an interrupted run) or in the previous export at `out` (same
    audio settings) is reused. Threads decode and write in parallel; libsndfile and soxr
    release the GIL.
    """
    reusable = _reusable_audio(staging, out, reuse, settings.format)
    workers = settings.workers or min(4, os.cpu_count() or 1)
    done: list[ExportSegment] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_write_segment, s, staging, settings, reusable): s for s in segments}
        try:
            for count, future in enumerate(as_completed(futures), 1):
                _collect(futures[future], future, summary, done)
                if progress:
                    progress(count, len(segments), futures[future].id)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    _remove_strays(staging, {path for s in done for path in s.files(settings.format)})
    done.sort(key=lambda s: s.id)
    return done


def _collect(
    segment: ExportSegment, future: Future[str], summary: ExportSummary, done: list[ExportSegment]
) -> None:
    try:
        how = future.result()
    except AudioError as exc:
        summary.left_out.append((segment.id, str(exc)))
        return
    done.append(segment)
    if how == "written":
        summary.written += 1
    else:
        summary.reused += 1


def _reusable_audio(
    staging: Path, out: Path, reuse: Mapping[str, Any], ext: str
) -> dict[str, Path]:
    """File name -> a complete file with that audio, from the staging folder or `out`."""
    folders = [staging]
    if out.is_dir() and _read_state(out).get("reuse") == reuse:
        folders.insert(0, out)  # staged files win: listed last
    found: dict[str, Path] = {}
    for folder in folders:
        for split in SPLITS:
            found.update({p.name: p for p in _audio_files(folder / split, ext)})
    return found


def _audio_files(folder: Path, ext: str) -> Iterator[Path]:
    # Files are written under a hidden temporary name and renamed when complete, so every
    # visible file is whole.
    if folder.is_dir():
        yield from (
            p for p in folder.iterdir() if p.suffix == f".{ext}" and not p.name.startswith(".")
        )


def _write_segment(
    segment: ExportSegment, staging: Path, settings: ExportSettings, reusable: Mapping[str, Path]
) -> str:
    """Write (or reuse) one segment's file and link its copies; 'written' or 'reused'."""
    first, *copies = (staging / path for path in segment.files(settings.format))
    found = reusable.get(first.name)
    if first.exists():
        how = "reused"
    elif found is not None:
        _link_or_copy(found, first)
        how = "reused"
    else:
        _write_file(first, _decode(segment, settings), settings)
        how = "written"
    for copy in copies:
        if not (copy.exists() and os.path.samefile(copy, first)):
            _link_or_copy(first, copy)
    return how


def _decode(segment: ExportSegment, settings: ExportSettings) -> Any:
    source = Path(segment.source)
    if not source.is_file():
        raise AudioError(source, "the source file is gone (moved or deleted since ingest)")
    audio = decode_window(
        source, segment.start, segment.duration, settings.sample_rate, settings.channels
    )
    expected = segment.duration * settings.sample_rate
    if len(audio) < 0.95 * expected:
        raise AudioError(
            source,
            f"holds only {len(audio) / settings.sample_rate:.1f} s from {segment.start:.1f} s, "
            f"the segment needs {segment.duration:.1f} s (did the file change since ingest?)",
        )
    return audio


def _temporary(name: str) -> str:
    """The hidden name a file is written under until it is complete."""
    return f".{name}.tmp"


def _write_file(path: Path, audio: Any, settings: ExportSettings) -> None:
    temporary = path.with_name(_temporary(path.name))
    sf.write(
        str(temporary),
        audio,
        settings.sample_rate,
        subtype=SUBTYPES[settings.bit_depth],
        format=FORMATS[settings.format],
    )
    os.replace(temporary, path)


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link (no extra disk) where the filesystem allows one, else a copy."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        temporary = target.with_name(_temporary(target.name))
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)


def _remove_strays(staging: Path, keep: set[str]) -> None:
    # stable-audio-tools trains on every audio file in the folder: one left from another
    # selection or a half-written temporary must not stay.
    for split in SPLITS:
        for path in (staging / split).iterdir():
            if f"{split}/{path.name}" not in keep:
                path.unlink()


# -- records, manifest, metadata ---------------------------------------------------------------


def build_records(
    segments: Sequence[ExportSegment], prompts: Mapping[str, str], settings: ExportSettings
) -> list[dict[str, Any]]:
    """One record per audio file (copies included), by split, segment and copy: the manifest."""
    records = [
        _record(segment, prompts[segment.id], path, copy, settings)
        for segment in segments
        for copy, path in enumerate(segment.files(settings.format))
    ]
    return sorted(records, key=lambda r: (r["split"], r["segment_id"], r["copy"]))


def _record(
    segment: ExportSegment, prompt: str, path: str, copy: int, settings: ExportSettings
) -> dict[str, Any]:
    meta = segment.metadata
    if settings.seconds == "track":
        seconds_start, seconds_total = segment.start, segment.track_duration
    else:
        seconds_start, seconds_total = 0.0, segment.duration
    record: dict[str, Any] = {
        "filepath": path,
        "start": segment.start,
        "duration": segment.duration,
        "prompt": prompt,
    }
    record.update({f"{facet}_tags": list(meta[f"{facet}_tags"]) for facet in TAG_FACETS})
    record.update(
        {
            "bpm": meta.get("tempo"),
            "key": meta.get("key"),
            "scale": meta.get("scale"),
            "source": segment.source,
            "track_id": segment.track_id,
            "segment_id": segment.id,
            "split": segment.split,
            "repeats": segment.repeats,
            "copy": copy,
            "weight": segment.weight,
            "seconds_start": seconds_start,
            "seconds_total": seconds_total,
        }
    )
    return record


def manifest_bytes(records: Sequence[Mapping[str, Any]]) -> bytes:
    """JSON lines in record order, no timestamps: the same export gives the same bytes."""
    lines = (json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return "".join(lines).encode("utf-8")


def write_metadata_parquet(records: Sequence[Mapping[str, Any]], path: Path) -> None:
    import pyarrow as pa  # imported here: a second of start-up the other commands don't need
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([dict(r) for r in records]), str(path))


def _finish_staging(
    staging: Path,
    records: list[dict[str, Any]],
    settings: ExportSettings,
    exporter: Exporter,
    out: Path,
    reuse: Mapping[str, Any],
    summary: ExportSummary,
) -> None:
    _claim(staging, reuse, [MANIFEST, METADATA], exporting=summary.exporter)
    for path in staging.iterdir():  # an earlier attempt's files (another exporter's, say)
        if path.name in (STATE, *SPLITS):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)  # inside a staging folder proved ours and claimed above
        else:
            path.unlink()
    for split in SPLITS:  # a split the selection does not use gets no folder
        if not any((staging / split).iterdir()):
            (staging / split).rmdir()
    manifest = manifest_bytes(records)
    (staging / MANIFEST).write_bytes(manifest)
    write_metadata_parquet(records, staging / METADATA)
    summary.segments = len({r["segment_id"] for r in records})
    summary.files = len(records)
    summary.splits = {s: sum(1 for r in records if r["split"] == s) for s in SPLITS}
    summary.left_out.sort()
    summary.content_hash = content_hash(manifest, settings, summary.exporter)
    exporter.export(records, staging, final=out)
    audio = {r["filepath"] for r in records}
    files = [path for path in _contents(staging)[0] if path not in audio and path != STATE]
    _write_json(staging / STATE, _state(summary, settings, reuse, files))


def content_hash(manifest: bytes, settings: ExportSettings, exporter: str) -> str:
    """sha256 of the manifest, the audio settings and the exporter.

    The manifest names every file with its segment (whose id starts with the source
    audio's content hash), window and prompt; with the audio settings that decides every
    byte written, without reading gigabytes of audio back.
    """
    return _hash(manifest, audio_state(settings), exporter)


def _hash(manifest: bytes, audio: Any, exporter: Any) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([audio, exporter], sort_keys=True).encode())
    digest.update(manifest)
    return digest.hexdigest()


def _state(
    summary: ExportSummary,
    settings: ExportSettings,
    reuse: Mapping[str, Any],
    files: Sequence[str],
) -> dict[str, Any]:
    """The finished export's marker; `files` are those it wrote besides the manifest's audio."""
    return {
        MARKER: MARKER_VERSION,
        "selection": summary.selection,
        "exporter": summary.exporter,
        "settings": dataclasses.asdict(settings),
        "reuse": dict(reuse),
        "segments": summary.segments,
        "files": summary.files,
        "splits": summary.splits,
        "content_hash": summary.content_hash,
        "left_out": [list(pair) for pair in summary.left_out],
        WRITTEN: sorted(files),
    }


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    # Whole or not at all: a half-written marker would leave a folder Curator cannot prove.
    temporary = path.with_name(_temporary(path.name))
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _export_record(summary: ExportSummary, settings: ExportSettings) -> ExportRecord:
    return ExportRecord(
        path=str(summary.out),
        selection=summary.selection,
        exporter=summary.exporter,
        settings=dataclasses.asdict(settings),
        content_hash=summary.content_hash,
        n_segments=summary.segments,
        n_files=summary.files,
        left_out=summary.left_out,
    )
