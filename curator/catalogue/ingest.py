"""Ingest: find audio files, hash and probe them, and cut each track into segments."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from curator.catalogue.audio import AudioInfo, decode_window, first_non_finite, level_db, probe
from curator.catalogue.segments import choose_windows, track_rng
from curator.errors import AudioError
from curator.project import Project
from curator.settings import IngestSettings
from curator.storage import Catalog, FileRecord, KnownFile, KnownTrack, SegmentRecord, TrackRecord

# Statuses whose file is not looked at again while its size and time are unchanged.
_SETTLED = {"ingested", "duplicate", "skipped"}

Progress = Callable[[int, int, str], None]


@dataclass
class Examined:
    """What a worker found out about one file, before it is compared with the catalogue."""

    path: str
    size: int | None = None
    mtime_ns: int | None = None
    status: str = "failed"
    reason: str | None = None
    content_hash: str | None = None
    info: AudioInfo | None = None
    segments: list[SegmentRecord] = field(default_factory=list)


@dataclass
class IngestSummary:
    """What one `curator ingest` did; `problems` holds (path, status, reason)."""

    found: int = 0
    unchanged: int = 0
    added: int = 0
    duplicates: int = 0
    revived: int = 0
    skipped: int = 0
    failed: int = 0
    missing: int = 0
    segments_added: int = 0
    silent_segments: int = 0
    interrupted: bool = False
    problems: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def nothing_readable(self) -> bool:
        """True when files were tried and not one could be read (the command then fails)."""
        readable = self.unchanged + self.added + self.duplicates + self.revived + self.skipped
        return readable == 0 and (self.failed > 0 or self.found == 0)


def scan(
    sources: Iterable[Path], extensions: Sequence[str]
) -> tuple[list[str], list[tuple[str, str]]]:
    """Audio files under `sources` (recursively), and (source, reason) for sources not found."""
    wanted = {"." + ext.lower().lstrip(".") for ext in extensions}
    found: set[str] = set()
    errors = []
    for source in sources:
        root = os.path.abspath(source)
        if os.path.isfile(root) or os.path.islink(root):
            found.add(root)
        elif os.path.isdir(root):
            found.update(_walk(root, wanted))
        else:
            errors.append((root, "no such file or folder"))
    return sorted(found), errors


def scanned_folders(sources: Iterable[Path]) -> list[str]:
    """The folders among `sources` that `scan` walks, as absolute paths."""
    roots = [os.path.abspath(source) for source in sources]
    return sorted({root for root in roots if os.path.isdir(root) and not os.path.islink(root)})


def _walk(root: str, wanted: set[str]) -> Iterable[str]:
    # Links to folders are not followed (they can loop); links to files are listed, so a
    # dangling one is reported rather than silently ignored.
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in names:
            if os.path.splitext(name)[1].lower() in wanted and not name.startswith("._"):
                yield os.path.join(folder, name)


def content_hash(path: str) -> str:
    """BLAKE2b of the file's bytes: the same audio at two paths is one track."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def examine(path: str, settings: IngestSettings) -> Examined:
    """Probe, hash and segment one file; never raises for a bad file, it says why instead."""
    result = Examined(path=path)
    try:
        _stat_into(result)
        _check_name(path)
        result.info = probe(Path(path))
        result.content_hash = content_hash(path)
        _segment_into(result, settings)
    except AudioError as exc:
        result.status, result.reason = "failed", exc.reason
    except OSError as exc:
        result.status, result.reason = "failed", f"cannot be read: {exc.strerror or exc}"
    return result


def _stat_into(result: Examined) -> None:
    stat = os.lstat(result.path) if not os.path.exists(result.path) else os.stat(result.path)
    result.size, result.mtime_ns = stat.st_size, stat.st_mtime_ns


def _check_name(path: str) -> None:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise AudioError(path, "the file name is not valid UTF-8; rename the file") from exc


def _segment_into(result: Examined, settings: IngestSettings) -> None:
    info, digest = result.info, result.content_hash
    assert info is not None and digest is not None
    windows = choose_windows(
        info.duration,
        settings.segments_per_track,
        settings.segment_min_seconds,
        settings.segment_max_seconds,
        track_rng(settings.seed, digest),
    )
    if not windows:
        result.status = "skipped"
        result.reason = (
            f"{info.duration:.1f} s long, shorter than one "
            f"{settings.segment_min_seconds:g} s segment"
        )
        return
    track_id = digest[:16]
    for idx, window in enumerate(windows):
        result.segments.append(_measure(result.path, track_id, idx, window, info, settings))
    result.status = "ingested"
    if all(s.silent for s in result.segments):
        result.reason = f"silent: every segment is below {settings.silence_threshold_db:g} dBFS"


def _measure(
    path: str, track_id: str, idx: int, window, info: AudioInfo, settings: IngestSettings
) -> SegmentRecord:
    audio = decode_window(Path(path), window.start, window.duration)
    expected = round(window.duration * info.sample_rate)
    if len(audio) < expected * 0.99:
        raise AudioError(
            path,
            f"truncated: decoding stops at {window.start + len(audio) / info.sample_rate:.1f} s "
            f"of the {info.duration:.1f} s the header announces",
        )
    bad = first_non_finite(audio)
    if bad is not None:
        at = window.start + bad / info.sample_rate
        raise AudioError(path, f"contains NaN or infinite samples (first at {at:.2f} s)")
    rms_db, peak_db = level_db(audio)
    return SegmentRecord(
        id=f"{track_id}-{idx}",
        track_id=track_id,
        idx=idx,
        start=window.start,
        duration=window.duration,
        rms_db=rms_db,
        peak_db=peak_db,
        silent=rms_db < settings.silence_threshold_db,
    )


