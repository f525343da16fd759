"""Writing a corpus folder (clips, labels.jsonl, corpus.json) and reading it back.

Every clip is seeded by (corpus seed, stream, index), so a clip is the same whatever else is
rendered and in whichever process: "train" and "valid" clips come from stream 0 and the
training soundfonts, "test" clips from stream 1 and the held-out soundfont only. A clip's
FLAC is written whole (a temporary file renamed into place) and its label line appended only
then, so a run that is interrupted and started again skips what is done, redoes what is not,
and never writes a clip twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from curator.errors import CuratorError

from . import sounds
from .clip import Sources, render_clip
from .soundfonts import DEFAULT_HOLDOUT, SOUNDFONTS, Soundfont, sha256, soundfont

FORMAT_VERSION = 1
VALID_SHARE = 0.15
Progress = Callable[[int, int], None]  # (clips done, clips in all)


@dataclass(frozen=True)
class CorpusSettings:
    """What decides a corpus: the same settings give the same labels and audio.

    clips: "train" and "valid" clips (about 15% valid), from the training soundfonts.
    test_clips: "test" clips, from the held-out soundfont only.
    holdout: the soundfont kept out of training (a General MIDI one: it plays every part).
    """

    clips: int = 4000
    test_clips: int = 800
    seed: int = 0
    seconds: float = 6.0
    sample_rate: int = 22050
    holdout: str = DEFAULT_HOLDOUT

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CorpusClip:
    """One labelled clip of a corpus (a line of labels.jsonl)."""

    file: str  # relative to the corpus folder
    split: str
    tags: tuple[str, ...]
    levels_db: dict[str, float] = field(default_factory=dict)
    soundfont: tuple[str, ...] = ()
    tempo: float = 0.0
    key: str = ""
    encoding: str = "none"
    seed: int = 0

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "tags": list(self.tags), "soundfont": list(self.soundfont)}


@dataclass(frozen=True)
class Job:
    split: str
    index: int

    @property
    def file(self) -> str:
        return f"clips/{self.split}/{self.index:05d}.flac"


def jobs(settings: CorpusSettings) -> list[Job]:
    """Every clip of the corpus: "valid" is spread evenly through the training indices."""
    training = [
        Job("valid" if int((i + 1) * VALID_SHARE) > int(i * VALID_SHARE) else "train", i)
        for i in range(settings.clips)
    ]
    return training + [Job("test", i) for i in range(settings.test_clips)]


def sources(settings: CorpusSettings, split: str) -> Sources:
    """The soundfonts and voices a split draws from."""
    holdout = soundfont(settings.holdout)
    fonts = [holdout] if split == "test" else training_soundfonts(settings)
    return Sources(
        melodic=tuple(f for f in fonts if f.melodic),
        kits=tuple((f, kit) for f in fonts for kit in f.kits),
        voices=sounds.TEST_VOICES if split == "test" else sounds.TRAIN_VOICES,
    )


def training_soundfonts(settings: CorpusSettings) -> list[Soundfont]:
    if not soundfont(settings.holdout).melodic:
        raise CuratorError(
            f"--holdout {settings.holdout} holds only drums: hold out a General MIDI soundfont "
            f"({', '.join(n for n, f in SOUNDFONTS.items() if f.melodic)})"
        )
    return [soundfont(name) for name in SOUNDFONTS if name != settings.holdout]


def clip_seed(settings: CorpusSettings, job: Job) -> int:
    """The seed of one clip: test clips draw from their own stream."""
    stream = 1 if job.split == "test" else 0
    sequence = np.random.SeedSequence([settings.seed & (2**63 - 1), stream, job.index])
    return int(sequence.generate_state(1, np.uint64)[0] >> 1)


def render_job(settings: CorpusSettings, job: Job, out: Path) -> CorpusClip:
    """Render one clip and write its FLAC whole; its label line is the caller's to append."""
    seed = clip_seed(settings, job)
    clip = render_clip(
        np.random.default_rng(seed),
        sources(settings, job.split),
        settings.seconds,
        settings.sample_rate,
    )
    path = out / job.file
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.partial.flac")
    try:
        sf.write(partial, clip.audio.astype(np.float32), settings.sample_rate, subtype="PCM_16")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return CorpusClip(
        job.file, job.split, tuple(clip.tags), clip.levels_db, tuple(clip.soundfonts),
        clip.tempo, clip.key, clip.encoding, seed,
    )  # fmt: skip


