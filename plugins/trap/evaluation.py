"""Per-tag figures for a tagger on labelled clips: ROC AUC, average precision, F1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score


def best_f1_thresholds(
    truth: np.ndarray, probabilities: np.ndarray, tags: Sequence[str]
) -> dict[str, float]:
    """Per tag, the probability threshold with the best F1 on these (validation) clips."""
    chosen: dict[str, float] = {}
    candidates = np.linspace(0.05, 0.95, 91)
    for column, tag in enumerate(tags):
        y, p = truth[:, column], probabilities[:, column]
        if y.min() == y.max():
            chosen[tag] = 0.5
            continue
        f1s = [f1_score(y, p >= c, zero_division=0) for c in candidates]
        chosen[tag] = round(float(candidates[int(np.argmax(f1s))]), 2)
    return chosen


def tag_figures(
    truth: np.ndarray,
    scores: np.ndarray,
    tags: Sequence[str],
    thresholds: dict[str, float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per tag: positives, ROC AUC, average precision and (given thresholds) F1.

    A tag whose clips are all positive or all negative has no AUC (None), not a made-up one.
    """
    figures: dict[str, dict[str, Any]] = {}
    for column, tag in enumerate(tags):
        y, s = truth[:, column].astype(int), scores[:, column]
        row: dict[str, Any] = {"positives": int(y.sum()), "clips": len(y)}
        both = 0 < y.sum() < len(y)
        row["roc_auc"] = round(float(roc_auc_score(y, s)), 4) if both else None
        row["average_precision"] = round(float(average_precision_score(y, s)), 4) if both else None
        if thresholds is not None and tag in thresholds:
            row["threshold"] = thresholds[tag]
            row["f1"] = round(float(f1_score(y, s >= thresholds[tag], zero_division=0)), 4)
        figures[tag] = row
    return figures


def macro(figures: dict[str, dict[str, Any]], tags: Sequence[str], key: str) -> float | None:
    """The mean of a figure over `tags`, skipping tags that have none."""
    values = [figures[t][key] for t in tags if t in figures and figures[t].get(key) is not None]
    return round(float(np.mean(values)), 4) if values else None


def snare_vs_clap(
    truth: np.ndarray,
    probabilities: np.ndarray,
    tags: Sequence[str],
    thresholds: dict[str, float],
) -> float | None:
    """Balanced accuracy of telling a snare backbeat from a clap one.

    On clips with exactly one of the two, the call is whichever is further above its own
    threshold (in logits), so a tagger that says "both" or "neither" still has to choose.
    """
    snare, clap = tags.index("snare"), tags.index("clap")
    only_one = truth[:, snare] != truth[:, clap]
    if not only_one.any():
        return None
    margin = _logit(probabilities[:, snare]) - _logit(np.full(1, thresholds["snare"]))
    margin -= _logit(probabilities[:, clap]) - _logit(np.full(1, thresholds["clap"]))
    said_snare = margin > 0
    is_snare = truth[:, snare].astype(bool)
    recalls = [
        float(np.mean(said_snare[only_one & is_snare])) if (only_one & is_snare).any() else None,
        float(np.mean(~said_snare[only_one & ~is_snare])) if (only_one & ~is_snare).any() else None,
    ]
    known = [r for r in recalls if r is not None]
    return round(float(np.mean(known)), 4) if len(known) == 2 else None


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))
