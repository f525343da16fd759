"""Ray engine and precision benchmark: local vs Ray, fp32 vs bf16, pipeline vs forward pass.

Run: .venv/bin/python bench/ray_bench.py [--beats 24] [--quick]

In one run on this machine, on rendered demo beats:
1. local vs Ray engine throughput (one actor of one CPU against the local engine's one
   model thread, so the ratio is Ray's overhead, not more cores) for the essentia analyzer
   and for CLAP, shaped like laion/larger_clap_music with random weights (no real CLAP can
   be downloaded here; the compute is the real model's). Ray's cluster start is timed apart.
2. fp32 vs bf16 (autocast): throughput and identical labels for the trap tagger (its
   shipped, real weights), and the full-size CLAP audio tower's forward rate.
3. the local pipeline's windows/s as a share of the model's own forward-pass rate on
   windows decoded beforehand (trap and full-size CLAP, fp32, the model loaded before
   either clock starts), and how fast 1 and 2 decode threads deliver CLAP's windows.
Timings are printed, never asserted. No GPU is used.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from tagging_bench import (
    build_full_size_clap,
    clap_forward,
    pipeline_and_bound,
    project_windows,
    share_line,
)

from curator.api import SegmentAudio
from curator.catalogue.audio import decode_window
from curator.catalogue.ingest import ingest
from curator.demo import render_demo_dataset
from curator.plugins.trap.features import cut_windows as trap_windows
from curator.plugins.trap.features import mono
from curator.plugins.trap.model import segment_outputs
from curator.project import Project, init_project, open_project
from curator.tagging.ray_engine import RayOptions, run_on_ray
from curator.tagging.runs import (
    decode_batches,
    model_labels,
    process_locally,
    run_plugin,
    run_work,
    set_up_work,
)

BATCH = 2  # segments per model call, the same for both engines
SEED_SEGMENTS = 40000  # the seed's catalogue (DESIGN.md)


def project_with(root: Path, beats: Path, table: str = "") -> Project:
    project = init_project(root)
    if table:
        settings = project.root / "curator.toml"
        settings.write_text(settings.read_text() + "\n" + table)
    ingest(project, [beats])
    return open_project(project.root)


def engines(scratch: Path, beats: Path, kind: str, name: str, table: str, batch: int) -> None:
    """Local vs Ray, each run twice on fresh projects: on half the segments and on all of
    them. The difference of the two is the cost of the second half alone, with each
    engine's start (plugin load; for Ray, the actor process) cancelled out; Ray returns a
    call's results in bursts, so timing its results as they come would mislead."""
    options = RayOptions(actors=1, cpus_per_actor=1)
    runs: dict[str, list[tuple[Any, float]]] = {"local": [], "ray": []}
    for part in ("half", "all"):  # interleaved: the machine's other work hits both alike
        for engine in ("local", "ray"):
            project = project_with(scratch / f"{name}-{engine}-{part}", beats, table)
            limit = len(project.catalog.segment_rows()) // 2 if part == "half" else None
            started = time.perf_counter()
            if engine == "local":
                summary = run_plugin(project, kind, name, batch, limit=limit)
            else:
                summary = run_on_ray(project, kind, name, options, batch_size=batch, limit=limit)
            runs[engine].append((summary, time.perf_counter() - started))
            if part == "all":
                runs[engine].append((project, 0.0))
    (local_half, local_half_s), (local_all, local_s), (local, _) = runs["local"]
    (ray_half, ray_half_s), (ray_all, ray_s), (on_ray, _) = runs["ray"]
    assert local_all.done == ray_all.done and local_half.done == ray_half.done
    second_half = local_all.done - local_half.done
    local_each = (local_s - local_half_s) / second_half
    ray_each = (ray_s - ray_half_s) / second_half
    print(f"\n{name} ({kind}), {local_all.done} segments, batch {batch}")
    print(f"  local engine: {local_s:6.1f} s  {local_all.done / local_s:5.2f} segments/s")
    print(f"  Ray, 1 actor: {ray_s:6.1f} s  {ray_all.done / ray_s:5.2f} segments/s")
    print(f"  Ray / local wall time: {ray_s / local_s:.2f}x (includes the actor's start)")
    if min(local_each, ray_each) <= 0:
        # The half run took as long as the whole: too few segments for the difference to
        # mean anything (as with --quick). Say so rather than print a negative ratio.
        print("  per segment, start cancelled: too few segments to tell; use more --beats")
    else:
        steady_and_seed(local_each, ray_each, local_s, ray_s, local_all.done, second_half)
    print(f"  labels identical to the local engine's: {labels_of(local) == labels_of(on_ray)}")