# ---------------------------------------------------------------------------- the folder


def corpus_description(settings: CorpusSettings) -> dict[str, Any]:
    """corpus.json: the settings and the soundfonts (by file and hash) that made the corpus."""
    used = [*training_soundfonts(settings), soundfont(settings.holdout)]
    return {
        "format": FORMAT_VERSION,
        "settings": settings.as_dict(),
        "soundfonts": [
            {
                "name": f.name,
                "file": f.path.name,
                "sha256": sha256(f.path),
                "split": "test" if f.name == settings.holdout else "train, valid",
            }
            for f in used
        ],
        "held_out_soundfont": settings.holdout,
        "synthesised": "808, deep sub, drums, synths and plucks in numpy; speech by espeak-ng",
    }


def start_folder(out: Path, settings: CorpusSettings) -> None:
    """Write corpus.json, or check that the one there describes the same corpus."""
    description = corpus_description(settings)
    path = out / "corpus.json"
    if path.is_file():
        try:
            there = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            there = None
        if there != description:
            raise CuratorError(
                f"{out} holds a corpus made with other settings or soundfonts (see "
                f"{path}): render into another folder, or delete this one"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    partial = path.with_name("corpus.json.partial")
    partial.write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)


def read_corpus(out: Path) -> list[CorpusClip]:
    """The corpus's clips, one per file (the last line for a file wins), in file order."""
    by_file: dict[str, CorpusClip] = {}
    for record in _label_lines(Path(out) / "labels.jsonl"):
        record["tags"] = tuple(record["tags"])
        record["soundfont"] = tuple(record.get("soundfont", ()))
        clip = CorpusClip(**record)
        by_file[clip.file] = clip
    return [by_file[f] for f in sorted(by_file)]


def _label_lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.is_file():
        return
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield dict(json.loads(line))
        except ValueError:
            raise CuratorError(f"{path}:{number}: not a clip record") from None


def _repair_labels(path: Path) -> None:
    """Drop a last line cut short by a kill: its clip is rendered again."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as file:
            file.truncate(data.rfind(b"\n") + 1)


def make_corpus(
    out: Path, settings: CorpusSettings, progress: Progress | None = None, workers: int = 1
) -> list[CorpusClip]:
    """Render the corpus into `out`, skipping clips already there; return all its clips."""
    out = Path(out)
    start_folder(out, settings)
    labels = out / "labels.jsonl"
    _repair_labels(labels)
    for stale in out.glob("clips/*/*.partial.flac"):
        stale.unlink()  # a clip a killed run was writing: it is rendered again
    done = {c.file for c in read_corpus(out) if (out / c.file).is_file()}
    todo = [job for job in jobs(settings) if job.file not in done]
    total = len(done) + len(todo)
    if progress:
        progress(len(done), total)
    with labels.open("a", encoding="utf-8") as sink:
        for count, clip in enumerate(_rendered(settings, todo, out, workers), len(done) + 1):
            sink.write(json.dumps(clip.record(), sort_keys=True) + "\n")
            sink.flush()
            if progress:
                progress(count, total)
    return read_corpus(out)


def _rendered(
    settings: CorpusSettings, todo: list[Job], out: Path, workers: int
) -> Iterator[CorpusClip]:
    """Clips as they finish, rendered here or by `workers` processes."""
    if workers <= 1 or len(todo) < 2:
        for job in todo:
            yield render_job(settings, job, out)
        return
    # spawn, not fork: the parent may hold threads (a progress bar) and fluidsynth state.
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        pending: set[Future[CorpusClip]] = set()
        queue = iter(todo)
        try:
            for job in queue:
                pending.add(pool.submit(render_job, settings, job, out))
                if len(pending) >= 4 * workers:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    yield from (f.result() for f in finished)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (f.result() for f in finished)
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def tag_counts(clips: list[CorpusClip]) -> dict[str, dict[str, int]]:
    """How many clips of each split hold each tag."""
    counts: dict[str, dict[str, int]] = {}
    for clip in clips:
        for tag in clip.tags:
            counts.setdefault(tag, {}).setdefault(clip.split, 0)
            counts[tag][clip.split] += 1
    return counts
