"""Duplicate benchmark: are the same recording and the same loop found, and nothing else?

Renders demo beats (curator.demo's parts, played through the trap corpus's soundfonts) and,
for each, transformed copies of the same recording:

  mp3      re-encoded to MP3 at 128 kbit/s (libsndfile's LAME), 44.1 kHz
  gain     +6 dB through a soft limiter, or -6 dB (alternately)
  trim     the first 0.5-3 s cut off
  lowpass  4th-order Butterworth low-pass at 3-6 kHz
  tempo    2 % faster or slower, pitch kept (librosa's phase vocoder)

and `--loops` other beats that share one of them's drum loop (its very drum stems, under
another beat's bass and melody at the same tempo). Everything is ingested into a fresh
project, then `find_duplicates` runs: 'same' (fingerprints), then 'near' (landmarks of the
segments). `--embeddings` also tags with trap and compares its embeddings of loop pairs
with those of same-genre pairs (why embeddings do not decide 'near').

Printed: precision and recall of same-recording pairs by kind of copy, of near-duplicate
(shared loop) pairs, the false positives by kind, and the time of each step. A pair of
tracks counts as found when a stored group holds segments of both. The rendered corpus is
kept under bench/out/duplicates/ and reused while the renderer and the options are unchanged.

    .venv/bin/python bench/duplicates_bench.py [--beats 30] [--loops 10] [--embeddings]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import inspect
import itertools
import json
import shutil
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile as sf
import soxr

import curator.demo
from curator.catalogue.ingest import ingest
from curator.demo import random_spec, render_stems
from curator.duplicates.finding import find_duplicates
from curator.project import Project, init_project
from curator.storage.duplicates import duplicate_groups, track_segments
from curator.tagging.runs import run_tagger

OUT = Path(__file__).parent / "out" / "duplicates"
RATE = 22050  # rendering at half rate halves the render; fingerprints use 11025 Hz anyway
SECONDS = 40.0
KINDS = ("mp3", "gain", "trim", "lowpass", "tempo")
DRUMS = ("kick", "snare", "clap", "hi-hat", "open hat")
GAINS = {"kick": 0.9, "snare": 0.55, "clap": 0.55, "hi-hat": 0.22, "open hat": 0.18}
GAINS |= {"808": 0.85, "deep sub": 0.75}
TARGETS = {"mp3": (0.95, 0.90), "gain": (0.95, 0.90), "trim": (0.95, 0.90)}


# ------------------------------------------------------------------------ the corpus


def mix(stems: dict[str, np.ndarray]) -> np.ndarray:
    """Stems levelled by peak and weighted as a producer would, summed, peak at -1 dBFS, as
    mono float32."""
    total = np.zeros(max(len(s) for s in stems.values()))
    for tag, stem in stems.items():
        total[: len(stem)] += GAINS.get(tag, 0.4) * stem / max(float(np.abs(stem).max()), 1e-9)
    return (total / max(float(np.abs(total).max()), 1e-9) * 10 ** (-1 / 20)).astype(np.float32)


def copies(audio: np.ndarray, index: int, rng: np.random.Generator) -> dict[str, tuple]:
    """kind -> (audio, rate, format, what was done), for each transformed copy."""
    import librosa

    up = soxr.resample(audio, RATE, 44100).astype(np.float32)
    gain_db = 6.0 if index % 2 == 0 else -6.0
    gained = np.tanh(audio * 2.0) if gain_db > 0 else audio * 0.5
    trim = float(rng.uniform(0.5, 3.0))
    cutoff = float(rng.uniform(3000, 6000))
    lowpass = scipy.signal.sosfilt(scipy.signal.butter(4, cutoff, fs=RATE, output="sos"), audio)
    tempo = 1.02 if index % 2 == 0 else 0.98
    stretched = librosa.effects.time_stretch(audio, rate=tempo)
    return {
        "mp3": (up, 44100, "MP3", {"bitrate_kbps": 128}),
        "gain": (gained, RATE, "WAV", {"gain_db": gain_db}),
        "trim": (audio[round(trim * RATE) :], RATE, "WAV", {"trimmed_seconds": round(trim, 3)}),
        "lowpass": (lowpass, RATE, "WAV", {"cutoff_hz": round(cutoff)}),
        "tempo": (stretched, RATE, "WAV", {"tempo_ratio": tempo}),
    }


def write(path: Path, audio: np.ndarray, rate: int, fmt: str) -> None:
    if fmt == "MP3":
        # 0.65 is where libsndfile's LAME writes 128 kbit/s constant bitrate at 44.1 kHz.
        sf.write(path, audio, rate, format="MP3", compression_level=0.65, bitrate_mode="CONSTANT")
    else:
        sf.write(path, audio, rate, subtype="PCM_16")


def render_corpus(folder: Path, beats: int, loops: int) -> dict[str, dict]:
    """Write the corpus and truth.json (file -> family, kind, genre, details); reuse it when
    the renderer and the options are unchanged."""
    stamp = _stamp(beats, loops)
    truth_file = folder / "truth.json"
    if truth_file.is_file() and (folder / "stamp.txt").read_text() == stamp:
        return json.loads(truth_file.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    truth: dict[str, dict] = {}
    started = time.perf_counter()
    drums: dict[str, dict[str, np.ndarray]] = {}
    for index in range(beats):
        spec = dataclasses.replace(
            random_spec(np.random.default_rng([7, index]), index), duration=SECONDS
        )
        stems = render_stems(spec, RATE, seed=7)
        drums[spec.name] = {t: s for t, s in stems.items() if t in DRUMS}
        audio = mix(stems)
        write(folder / f"{spec.name}.wav", audio, RATE, "WAV")
        truth[f"{spec.name}.wav"] = {"family": spec.name, "kind": "original", "genre": spec.genre}
        for kind, (copy, rate, fmt, what) in copies(
            audio, index, np.random.default_rng([8, index])
        ).items():
            name = f"{spec.name}_{kind}.{'mp3' if fmt == 'MP3' else 'wav'}"
            write(folder / name, copy, rate, fmt)
            truth[name] = {"family": spec.name, "kind": kind, "genre": spec.genre, **what}
        print(f"  rendered {spec.name} and its copies ({time.perf_counter() - started:.0f} s)")
    for index in range(loops):
        source = random_spec(np.random.default_rng([7, index]), index)
        other = random_spec(np.random.default_rng([9, index]), 1000 + index)
        spec = dataclasses.replace(other, tempo=source.tempo, duration=SECONDS)
        stems = {t: s for t, s in render_stems(spec, RATE, seed=9).items() if t not in DRUMS}
        name = f"loop_{index:04d}.wav"
        write(folder / name, mix(stems | drums[source.name]), RATE, "WAV")
        truth[name] = {"family": name, "kind": "loop", "genre": spec.genre, "loop_of": source.name}
    (folder / "truth.json").write_text(json.dumps(truth, indent=1))
    (folder / "stamp.txt").write_text(stamp)
    print(f"rendered {len(truth)} files in {time.perf_counter() - started:.0f} s")
    return truth


def _stamp(beats: int, loops: int) -> str:
    source = inspect.getsource(curator.demo) + inspect.getsource(copies) + inspect.getsource(mix)
    return hashlib.sha256(f"{beats} {loops} {source}".encode()).hexdigest()[:16]


# ------------------------------------------------------------------------ evaluating


def found_pairs(project: Project, level: str, file_of: dict[str, str]) -> set[tuple[str, str]]:
    """Pairs of files (sorted) whose segments share a stored group at `level`."""
    segment_file = {
        s: file_of[t] for t, ids in track_segments(project.catalog).items() for s in ids
    }
    pairs = set()
    for group in duplicate_groups(project.catalog, level):
        files = sorted({segment_file[s] for s in group.members})
        pairs.update(itertools.combinations(files, 2))
    return pairs


def same_truth(a: dict, b: dict) -> bool:
    return a["family"] == b["family"]


def near_truth(a: dict, b: dict) -> bool:
    """One is a loop beat built on the other's family's drums."""
    return a.get("loop_of") == b["family"] or b.get("loop_of") == a["family"]


def report_same(truth: dict[str, dict], found: set[tuple[str, str]]) -> dict:
    """Recall of (original, copy) pairs per kind, precision of found pairs touching a kind."""
    rows = {}
    for kind in (*KINDS, "all copies"):
        wanted = {
            tuple(sorted((f"{t['family']}.wav", name)))
            for name, t in truth.items()
            if t["kind"] == kind or (kind == "all copies" and t["kind"] in KINDS)
        }
        touching = {
            p for p in found if kind == "all copies" or any(truth[f]["kind"] == kind for f in p)
        }
        right = {p for p in touching if same_truth(truth[p[0]], truth[p[1]])}
        rows[kind] = {
            "recall": len(wanted & found) / max(len(wanted), 1),
            "precision": len(right) / max(len(touching), 1),
            "pairs": len(wanted),
            "found": len(touching),
        }
    every = {
        p for p in itertools.combinations(sorted(truth), 2) if same_truth(truth[p[0]], truth[p[1]])
    }
    rows["all pairs"] = {
        "recall": len(every & found) / max(len(every), 1),
        "precision": len(every & found) / max(len(found), 1),
        "pairs": len(every),
        "found": len(found),
    }
    return rows


def false_positives(truth: dict[str, dict], found: set, right) -> Counter:
    return Counter(
        " + ".join(sorted((truth[a]["kind"], truth[b]["kind"])))
        + (" (same genre)" if truth[a]["genre"] == truth[b]["genre"] else "")
        for a, b in found
        if not right(truth[a], truth[b])
    )


def report_near(truth: dict[str, dict], found: set[tuple[str, str]]) -> dict:
    """Loop pairs: each loop beat with its source's original; found pairs across families."""
    wanted = {
        tuple(sorted((name, f"{t['loop_of']}.wav")))
        for name, t in truth.items()
        if t["kind"] == "loop"
    }
    across = {p for p in found if not same_truth(truth[p[0]], truth[p[1]])}
    right = {p for p in across if near_truth(truth[p[0]], truth[p[1]])}
    return {
        "recall": len(wanted & found) / max(len(wanted), 1),
        "recall_any_copy": len({p for p in right if "loop" in {truth[f]["kind"] for f in p}})
        / max(sum(1 for t in truth.values() if t["kind"] == "loop") * (len(KINDS) + 1), 1),
        "precision": len(right) / max(len(across), 1),
        "pairs": len(wanted),
        "found": len(across),
    }


