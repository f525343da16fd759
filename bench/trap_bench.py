"""Trap tagger benchmark: accuracy on the held-out soundfont, and tagging speed.

Run: .venv/bin/python bench/trap_bench.py [--corpus DIR] [--probe-clips 1500]

The corpus (default bench/out/trap/corpus, rendered by `curator trap-corpus` with its
default settings when missing) has clips of the training soundfonts ("train", "valid") and
of the held-out one ("test"); every figure below is measured on "test" only, audio no model
here was trained or tuned on. Side by side, in one run:

- trap: the shipped weights (or --weights), thresholds as chosen on "valid" at training;
- musicnn: the MTT_musicnn model's tags mapped to Curator's (its own tag map), where it
  maps one; a tag it never scores is shown as "-", not counted as a miss;
- musicnn probes: logistic probes on musicnn's 200-value penultimate layer, trained on the
  corpus's "train" clips (--probe-clips of them), thresholds chosen on "valid": the fair
  baseline, a tagger that scores every tag from an embedding the project already computes.

Targets: macro ROC AUC >= 0.90 over the drum and bass tags, snare vs clap balanced
accuracy >= 0.85, tagging >= 50x real time on this machine. Speed is the whole plugin path
(decode the file, resample, tag) over real files, next to the network's own forward pass
(the bound) and musicnn's plugin path. All clips are synthetic renders (fluidsynth and
synthesised drums): see docs/trap-tagger.md for what that does and does not show.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from sklearn.linear_model import LogisticRegression

from curator.api import PluginContext, SegmentAudio
from curator.catalogue.audio import decode_window
from curator.plugins.trap.evaluation import (
    best_f1_thresholds,
    macro,
    snare_vs_clap,
    tag_figures,
)
from curator.plugins.trap.features import cut_windows
from curator.plugins.trap.model import load_weights, segment_outputs, shipped_weights
from curator.plugins.trap.tagger import TrapTagger
from curator.plugins.trap.tags import DRUM_AND_BASS, FACET, TAGS
from curator.plugins.trap.train import Clips, load_split, predict, read_labels
from curator.vocabulary import default_vocabulary_dir, load_vocabulary

OUT = Path(__file__).resolve().parent / "out" / "trap"
MUSICNN_RATE = 16000


def ensure_corpus(folder: Path) -> None:
    if (folder / "labels.jsonl").is_file():
        return
    from curator.plugins.trap.corpus import CorpusSettings, make_corpus

    print(f"rendering the default corpus into {folder} (once)")
    make_corpus(folder, CorpusSettings())


def musicnn_outputs(tagger, clips: Clips, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """Mapped scores (NaN where musicnn maps nothing) and penultimate embeddings per clip."""
    if cache.is_file():
        saved = np.load(cache)
        return saved["scores"], saved["embeddings"]
    mapped = tagger.layout.mapped.get(FACET, {})
    scores = np.full((len(clips.audio), len(TAGS)), np.nan, np.float32)
    embeddings = []
    for row, audio in enumerate(clips.audio):
        resampled = _resample(audio, 22050, MUSICNN_RATE)
        result = tagger.tag([SegmentAudio(str(row), resampled[:, None], MUSICNN_RATE)])[0]
        for i, tag in enumerate(TAGS):
            if tag in mapped:
                scores[row, i] = result.scores[FACET][tag]
        embeddings.append(result.embedding[-200:])
    np.savez(cache, scores=scores, embeddings=np.stack(embeddings))
    return scores, np.stack(embeddings)


def _resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    import soxr

    return soxr.resample(audio, rate, target, quality="HQ").astype(np.float32)


def probe_scores(
    train: tuple[np.ndarray, np.ndarray],
    valid: tuple[np.ndarray, np.ndarray],
    test_x: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-tag logistic probes (standardised inputs): valid and test probabilities."""
    mean, std = train[0].mean(0), train[0].std(0) + 1e-6
    scale = lambda x: (x - mean) / std  # noqa: E731
    valid_p = np.zeros((len(valid[0]), len(TAGS)), np.float32)
    test_p = np.zeros((len(test_x), len(TAGS)), np.float32)
    for i in range(len(TAGS)):
        y = train[1][:, i]
        if y.min() == y.max():
            valid_p[:, i] = test_p[:, i] = y[0]
            continue
        model = LogisticRegression(C=0.5, max_iter=2000, class_weight="balanced")
        model.fit(scale(train[0]), y)
        valid_p[:, i] = model.predict_proba(scale(valid[0]))[:, 1]
        test_p[:, i] = model.predict_proba(scale(test_x))[:, 1]
    return valid_p, test_p


def figures_of(truth: np.ndarray, scores: np.ndarray, thresholds: dict) -> dict:
    scored = [i for i in range(len(TAGS)) if not np.isnan(scores[:, i]).any()]
    tags = [TAGS[i] for i in scored]
    figures = tag_figures(truth[:, scored], scores[:, scored], tags, thresholds)
    return {
        "tags": figures,
        "drum_and_bass_macro_roc_auc": macro(figures, DRUM_AND_BASS, "roc_auc"),
        "drum_and_bass_scored": sum(t in figures for t in DRUM_AND_BASS),
        "snare_vs_clap": snare_vs_clap(truth, np.nan_to_num(scores), list(TAGS), thresholds)
        if {"snare", "clap"} <= set(tags)
        else None,
    }


