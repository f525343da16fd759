"""Curator on real recordings nobody here rendered: ingest, decode, tag, analyze, export.

Run: bash scripts/real-music.sh && .venv/bin/python bench/real_music_bench.py
     [--source DIR] [--tracks N] [--summary FILE] [--keep DIR]

The source is Debian's wesnoth-1.16-music (41 OGG Vorbis tracks, 128 min, 44.1 kHz stereo;
orchestral, folk and electronic game music, not trap): real mixes, real mastering, real
codecs. Each stage is timed beside a baseline measured in the same run on the same files:
- ingest against decoding every file whole once (the least work any ingest that measures
  loudness does);
- decoding the segments' windows at a plugin's rate (Curator's seek + resample) against
  decoding the same windows at the file's own rate;
- the trap tagger's pipeline against its network's own forward pass on the same windows
  (the physical bound); musicnn and Essentia as seconds of audio per second;
- export against a bare soundfile loop reading and writing the same windows.
It then prints what Curator found in music it never saw (tags per facet, tempos, keys,
the share of estimates that pass the 0.7 bar) and, with --summary, writes it as Markdown.
There is no ground truth for these recordings: the figures say what Curator does with them,
not how right it is. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

# Essentia first: it must be imported before anything that may import TensorFlow.
import curator.plugins.essentia  # noqa: F401  # isort: skip
from curator.catalogue.audio import decode_whole, decode_window
from curator.catalogue.ingest import ingest
from curator.charts.catalogue import key_rows, tag_frequency_rows, tempo_values
from curator.export.build import export
from curator.plugins.trap.features import cut_windows, mono
from curator.plugins.trap.model import segment_outputs
from curator.project import Project, init_project
from curator.prompts.writing import write_prompts
from curator.tagging.runs import process_locally, run_work, set_up_work

WESNOTH = Path("/usr/share/games/wesnoth/1.16/data/core/music")
BAR = 0.7  # the seed's confidence bar for tempo and key


def timed(work: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


def line(stage: str, seconds: float, audio_s: float, baseline: str, baseline_s: float) -> None:
    print(
        f"  {stage:<34} {seconds:7.1f} s  {audio_s / seconds:7.1f}x real time   "
        f"{baseline}: {baseline_s:6.1f} s  (Curator / baseline {seconds / baseline_s:.2f}x)"
    )


def stage_ingest(project: Project, source: Path, paths: list[Path]) -> float:
    for path in paths:  # warm in the page cache: neither side pays for the first read
        path.read_bytes()
    _, whole_s = timed(lambda: [decode_whole(path) for path in paths])
    summary, ingest_s = timed(lambda: ingest(project, [source]))
    audio_s = sum(sf.info(str(path)).duration for path in paths)
    print(
        f"\ningest: {summary.added} tracks ({audio_s / 60:.0f} min), "
        f"{summary.segments_added} segments, {summary.failed} failed"
    )
    line("curator ingest", ingest_s, audio_s, "decode each file whole", whole_s)
    for path, status, reason in summary.problems:
        print(f"  {status}: {Path(path).name}: {reason}")
    return audio_s


def stage_decode(project: Project, rate: int) -> float:
    rows = project.catalog.segment_rows()
    audio_s = sum(r["duration"] for r in rows)

    def windows(sample_rate: int | None) -> None:
        for r in rows:
            decode_window(Path(r["source"]), r["start"], r["duration"], sample_rate, 1)

    _, native_s = timed(lambda: windows(None))
    _, curator_s = timed(lambda: windows(rate))
    print(f"\ndecode: {len(rows)} segment windows, {audio_s / 60:.0f} min")
    line(f"windows at {rate} Hz mono", curator_s, audio_s, "at the file's rate", native_s)
    return audio_s


def stage_plugin(project: Project, kind: str, name: str, audio_s: float) -> Any:
    work, setup_s = timed(lambda: set_up_work(project, kind, name))
    summary, seconds = timed(lambda: run_work(project, work, None, None, None, process_locally))
    print(
        f"  {name:<10} {summary.done:4d} segments, {summary.failed} failed  {seconds:7.1f} s  "
        f"{audio_s / seconds:6.1f}x real time  (set-up {setup_s:.1f} s, not counted)"
    )
    return work, seconds


def trap_bound(project: Project, work: Any, pipeline_s: float) -> None:
    """The trap network's forward pass alone on the windows the pipeline saw."""
    plugin = work.plugin
    rows = project.catalog.segment_rows()
    audio = [
        decode_window(Path(r["source"]), r["start"], r["duration"], plugin.sample_rate, 1)
        for r in rows
    ]
    windows = [cut_windows(mono(a), plugin.window_samples()) for a in audio]
    _, forward_s = timed(
        lambda: [
            segment_outputs(plugin.weights.net, w, plugin.settings.batch_windows, "cpu")
            for w in windows
        ]
    )
    count = sum(len(w) for w in windows)
    print(
        f"  trap pipeline {count / pipeline_s:6.1f} windows/s vs forward pass alone "
        f"{count / forward_s:6.1f} windows/s: {forward_s / pipeline_s:.0%} of the bound"
    )


