"""Training the trap tagger on a labelled corpus, and the report that ships with it.

A corpus is a folder with `labels.jsonl` (one clip per line: its audio file, its split and
the tags audible in it) beside the audio: what `curator trap-corpus` renders, or what a
producer writes for their own stems. Clips of split "train" train the network, "valid"
chooses the epoch and each tag's threshold, and "test" (the held-out soundfont) is only
ever reported on.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from curator.api import decode_window
from curator.errors import AudioError, CuratorError

from .evaluation import best_f1_thresholds, macro, snare_vs_clap, tag_figures
from .features import MelSettings, cut_windows
from .model import TrapNet, TrapWeights, build_net, save_weights, segment_outputs
from .tags import DRUM_AND_BASS, TAGS

Progress = Callable[[str, int, int], None]  # (what, done, total)


@dataclass(frozen=True)
class TrainSettings:
    """What decides the weights, recorded in them so they can be remade.

    window_seconds: the length of the random crops the network trains on, and of the
      windows a segment is cut into when tagging.
    """

    epochs: int = 24
    batch: int = 32
    learning_rate: float = 3e-3
    window_seconds: float = 4.0
    width: int = 24
    embedding: int = 128
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Clips:
    """A split of the corpus in memory: mono audio at the model's rate, and a tag matrix."""

    files: list[str]
    audio: list[np.ndarray]
    truth: np.ndarray  # (clips, tags) of 0/1


