"""How balanced a facet's tag counts are: MeanIR (Charte et al. 2015) and normalised entropy."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def mean_ir(counts: np.ndarray) -> float | None:
    """Mean imbalance ratio: the mean over tags of max count / the tag's count.

    IRLbl is infinite for a tag with no copies, so only tags with a count above zero are
    averaged (as Charte et al. do over the labels a dataset has); a tag that a selection
    loses is reported apart (`tags_lost`). 1.0 is perfect balance; None when no tag is
    left.
    """
    present = np.asarray(counts, dtype=float)
    present = present[present > 0]
    if present.size == 0:
        return None
    return float(np.mean(present.max() / present))


def normalized_entropy(counts: np.ndarray, tags: int) -> float | None:
    """Shannon entropy of the tag shares divided by log(tags): 1.0 when all are equal.

    `tags` is the number of tags the catalogue has (count > 0 before selection), so a
    selection that loses a tag scores lower. None with fewer than two tags or no copies.
    """
    values = np.asarray(counts, dtype=float)
    if tags < 2 or values.sum() <= 0:
        return None
    shares = values[values > 0] / values.sum()
    return float(-(shares * np.log(shares)).sum() / math.log(tags))


def facet_metrics(counts: np.ndarray, before: np.ndarray) -> dict[str, Any]:
    """MeanIR, entropy and tags kept or lost, for a facet's counts against the catalogue's."""
    known = int((before > 0).sum())
    return {
        "mean_ir": _rounded(mean_ir(counts)),
        "entropy": _rounded(normalized_entropy(counts, known)),
        "tags": int((counts > 0).sum()),
        "tags_lost": int(((before > 0) & (counts <= 0)).sum()),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