def steady_and_seed(
    local_each: float, ray_each: float, local_s: float, ray_s: float, done: int, second: int
) -> None:
    """Ray's per-segment cost against the local engine's with the start cancelled, its
    start, and what a catalogue of the seed's size would see."""
    steady = ray_each / local_each
    start = (ray_s - ray_each * done) - (local_s - local_each * done)
    print(f"  Ray's start beyond the local engine's: {start:.1f} s (once per command)")
    print(
        f"  Ray / local per segment, start cancelled ({second} segments: all minus half): "
        f"{steady:.2f}x  {verdict(steady <= 1.3)} (target <= 1.3x)"
    )
    # The start paid once, then the steady rate.
    seed_local = SEED_SEGMENTS * local_each
    projected = (seed_local * steady + start) / seed_local
    print(
        f"  over the seed's {SEED_SEGMENTS} segments: {projected:.2f}x  {verdict(projected <= 1.3)}"
    )


def labels_of(project: Project) -> list[tuple[Any, ...]]:
    return [
        # Scores to 5 decimals: an actor's one thread sums in another order than the local
        # engine's two (tests/test_ray_engine.py).
        (r["segment_id"], r["facet"], r["tag"], r["value"], round(r["score"] or 0.0, 5))
        for r in project.catalog.labels()
    ]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def decoded(project: Project, rate: int) -> list[SegmentAudio]:
    return [
        SegmentAudio(
            r["id"], decode_window(Path(r["source"]), r["start"], r["duration"], rate, 1), rate
        )
        for r in project.catalog.segment_rows()
    ]


def trap_precision(scratch: Path, beats: Path, rounds: int = 2) -> None:
    """Trap fp32 vs bf16 through the local pipeline, and its forward rate on decoded windows;
    pipeline and forward pass alternate, best of `rounds` each."""
    print("\ntrap tagger (shipped weights), fp32 vs bf16")
    results = {}
    for precision in ("fp32", "bf16"):
        table = f'[plugins.trap]\nprecision = "{precision}"\n'
        seconds = forward_s = float("inf")
        for round_ in range(rounds):
            project = project_with(scratch / f"trap-{precision}-{round_}", beats, table)
            work = set_up_work(project, "tag", "trap")  # weights loaded before the clock starts
            started = time.perf_counter()
            summary = run_work(project, work, BATCH, None, None, process_locally)
            seconds = min(seconds, time.perf_counter() - started)
            plugin = work.plugin
            if round_ == 0:
                audio = decoded(project, plugin.sample_rate)
                windows = [trap_windows(mono(s.audio), plugin.window_samples()) for s in audio]
            started = time.perf_counter()
            for w in windows:
                net, batch = plugin.weights.net, plugin.settings.batch_windows
                segment_outputs(net, w, batch, "cpu", precision)
            forward_s = min(forward_s, time.perf_counter() - started)
        count = sum(len(w) for w in windows)
        run = project.catalog.runs()[0]
        ids, scores = project.catalog.scores(run["id"])
        results[precision] = (plugin, ids, scores)
        share = (count / seconds) / (count / forward_s)
        print(
            f"  {precision}: pipeline {count / seconds:7.1f} windows/s, forward pass "
            f"{count / forward_s:7.1f} windows/s, pipeline share {share:.0%} "
            f"({summary.done} segments, best of {rounds})"
        )
    plugin, ids, exact = results["fp32"]
    _, ids_half, fast = results["bf16"]
    assert ids == ids_half
    decisions = exact.size
    full = decisions_of(plugin, exact)
    half = decisions_of(plugin, fast)
    agree = 1 - len(full ^ half) / decisions
    print(
        f"  identical label decisions (segment x tag): {agree:.2%} of {decisions} "
        f"({len(full ^ half)} differ; max score difference {np.abs(exact - fast).max():.4f})  "
        f"{verdict(agree >= 0.99)} (target >= 99 %)"
    )


