"""The folder an export is built in, the proof that a folder is Curator's, and the swap into place.

Curator deletes and replaces only folders it can prove it wrote: each one holds a marker
(export.json) that lists its files, written before the files themselves. The destinations
an export may never be built at (ingested audio, the project's own folders) are refused here.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from curator.errors import CuratorError
from curator.export.records import MANIFEST, METADATA, ExportSummary, content_hash, manifest_files
from curator.files import read_json_object, write_json_atomically
from curator.project import Project
from curator.settings import ExportSettings
from curator.storage.selections import SPLITS

STATE = "export.json"  # settings, counts, files: proves a folder is an export Curator wrote
MARKER = "curator_export"  # the key in STATE that says Curator wrote it, with its version
MARKER_VERSION = 1
WRITTEN = "files_written"  # in STATE: the files Curator wrote there, besides the manifest's


def staging_path(out: Path) -> Path:
    """Where an export to `out` is built: a hidden folder beside it."""
    return out.parent / f".{out.name}.partial"


def previous_path(out: Path) -> Path:
    return out.parent / f".{out.name}.previous"


def temporary_path(path: Path) -> Path:
    """The hidden name a file is written under until it is complete (`why_not_ours` allows it)."""
    return path.with_name(f".{path.name}.tmp")


# -- building in the staging folder ------------------------------------------------------------


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
    if staging.exists() and export_state(staging).get("reuse") != reuse:
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
    _write_state(staging, state)


def clear_for_exporter(staging: Path, reuse: Mapping[str, Any], exporter: str) -> None:
    """Leave only the audio in `staging`, marked as being written by `exporter`.

    An earlier attempt's files (another exporter's, say) go, and so does the folder of a
    split the selection does not use.
    """
    _claim(staging, reuse, [MANIFEST, METADATA], exporting=exporter)
    for path in staging.iterdir():
        if path.name in (STATE, *SPLITS):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)  # inside a staging folder proved ours and claimed above
        else:
            path.unlink()
    for split in SPLITS:
        if not any((staging / split).iterdir()):
            (staging / split).rmdir()


def mark_finished(
    staging: Path,
    summary: ExportSummary,
    settings: ExportSettings,
    reuse: Mapping[str, Any],
    audio: set[str],
) -> None:
    """Write the finished export's marker: it lists every file but the manifest's `audio`."""
    files = [path for path in _contents(staging)[0] if path not in audio and path != STATE]
    _write_state(staging, _finished_state(summary, settings, reuse, files))


def _finished_state(
    summary: ExportSummary,
    settings: ExportSettings,
    reuse: Mapping[str, Any],
    files: Sequence[str],
) -> dict[str, Any]:
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


def _write_state(folder: Path, state: Mapping[str, Any]) -> None:
    # Whole or not at all: a half-written marker would leave a folder Curator cannot prove.
    path = folder / STATE
    write_json_atomically(path, state, temporary=temporary_path(path))


def export_state(folder: Path) -> dict[str, Any]:
    """The marker in `folder` (empty when there is none, or it cannot be read)."""
    try:
        return read_json_object(folder / STATE) or {}
    except OSError:  # a marker that cannot be read proves nothing
        return {}


# -- swapping into place -----------------------------------------------------------------------


def swap_into_place(staging: Path, out: Path) -> None:
    """Rename the built export onto `out`, the earlier one aside (`remove_previous` deletes it)."""
    if out.exists():
        os.rename(out, previous_path(out))
    os.rename(staging, out)


def _recover_previous(out: Path) -> None:
    """Undo what a crash between the two renames of `swap_into_place` left."""
    previous = previous_path(out)
    if not (previous.exists() or previous.is_symlink()):
        return
    if out.exists():
        remove_export(previous)
    else:
        _check_ours(previous)
        os.rename(previous, out)


def remove_previous(out: Path) -> None:
    """Delete the export `swap_into_place` moved aside."""
    # After the new export is recorded: if the old one cannot go, the new one still counts.
    try:
        remove_export(previous_path(out))
    except CuratorError as exc:
        raise CuratorError(f"exported to {out}, but kept the earlier export: {exc}") from exc


# -- what an export may replace ----------------------------------------------------------------


def check_destination(project: Project, out: Path) -> None:
    """Raise CuratorError unless an export may be built at `out` (an absolute path).

    Refused: a folder given to ingest, or one inside or holding it (the next ingest would
    take the exported files as new tracks), the same around the folders of the files ingest
    found (all that a catalogue from before ingest recorded its folders can tell), the
    project folder itself and the folders it manages, and any `out`, staging or previous
    folder that is not provably an export Curator wrote (`why_not_ours`).
    """
    _check_not_ingested(project, out)
    _check_not_managed(project, out)
    for folder in (out, staging_path(out), previous_path(out)):
        _check_ours(folder)


def _check_not_ingested(project: Project, out: Path) -> None:
    _check_outside_sources(project, out)
    _check_outside_scanned(project, out)


def _check_outside_sources(project: Project, out: Path) -> None:
    """Refuse `out` inside, at or around a folder ingest was given, audio in it or not."""
    for source in project.catalog.ingest_sources():
        real = Path(source).resolve()
        if out == real or real in out.parents:
            where = "is" if out == real else "is inside"
            raise CuratorError(
                f"{out}: {where} {source}, a folder given to `curator ingest`; the next ingest "
                "of it would take the exported audio as new tracks, so choose a folder outside "
                "the project's audio sources"
            )
        if out in real.parents:
            raise CuratorError(
                f"{out}: holds {source}, a folder given to `curator ingest`; an export "
                "replaces the whole folder it is written to, so choose one outside the "
                "project's audio sources"
            )


def _check_outside_scanned(project: Project, out: Path) -> None:
    """The same check for the folders of the files ingest found: all that a catalogue
    ingested before the folders were recorded (`ingest_sources`) can tell."""
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
    if not files or files == [temporary_path(Path(STATE)).name]:  # killed writing its marker
        return None
    state = export_state(folder)
    if state.get(MARKER) != MARKER_VERSION or not _is_names(state.get(WRITTEN)):
        return _not_marked(folder, state)
    written = {*state[WRITTEN], STATE}
    finished = "content_hash" in state  # else a staging marker, which lists every file itself
    if finished and (folder / MANIFEST).is_file():
        audio, reason = _manifest_audio(folder, state)
        if reason:
            return reason
        written |= audio
    strays = [path for path in files if not _is_written(path, written)]
    if strays and finished and not (folder / MANIFEST).is_file():
        return f"its {MANIFEST} is gone, so Curator cannot tell which files it wrote"
    # While an exporter plugin writes, Curator cannot name its files in advance: a staging
    # folder marked "exporting" holds them (see `clear_for_exporter`).
    if strays and not state.get("exporting"):
        more = f" and {len(strays) - 3} more" if len(strays) > 3 else ""
        return f"holds file(s) Curator did not write: {', '.join(strays[:3])}{more}"
    return None


def _not_marked(folder: Path, state: Mapping[str, Any]) -> str:
    matched = "content_hash" in state and (folder / MANIFEST).is_file()
    if matched and not _manifest_audio(folder, state)[1]:
        return (
            "is an export by an earlier Curator, which did not record the files it wrote; "
            "delete it yourself if nothing else of yours is in it"
        )
    return f"holds files and is not a Curator export (no {STATE} written by Curator)"


def _manifest_audio(folder: Path, state: Mapping[str, Any]) -> tuple[set[str], str | None]:
    """The audio files a finished export's manifest names, if its content hash matches."""
    manifest = (folder / MANIFEST).read_bytes()
    reuse = state.get("reuse")
    audio = reuse.get("audio") if isinstance(reuse, dict) else None
    if content_hash(manifest, audio, state.get("exporter")) != state["content_hash"]:
        reason = f"its {MANIFEST} does not match the content hash in {STATE} (edited since)"
        return set(), reason
    return manifest_files(manifest), None


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