class _Batch:
    """Results waiting to be written, and the decisions that depend on the catalogue."""

    def __init__(self, tracks: dict[str, KnownTrack], summary: IngestSummary) -> None:
        self.tracks = tracks
        self.summary = summary
        self.clear()

    def clear(self) -> None:
        self.files: list[FileRecord] = []
        self.new_tracks: list[TrackRecord] = []
        self.segments: list[SegmentRecord] = []
        self.revived: list[tuple[str, str]] = []

    def add(self, found: Examined) -> None:
        if found.status == "failed" or found.content_hash is None:
            self._file(found, None, "failed", found.reason)
            self.summary.failed += 1
            self.summary.problems.append((found.path, found.status, found.reason or ""))
            return
        known = self.tracks.get(found.content_hash)
        if known is None:
            self._new_track(found)
        elif known.status == "missing":
            self._revive(found, known)
        else:
            self._file(found, known.id, "duplicate", f"same audio as {known.path}")
            self.summary.duplicates += 1

    def _file(self, found: Examined, track_id: str | None, status: str, reason: str | None) -> None:
        self.files.append(
            FileRecord(found.path, found.size, found.mtime_ns, track_id, status, reason)
        )

    def _new_track(self, found: Examined) -> None:
        info, digest = found.info, found.content_hash
        assert info is not None and digest is not None
        track = TrackRecord(
            digest[:16],
            digest,
            found.path,
            info.duration,
            info.sample_rate,
            info.channels,
            info.format,
            info.subtype,
            "skipped" if found.status == "skipped" else "ingested",
            found.reason,
        )
        self.tracks[digest] = KnownTrack(track.id, track.path, track.status)
        self.new_tracks.append(track)
        self.segments.extend(found.segments)
        self._file(found, track.id, found.status, found.reason)
        self._count_new(found)

    def _count_new(self, found: Examined) -> None:
        if found.status == "skipped":
            self.summary.skipped += 1
            self.summary.problems.append((found.path, "skipped", found.reason or ""))
            return
        self.summary.added += 1
        self.summary.segments_added += len(found.segments)
        self.summary.silent_segments += sum(s.silent for s in found.segments)

    def _revive(self, found: Examined, known: KnownTrack) -> None:
        self.revived.append((known.id, found.path))
        self.tracks[found.content_hash or ""] = KnownTrack(known.id, found.path, "ingested")
        self._file(found, known.id, "ingested", None)
        self.summary.revived += 1

    def flush(self, catalog: Catalog) -> None:
        if self.files:
            catalog.save_ingest_batch(self.files, self.new_tracks, self.segments, self.revived)
        self.clear()


def ingest(
    project: Project, sources: Sequence[Path], progress: Progress | None = None
) -> IngestSummary:
    """Add new and changed files under `sources`; mark vanished ones; skip the rest.

    Results are written every `commit_every` files, so an interrupted ingest keeps what it
    finished and the next run picks up the rest without duplicates.
    """
    settings, catalog = project.settings.ingest, project.catalog
    summary = IngestSummary()
    paths, source_errors = scan(sources, settings.extensions)
    # Recorded before any file: export must stay out of these folders even if this ingest
    # is interrupted, and even where a folder's audio sits only in its subfolders.
    catalog.record_ingest_sources(scanned_folders(sources))
    summary.problems.extend((src, "failed", reason) for src, reason in source_errors)
    summary.found = len(paths)
    known = catalog.known_files()
    pending = _changed(paths, known, summary)
    _mark_vanished(catalog, sources, set(paths), known, summary)
    batch = _Batch(catalog.known_tracks(), summary)
    try:
        _process(pending, settings, batch, catalog, progress)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        batch.flush(catalog)
        catalog.refresh_track_status()
    return summary


def _changed(paths: list[str], known: dict[str, KnownFile], summary: IngestSummary) -> list[str]:
    pending = []
    for path in paths:
        before = known.get(path)
        if before and before.status in _SETTLED and _same_stat(path, before):
            summary.unchanged += 1
        else:
            pending.append(path)
    return pending


def _same_stat(path: str, before: KnownFile) -> bool:
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return stat.st_size == before.size and stat.st_mtime_ns == before.mtime_ns


def _mark_vanished(
    catalog: Catalog,
    sources: Sequence[Path],
    present: set[str],
    known: dict[str, KnownFile],
    summary: IngestSummary,
) -> None:
    # Only files under the folders scanned now can have vanished: ingesting one folder
    # must not mark another folder's files missing.
    roots = [os.path.abspath(s) for s in sources if os.path.exists(os.path.abspath(s))]
    gone = [
        path
        for path, file in known.items()
        if file.status != "missing" and path not in present and _under(path, roots)
    ]
    if gone:
        catalog.mark_files_missing(gone)
        summary.missing = len(gone)
        summary.problems.extend((path, "missing", "file no longer exists") for path in gone)


def _under(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _process(
    pending: list[str],
    settings: IngestSettings,
    batch: _Batch,
    catalog: Catalog,
    progress: Progress | None,
) -> None:
    workers = settings.workers or os.cpu_count() or 1
    executor = ThreadPoolExecutor(max_workers=workers)
    try:
        # Results are taken in scan order, so which of two identical files becomes the
        # track's own path does not depend on thread timing.
        results = executor.map(examine, pending, [settings] * len(pending))
        for done, found in enumerate(results, start=1):
            batch.add(found)
            if len(batch.files) >= settings.commit_every:
                batch.flush(catalog)
            if progress:
                progress(done, len(pending), found.path)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
