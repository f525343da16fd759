"""Each exported segment's audio file, decoded from its source window, and its repeated copies.

A file another run already wrote with the same audio settings (an interrupted export, or
the previous export at the same place) is linked instead of decoded again.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import soundfile as sf

from curator.catalogue.audio import decode_window
from curator.errors import AudioError
from curator.export.records import ExportSegment, ExportSummary
from curator.export.staging import export_state, temporary_path
from curator.files import replace_atomically
from curator.project import Project
from curator.settings import ExportSettings
from curator.storage.selections import SPLITS

FORMATS = {"wav": "WAV", "flac": "FLAC"}
SUBTYPES = {16: "PCM_16", 24: "PCM_24"}
# Bump when the audio written for the same settings would change (a resumed export then
# writes its audio again instead of reusing it).
AUDIO_VERSION = 1

Progress = Callable[[int, int, str], None]


def audio_state(settings: ExportSettings) -> dict[str, Any]:
    """What decides the bytes of every audio file; staged audio is reused only if it matches."""
    return {
        "version": AUDIO_VERSION,
        "format": settings.format,
        "bit_depth": settings.bit_depth,
        "sample_rate": settings.sample_rate,
        "channels": settings.channels,
    }


def reuse_key(project: Project, settings: ExportSettings) -> dict[str, Any]:
    """When a file written earlier holds the audio this export would write: same audio
    settings, same catalogue (where a segment id always names the same window)."""
    return {"audio": audio_state(settings), "catalog": str(project.catalog.path)}


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
    if out.is_dir() and export_state(out).get("reuse") == reuse:
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


def _write_file(path: Path, audio: Any, settings: ExportSettings) -> None:
    def write(temporary: Path) -> None:
        sf.write(
            str(temporary),
            audio,
            settings.sample_rate,
            subtype=SUBTYPES[settings.bit_depth],
            format=FORMATS[settings.format],
        )

    replace_atomically(path, write, temporary_path(path))


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link (no extra disk) where the filesystem allows one, else a copy."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        replace_atomically(target, lambda t: _copy(source, t), temporary_path(target))


def _copy(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)


def _remove_strays(staging: Path, keep: set[str]) -> None:
    # stable-audio-tools trains on every audio file in the folder: one left from another
    # selection or a half-written temporary must not stay.
    for split in SPLITS:
        for path in (staging / split).iterdir():
            if f"{split}/{path.name}" not in keep:
                path.unlink()