def read_labels(corpus: Path) -> list[dict[str, Any]]:
    """The corpus's label lines (the last line for a file wins: a resumed render rewrites)."""
    path = corpus / "labels.jsonl"
    if not path.is_file():
        raise CuratorError(f"{corpus}: no labels.jsonl (make one with `curator trap-corpus`)")
    by_file: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            file, split, tags = record["file"], record["split"], record["tags"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CuratorError(f"{path}:{number}: not a clip record ({exc})") from None
        if split not in ("train", "valid", "test") or not isinstance(tags, list):
            raise CuratorError(f"{path}:{number}: split must be train, valid or test")
        by_file[file] = record
    return list(by_file.values())


def load_split(
    corpus: Path,
    records: Sequence[dict[str, Any]],
    split: str,
    tags: Sequence[str],
    sample_rate: int,
    progress: Progress | None = None,
) -> Clips:
    """Decode one split's clips (mono, at `sample_rate`); a clip that cannot be read is named."""
    chosen = [r for r in records if r["split"] == split]
    column = {tag: i for i, tag in enumerate(tags)}
    truth = np.zeros((len(chosen), len(tags)), np.float32)
    audio: list[np.ndarray] = []
    for row, record in enumerate(chosen):
        try:
            clip = decode_window(corpus / record["file"], 0.0, 3600.0, sample_rate, 1)[:, 0]
        except AudioError as exc:
            raise CuratorError(str(exc)) from None
        audio.append(np.ascontiguousarray(clip))
        for tag in record["tags"]:
            if tag in column:
                truth[row, column[tag]] = 1.0
        if progress:
            progress(f"reading {split}", row + 1, len(chosen))
    return Clips([r["file"] for r in chosen], audio, truth)


def training_batches(
    clips: Clips, batch: int, window: int, rng: np.random.Generator
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of random crops, with a random gain so level is not a cue."""
    order = rng.permutation(len(clips.audio))
    batches = []
    for start in range(0, len(order), batch):
        rows = order[start : start + batch]
        crops = []
        for row in rows:
            clip = clips.audio[row]
            if clip.size < window:
                clip = np.resize(clip, window)
            offset = int(rng.integers(0, clip.size - window + 1))
            gain = 10 ** (rng.uniform(-12, 6) / 20)
            crops.append(clip[offset : offset + window] * gain)
        batches.append((torch.from_numpy(np.stack(crops)), torch.from_numpy(clips.truth[rows])))
    return batches


def predict(net: TrapNet, clips: Clips, window: int, device: str = "cpu") -> np.ndarray:
    """Each clip's tag probabilities, cut into windows exactly as the tagger cuts a segment."""
    net.eval()
    rows = [segment_outputs(net, cut_windows(a, window), 32, device)[1] for a in clips.audio]
    return np.stack(rows) if rows else np.zeros((0, clips.truth.shape[1]), np.float32)


def positive_weights(truth: np.ndarray) -> torch.Tensor:
    """BCE weights that make rare tags count, capped so a handful of clips cannot dominate."""
    positives = truth.sum(0).clip(1, None)
    return torch.from_numpy(((len(truth) - positives) / positives).clip(1, 5).astype(np.float32))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(
    corpus: Path,
    out_folder: Path,
    settings: TrainSettings,
    command: str = "",
    progress: Progress | None = None,
    mel: MelSettings | None = None,
) -> TrapWeights:
    """Train on `corpus`, choose the epoch and thresholds on "valid", report, save."""
    mel = mel or MelSettings()
    tags = list(TAGS)
    records = read_labels(corpus)
    data = {s: load_split(corpus, records, s, tags, mel.sample_rate, progress) for s in SPLITS}
    if not data["train"].audio or not data["valid"].audio:
        raise CuratorError(f"{corpus}: training needs clips of split 'train' and 'valid'")
    seed_everything(settings.seed)
    net = build_net(len(tags), mel, settings.width, settings.embedding)
    window = round(settings.window_seconds * mel.sample_rate)
    best_state, history = fit(net, data, window, settings, progress)
    net.load_state_dict(best_state)
    net.eval()
    valid = predict(net, data["valid"], window)
    thresholds = best_f1_thresholds(data["valid"].truth, valid, tags)
    report = {
        "history": history,
        "valid": split_report(data["valid"], valid, tags, thresholds),
    }
    if data["test"].audio:
        test = predict(net, data["test"], window)
        report["test"] = split_report(data["test"], test, tags, thresholds)
    recipe = {
        "command": command,
        "train": settings.as_dict(),
        "corpus": corpus_settings(corpus),
        "clips": {s: len(d.audio) for s, d in data.items()},
        "torch": str(torch.__version__),
    }
    weights = TrapWeights(net, tags, thresholds, mel, settings.window_seconds, recipe, report)
    save_weights(weights, out_folder)
    write_report(weights, out_folder)
    return weights


SPLITS = ("train", "valid", "test")


def fit(
    net: TrapNet,
    data: dict[str, Clips],
    window: int,
    settings: TrainSettings,
    progress: Progress | None,
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """AdamW with a one-cycle schedule; keeps the epoch with the best validation macro AUC."""
    rng = np.random.default_rng(settings.seed)
    train_clips, valid_clips = data["train"], data["valid"]
    steps = settings.epochs * -(-len(train_clips.audio) // settings.batch)
    optimiser = torch.optim.AdamW(net.parameters(), lr=settings.learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=settings.learning_rate, total_steps=steps
    )
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=positive_weights(train_clips.truth))
    best: tuple[float, dict[str, torch.Tensor]] = (-1.0, {})
    history = []
    for epoch in range(settings.epochs):
        net.train()
        losses: list[float] = []
        for audio, truth in training_batches(train_clips, settings.batch, window, rng):
            optimiser.zero_grad()
            loss = loss_fn(net(audio), truth)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(float(loss.detach()))
        scores = predict(net, valid_clips, window)
        figures = tag_figures(valid_clips.truth, scores, TAGS)
        auc = macro(figures, TAGS, "roc_auc") or 0.0
        history.append(
            {
                "epoch": epoch + 1,
                "loss": round(float(np.mean(losses)), 4),
                "valid_macro_auc": auc,
            }
        )
        if auc > best[0]:
            best = (auc, {k: v.detach().clone() for k, v in net.state_dict().items()})
        if progress:
            progress(f"epoch {epoch + 1}: valid macro AUC {auc:.3f}", epoch + 1, settings.epochs)
    return best[1], history


def split_report(
    clips: Clips, probabilities: np.ndarray, tags: Sequence[str], thresholds: dict[str, float]
) -> dict[str, Any]:
    """Per-tag figures of one split, with the macro figures the issue's targets name."""
    figures = tag_figures(clips.truth, probabilities, tags, thresholds)
    return {
        "tags": figures,
        "macro_roc_auc": macro(figures, tags, "roc_auc"),
        "drum_and_bass_macro_roc_auc": macro(figures, DRUM_AND_BASS, "roc_auc"),
        "macro_f1": macro(figures, tags, "f1"),
        "snare_vs_clap_balanced_accuracy": snare_vs_clap(
            clips.truth, probabilities, list(tags), thresholds
        ),
    }


def corpus_settings(corpus: Path) -> dict[str, Any]:
    """The corpus's recorded settings (`corpus.json`), or a note that it has none."""
    path = corpus / "corpus.json"
    if not path.is_file():
        return {"folder": corpus.name, "settings": "not recorded (no corpus.json)"}
    return dict(json.loads(path.read_text(encoding="utf-8")))


def write_report(weights: TrapWeights, folder: Path) -> Path:
    """`trap-<hash>.json` beside the weights: the recipe and figures, readable without torch."""
    path = folder / f"trap-{weights.version}.json"
    body = {
        "version": weights.version,
        "tags": weights.tags,
        "thresholds": weights.thresholds,
        "mel": weights.mel.as_dict(),
        "window_seconds": weights.window_seconds,
        "recipe": weights.recipe,
        "report": weights.report,
    }
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return path