# ------------------------------------------------------------------------ running


def run(args: argparse.Namespace) -> dict:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    truth = render_corpus(args.out / "corpus", args.beats, args.loops)
    timings["render (cached after the first run)"] = time.perf_counter() - started
    root = args.out / "project"
    shutil.rmtree(root, ignore_errors=True)
    project = init_project(root)
    started = time.perf_counter()
    ingest(project, [(args.out / "corpus").resolve()])
    timings["ingest"] = time.perf_counter() - started
    file_of = {t: Path(p).name for t, p in _track_paths(project).items()}
    started = time.perf_counter()
    same = find_duplicates(project, "same", same_threshold=args.same_threshold)[0]
    timings[f"fingerprint {len(file_of)} tracks + find same"] = time.perf_counter() - started
    started = time.perf_counter()
    near = find_duplicates(project, "near", near_threshold=args.near_threshold)[0]
    timings[f"find near ({project.catalog.segment_count()} segments)"] = (
        time.perf_counter() - started
    )
    found_same = found_pairs(project, "same", file_of)
    found_near = found_pairs(project, "near", file_of)
    if args.embeddings:
        started = time.perf_counter()
        run_tagger(project, "trap")
        timings["trap tagger, for --embeddings"] = time.perf_counter() - started
    return {
        "embeddings": embedding_check(project, truth, file_of) if args.embeddings else None,
        "tracks": len(file_of),
        "same": report_same(truth, found_same),
        "same_false_positives": false_positives(truth, found_same, same_truth),
        "same_how": same.how,
        "near": report_near(truth, found_near),
        "near_false_positives": false_positives(
            truth, {p for p in found_near if not same_truth(truth[p[0]], truth[p[1]])}, near_truth
        ),
        "near_how": near.how,
        "timings": timings,
        "bit_error_rates": _rates(same.groups, truth, file_of),
    }