def speed(weights_path: Path, folder: Path, seconds: float = 30.0, files: int = 8) -> dict:
    """Real-time factors: trap's plugin path over files, its forward pass, musicnn's path."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(files):  # 30 s stereo 44.1 kHz files, as ingested segments are
        path = folder / f"speed{i}.flac"
        if not path.is_file():
            sf.write(path, (0.1 * rng.standard_normal((int(seconds * 44100), 2))), 44100)
        paths.append(path)
    audio_seconds = seconds * files
    trap = TrapTagger()
    trap.setup(PluginContext(settings={"weights": str(weights_path)}, device="cpu"))

    def trap_path() -> None:
        for path in paths:
            audio = decode_window(path, 0, seconds, trap.sample_rate, 1)
            trap.tag([SegmentAudio(path.name, audio, trap.sample_rate)])

    window = trap.window_samples()
    decoded = [decode_window(p, 0, seconds, trap.sample_rate, 1)[:, 0] for p in paths]

    def forward_only() -> None:
        for audio in decoded:
            segment_outputs(trap.weights.net, cut_windows(audio, window), 32, "cpu")

    figures = {"trap plugin path": audio_seconds / _best_of(trap_path)}
    figures["trap forward pass (bound)"] = audio_seconds / _best_of(forward_only)
    musicnn = _musicnn_tagger("MSD_musicnn", "tags")

    def musicnn_path() -> None:
        for path in paths:
            audio = decode_window(path, 0, seconds, MUSICNN_RATE, 1)
            musicnn.tag([SegmentAudio(path.name, audio, MUSICNN_RATE)])

    figures["musicnn plugin path"] = audio_seconds / _best_of(musicnn_path)
    return {k: round(v, 1) for k, v in figures.items()}


def _best_of(work, repeats: int = 2) -> float:
    work()  # warm-up: first calls allocate
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def _musicnn_tagger(model: str, embedding: str):
    from curator.plugins.musicnn import MusicnnTagger

    tagger = MusicnnTagger()
    vocabulary = load_vocabulary(default_vocabulary_dir())
    tagger.setup(
        PluginContext(settings={"model": model, "embedding": embedding}, vocabulary=vocabulary)
    )
    return tagger


def print_table(results: dict[str, dict]) -> None:
    names = list(results)
    print(f"\n{'tag':<14}" + "".join(f"{n:>26}" for n in names))
    print(f"{'':<14}" + "".join(f"{'ROC AUC':>14}{'F1':>12}" for _ in names))
    for tag in TAGS:
        cells = []
        for name in names:
            row = results[name]["tags"].get(tag)
            if row is None:
                cells.append(f"{'-':>14}{'-':>12}")
            else:
                auc = "n/a" if row["roc_auc"] is None else f"{row['roc_auc']:.3f}"
                cells.append(f"{auc:>14}{row.get('f1', 0):>12.3f}")
        print(f"{tag:<14}" + "".join(cells))
    for key, label in (
        ("drum_and_bass_macro_roc_auc", "drum+bass macro ROC AUC (target >= 0.90)"),
        ("snare_vs_clap", "snare vs clap balanced accuracy (target >= 0.85)"),
    ):
        values = [results[n][key] for n in names]
        print(f"{label}: " + ", ".join(f"{n} {v}" for n, v in zip(names, values, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=OUT / "corpus")
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--probe-clips", type=int, default=1500)
    parser.add_argument("--skip-musicnn", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    ensure_corpus(args.corpus)
    weights_path = args.weights or shipped_weights()
    weights = load_weights(weights_path)
    records = read_labels(args.corpus)
    test = load_split(args.corpus, records, "test", TAGS, 22050)
    print(f"held-out clips: {len(test.audio)} ({args.corpus})")
    window = round(weights.window_seconds * weights.mel.sample_rate)
    results = {
        "trap": figures_of(test.truth, predict(weights.net, test, window), weights.thresholds)
    }
    if not args.skip_musicnn:
        cache = OUT / f"musicnn-{args.probe_clips}"
        cache.mkdir(parents=True, exist_ok=True)
        tagger = _musicnn_tagger("MTT_musicnn", "penultimate")
        train = load_split(args.corpus, records, "train", TAGS, 22050)
        keep = np.random.default_rng(0).permutation(len(train.audio))[: args.probe_clips]
        train = Clips(
            [train.files[i] for i in keep], [train.audio[i] for i in keep], train.truth[keep]
        )
        valid = load_split(args.corpus, records, "valid", TAGS, 22050)
        outputs = {
            n: musicnn_outputs(tagger, c, cache / f"{n}.npz")
            for n, c in (("train", train), ("valid", valid), ("test", test))
        }
        mapped_valid = np.nan_to_num(outputs["valid"][0])
        mapped_thresholds = best_f1_thresholds(valid.truth, mapped_valid, TAGS)
        results["musicnn (mapped)"] = figures_of(test.truth, outputs["test"][0], mapped_thresholds)
        valid_p, test_p = probe_scores(
            (outputs["train"][1], train.truth),
            (outputs["valid"][1], valid.truth),
            outputs["test"][1],
        )
        probe_thresholds = best_f1_thresholds(valid.truth, valid_p, TAGS)
        results["musicnn probes"] = figures_of(test.truth, test_p, probe_thresholds)
    print_table(results)
    rates = speed(weights_path, OUT / "speed")
    print("\nreal-time factors on this machine (30 s stereo 44.1 kHz FLAC files, 2 threads):")
    for name, value in rates.items():
        print(f"  {name:<28} {value:>8.1f}x")
    summary = {"weights": weights.version, "results": results, "speed": rates}
    (OUT / "results.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