def stage_export(project: Project, scratch: Path) -> None:
    rows = project.catalog.segment_rows()
    audio_s = sum(r["duration"] for r in rows)

    def bare() -> None:
        out = scratch / "bare"
        out.mkdir()
        for r in rows:
            with sf.SoundFile(r["source"]) as handle:
                handle.seek(round(r["start"] * handle.samplerate))
                audio = handle.read(round(r["duration"] * handle.samplerate), dtype="float32")
                sf.write(str(out / f"{r['id']}.wav"), audio, handle.samplerate, "PCM_16")

    _, bare_s = timed(bare)
    summary, export_s = timed(lambda: export(project, scratch / "export"))
    print(f"\nexport: {summary.segments} segments, {summary.written} files written")
    line("curator export", export_s, audio_s, "bare soundfile loop", bare_s)


def found(project: Project) -> list[str]:
    """What Curator says about the recordings, as Markdown lines."""
    out = []
    for facet in ("instruments", "moods", "genres"):
        rows = [r for r in tag_frequency_rows(project, facet) if r["total"]][:8]
        listed = ", ".join(f"{r['tag']} ({r['total']})" for r in rows) or "none"
        out.append(f"- **{facet}** (segments): {listed}")
    tempos = tempo_values(project)
    if tempos:
        low, mid, high = np.percentile(tempos, [10, 50, 90])
        out.append(
            f"- **tempo**: {len(tempos)} segments with a confident tempo, median "
            f"{mid:.0f} BPM (10-90 %: {low:.0f}-{high:.0f})"
        )
    keys = key_rows(project, order="count")[:6]
    listed = ", ".join(f"{r['key']} ({r['segments']})" for r in keys) or "none"
    out.append(f"- **key** (confident segments): {listed}")
    out += confidence_lines(project)
    return out


def confidence_lines(project: Project) -> list[str]:
    """The share of Essentia's estimates that pass the 0.7 bar."""
    catalog = project.catalog
    (run,) = [r for r in catalog.runs() if r["plugin"] == "essentia"]
    passing: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for m in catalog.measurements(run["id"]):
        if m["name"] in ("tempo", "key"):
            total[m["name"]] += 1
            passing[m["name"]] += (m["confidence"] or 0.0) >= BAR
    return [
        f"- **{name} confidence**: {passing[name]} of {total[name]} estimates pass {BAR} "
        f"({passing[name] / max(total[name], 1):.0%})"
        for name in ("tempo", "key")
    ]


def run(scratch: Path, source: Path, tracks: int | None, summary: Path | None) -> None:
    paths = sorted(source.glob("*.ogg"))[:tracks]
    folder = scratch / "music"
    folder.mkdir()
    for path in paths:
        (folder / path.name).symlink_to(path)
    project = init_project(scratch / "project")
    print(f"machine: {os.cpu_count()} cores, no GPU; source: {source} ({len(paths)} files)")
    stage_ingest(project, folder, paths)
    audio_s = stage_decode(project, 16000)
    print("\ntagging and analysis (the local engine, default settings)")
    stage_plugin(project, "tag", "musicnn", audio_s)
    work, trap_s = stage_plugin(project, "tag", "trap", audio_s)
    trap_bound(project, work, trap_s)
    stage_plugin(project, "analyze", "essentia", audio_s)
    write_prompts(project)
    stage_export(project, scratch)
    lines = found(project)
    print("\nwhat Curator found (no ground truth: these are its readings, not checked):")
    print("\n".join(lines))
    if summary:
        summary.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=WESNOTH, help="a folder of recordings")
    parser.add_argument("--tracks", type=int, default=None, help="only the first N files")
    parser.add_argument("--summary", type=Path, help="write what Curator found as Markdown")
    parser.add_argument("--keep", type=Path, help="build the project here and keep it")
    args = parser.parse_args()
    if not args.source.is_dir():
        raise SystemExit(f"{args.source}: no such folder (run: bash scripts/real-music.sh)")
    os.environ["HF_HUB_OFFLINE"] = "1"
    if args.keep:
        args.keep.mkdir(parents=True)
        run(args.keep, args.source, args.tracks, args.summary)
        return
    scratch = Path(tempfile.mkdtemp(prefix="curator-real-music-"))
    try:
        run(scratch, args.source, args.tracks, args.summary)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