def embedding_check(project: Project, truth: dict[str, dict], file_of: dict[str, str]) -> dict:
    """Cosine similarity of the trap tagger's embeddings: segments of a loop beat and of its
    source's family, against segments of different families of the same genre."""
    from curator.curation.probes import choose_embedding

    model = choose_embedding(project, None)
    ids, vectors = project.catalog.embeddings(model)
    unit = normalised(np.asarray(vectors, dtype=np.float64))
    similarity = unit @ unit.T
    track_of = {s: t for t, seg in track_segments(project.catalog).items() for s in seg}
    info = [truth[file_of[track_of[s]]] for s in ids]
    loop, genre = [], []
    for i, j in itertools.combinations(range(len(ids)), 2):
        a, b = info[i], info[j]
        if near_truth(a, b):
            loop.append(similarity[i, j])
        elif a["genre"] == b["genre"] and not same_truth(a, b):
            genre.append(similarity[i, j])
    return {"model": model, "shared loop": spread(loop), "same genre": spread(genre)}


def spread(values: list[float]) -> dict[int, float]:
    quantiles = (10, 50, 90, 99)
    return dict(zip(quantiles, np.percentile(values, quantiles).round(3).tolist(), strict=True))


def normalised(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _track_paths(project: Project) -> dict[str, str]:
    return {r["track_id"]: r["source"] for r in project.catalog.segment_rows(include_unusable=True)}


def _rates(groups, truth, file_of) -> dict[str, list[float]]:
    """Bit error rates of matched pairs by kind of copy (the spread behind the threshold)."""
    rates: dict[str, list[float]] = defaultdict(list)
    for group in groups:
        for pair in group.evidence["pairs"]:
            kinds = sorted(truth[file_of[t]]["kind"] for t in pair["tracks"])
            rates[" + ".join(kinds)].append(pair["bit_error_rate"])
    return {k: [min(v), float(np.median(v)), max(v)] for k, v in sorted(rates.items())}


def print_report(results: dict) -> None:
    print(f"\n{results['tracks']} tracks; same: {results['same_how']}")
    print("| copies | pairs | recall | found | precision | target (P / R) |")
    print("|---|---:|---:|---:|---:|---|")
    for kind, row in results["same"].items():
        target = TARGETS.get(kind)
        goal = f">= {target[0]} / >= {target[1]}" if target else ""
        print(
            f"| {kind} | {row['pairs']} | {row['recall']:.3f} | {row['found']} | "
            f"{row['precision']:.3f} | {goal} |"
        )
    print("same, false positives by kind:", dict(results["same_false_positives"]) or "none")
    print("bit error rate of matched pairs (min, median, max):")
    for kinds, (low, mid, high) in results["bit_error_rates"].items():
        print(f"  {kinds}: {low:.3f} {mid:.3f} {high:.3f}")
    near = results["near"]
    print(f"\nnear: {results['near_how']}")
    print(
        f"shared-loop pairs (loop beat, its source's original): {near['pairs']}, "
        f"recall {near['recall']:.3f}; pairs found across families {near['found']}, "
        f"precision {near['precision']:.3f}"
    )
    print("near, false positives by kind:", dict(results["near_false_positives"]) or "none")
    if results["embeddings"]:
        check = results["embeddings"]
        print(f"\n{check['model']} cosine similarity percentiles (10, 50, 90, 99):")
        for what in ("shared loop", "same genre"):
            print(f"  {what}: {' '.join(f'{v:.3f}' for v in check[what].values())}")
    print("\n| step | seconds |\n|---|---:|")
    for step, seconds in results["timings"].items():
        print(f"| {step} | {seconds:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beats", type=int, default=30)
    parser.add_argument("--loops", type=int, default=10)
    parser.add_argument("--same-threshold", type=float)
    parser.add_argument("--near-threshold", type=float)
    parser.add_argument(
        "--embeddings",
        action="store_true",
        help="also tag with trap and compare its embeddings of loop pairs and genre pairs",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    results = run(args)
    print_report(results)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