def decisions_of(plugin: Any, scores: np.ndarray) -> set[tuple[int, str]]:
    labels = model_labels(plugin, plugin.tag_order(), scores)
    return set(zip(labels.rows.tolist(), labels.tags.tolist(), strict=True))


def clap_share(scratch: Path, beats: Path, model: Path) -> None:
    """The local pipeline against the audio tower alone on the same windows (tagging_bench's
    measurement, at this benchmark's batch), bf16 against fp32, and the decode threads."""
    table = f'[plugins.clap]\nmodel = "{model}"\n'
    windows, pipeline_s, forward_s, work = pipeline_and_bound(
        lambda round_: project_with(scratch / f"clap-share-{round_}", beats, table), BATCH
    )
    # bf16 is emulated on CPUs without bf16 instructions (minutes for a few windows): 8 do.
    few = project_windows(work.project)[:8]
    bf16 = len(few) / clap_forward(work.plugin, "bf16", few)
    fp32_few = len(few) / clap_forward(work.plugin, "fp32", few)
    print(f"\nCLAP, full-size architecture (random weights), {windows} windows of 10 s")
    print(
        f"  forward pass on 8 windows, fp32: {fp32_few:5.2f} windows/s   bf16: {bf16:5.2f} "
        f"windows/s  ({bf16 / fp32_few:.2f}x)"
    )
    print(share_line(windows, pipeline_s, forward_s))
    decoding(work.project, work.plugin, windows / forward_s)


def decoding(project: Project, plugin: Any, model_rate: float) -> None:
    """How fast the engine's decode threads deliver the plugin's input, in 10 s windows,
    against the model's forward rate: the threads a faster device would need."""
    rows = project.catalog.segment_rows()
    for threads in (1, 2):
        started = time.perf_counter()
        count = sum(
            len(batch.audio)
            for batch in decode_batches(rows, plugin, BATCH, threading.Event(), threads)
        )
        seconds = time.perf_counter() - started
        windows = sum(r["duration"] for r in rows) / 10.0 / seconds
        print(
            f"  decoding, {threads} thread(s): {count / seconds:6.1f} segments/s = "
            f"{windows:6.1f} windows/s, {windows / model_rate:5.1f}x the fp32 forward pass"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beats", type=int, default=24, help="demo beats (two segments each)")
    parser.add_argument("--quick", action="store_true", help="6 beats")
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one model thread: like for like with an actor
    import torch

    # torch was imported above (through tagging_bench) and read no variable then: without
    # this the local engine ran 2 threads against the actor's 1 (2026-12-01, 1.58x "overhead").
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    scratch = Path(tempfile.mkdtemp(prefix="curator-ray-bench-"))
    try:
        run(scratch, 6 if args.quick else args.beats)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(scratch: Path, beats_count: int) -> None:
    import ray
    import torch

    print(f"machine: {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, no GPU")
    beats = scratch / "beats"
    render_demo_dataset(beats, beats_count, seed=5)
    model = build_full_size_clap(scratch / "clap")
    # In-process measurements first: after ray.shutdown() the driver's forward pass ran at
    # half speed while the pipeline's did not (2026-12-01), which made the share meaningless.
    trap_precision(scratch, beats)
    clap_share(scratch, beats, model)
    started = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    print(
        f"Ray local cluster start (once per run of the CLI): {time.perf_counter() - started:.1f} s"
    )
    try:
        engines(scratch, beats, "analyze", "essentia", "", 1)
        engines(scratch, beats, "tag", "clap", f'[plugins.clap]\nmodel = "{model}"\n', BATCH)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
