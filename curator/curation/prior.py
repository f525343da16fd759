"""Probes that start from a tagger's own probability: corrections move it, few of them barely.

When the embedding `curator learn` trains on holds the source tagger's probability for a tag
(`Tagger.score_columns`, e.g. the trap tagger's), that tag's probe is a logistic regression
with the tagger's logit as an offset:

    logit p = a * logit(prior) + w . z + b

z is the standardised embedding; w is regularised toward 0, and (a, b) toward (1, 0), so
with no corrections the probe gives the prior back, and corrections pull it away only as far
as the evidence outweighs the penalty. How hard w is held is chosen per tag by
cross-validation over tracks (the strongest penalty whose out-of-fold log-loss is within
one standard error of the lowest): corrections the embedding cannot explain leave the
prior alone. a and
b are a Platt calibration of the prior learned in the same fit; the fit is penalised
maximum likelihood without class weights, so its probabilities stay calibrated with no
separate calibration step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from curator.project import Project

Pair = tuple[str, str]
# Probabilities are clipped before the logit: a tagger sure to float precision still leaves
# corrections something to move.
EPSILON = 1e-4
# Penalties on w tried per tag, weakest first; the penalty on (a - 1, b) is fixed and light:
# two numbers that recalibrate the prior need little data.
PENALTIES = (1.0, 10.0, 100.0, 1000.0)
CALIBRATION_PENALTY = 10.0
INNER_FOLDS = 3


class PriorProbe:
    """A fitted probe over whole embedding rows; the prior is column `column` of each row.

    Plain attributes and numpy arrays only, so joblib keeps it with the learned tagger.
    """

    def __init__(self, column: int, penalty: float = PENALTIES[-1]):
        self.column = column
        self.penalty = penalty
        self.mean = np.zeros(0)
        self.scale = np.ones(0)
        self.weights = np.zeros(0)
        self.intercept = 0.0
        self.prior_slope = 1.0

    def fit(self, features: np.ndarray, labels: np.ndarray) -> PriorProbe:
        """Penalised maximum likelihood by L-BFGS, started at the prior itself."""
        from scipy.optimize import minimize

        x = np.asarray(features, dtype=np.float64)
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.scale = np.where(std > 1e-12, std, 1.0)
        z, offset = self._standardised(x), self._prior_logit(x)
        y = np.asarray(labels, dtype=np.float64)
        start = np.concatenate([np.zeros(z.shape[1] + 1), [1.0]])
        found = minimize(
            _loss_and_gradient,
            start,
            args=(z, offset, y, self.penalty),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 500},
        )
        self.weights, self.intercept, self.prior_slope = (
            found.x[:-2],
            float(found.x[-2]),
            float(found.x[-1]),
        )
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(rows, 2): P(absent), P(present), as scikit-learn's classifiers give them."""
        x = np.asarray(features, dtype=np.float64)
        logit = self._logit(self._standardised(x), self._prior_logit(x))
        present = _sigmoid(logit)
        return np.column_stack([1 - present, present])

    def _logit(self, z: np.ndarray, offset: np.ndarray) -> np.ndarray:
        return self.prior_slope * offset + z @ self.weights + self.intercept

    def _standardised(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.scale

    def _prior_logit(self, x: np.ndarray) -> np.ndarray:
        return prior_logit(x[:, self.column])


def prior_logit(probability: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probability, dtype=np.float64), EPSILON, 1 - EPSILON)
    return np.log(p) - np.log1p(-p)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(0.5 * x))  # exact sigmoid, no overflow for large |x|


def _loss_and_gradient(
    theta: np.ndarray, z: np.ndarray, offset: np.ndarray, y: np.ndarray, penalty: float
) -> tuple[float, np.ndarray]:
    """Summed log-loss + penalty/2 |w|^2 + CALIBRATION_PENALTY/2 (b^2 + (a-1)^2), gradient."""
    w, b, a = theta[:-2], theta[-2], theta[-1]
    logit = a * offset + z @ w + b
    # log(1 + e^x) - y x, written to stay finite for any logit
    loss = float(np.sum(np.logaddexp(0.0, logit) - y * logit))
    loss += 0.5 * (penalty * float(w @ w) + CALIBRATION_PENALTY * (b * b + (a - 1) ** 2))
    residual = _sigmoid(logit) - y
    gradient = np.concatenate(
        [
            z.T @ residual + penalty * w,
            [residual.sum() + CALIBRATION_PENALTY * b],
            [residual @ offset + CALIBRATION_PENALTY * (a - 1)],
        ]
    )
    return loss, gradient


def fit_with_prior(
    column: int, groups: np.ndarray
) -> Callable[[np.ndarray, np.ndarray, np.ndarray], PriorProbe]:
    """A `make(X, y, rows)` for probes.out_of_fold and learn(): a PriorProbe on `column`,
    its penalty chosen by cross-validation over the tracks (`groups`) of the rows."""

    def make(x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> PriorProbe:
        return PriorProbe(column, chosen_penalty(x, y, groups[rows], column)).fit(x, y)

    return make


def chosen_penalty(x: np.ndarray, y: np.ndarray, groups: np.ndarray, column: int) -> float:
    """The strongest penalty in PENALTIES whose out-of-fold log-loss (folds keep tracks
    together) is within one standard error of the lowest: on a few corrections the
    lowest is often luck, and the prior should win it. The strongest with too few tracks."""
    from sklearn.model_selection import GroupKFold

    count = min(INNER_FOLDS, len(set(groups)))
    if count < 2:
        return PENALTIES[-1]
    splits = list(GroupKFold(count).split(x, y, groups))
    losses = [_held_out_losses(x, y, splits, column, penalty) for penalty in PENALTIES]
    totals = [float(loss.sum()) for loss in losses]
    best = int(np.argmin(totals))
    error = float(np.std(losses[best]) * np.sqrt(len(y)))
    return max(
        p for p, total in zip(PENALTIES, totals, strict=True) if total <= totals[best] + error
    )


def _held_out_losses(
    x: np.ndarray, y: np.ndarray, splits: list[Any], column: int, penalty: float
) -> np.ndarray:
    """Each row's log-loss from the probe fitted without its fold."""
    losses = np.zeros(len(y))
    for train, test in splits:
        p = PriorProbe(column, penalty).fit(x[train], y[train]).predict_proba(x[test])[:, 1]
        p = np.clip(p, 1e-12, 1 - 1e-12)
        losses[test] = -np.where(y[test], np.log(p), np.log1p(-p))
    return losses


def prior_columns(project: Project, embedding: str, registry: Any = None) -> dict[Pair, int]:
    """(facet, tag) -> the embedding column holding its source tagger's probability.

    Empty when the plugin that caches `embedding` is not installed, scores no tag in its
    embedding, or is now configured to cache another embedding (other weights: its columns
    would not describe these rows).
    """
    from curator.api import Tagger
    from curator.curation.probes import embedding_source
    from curator.registry import load_registry
    from curator.tagging.runs import plugin_context

    name = embedding_source(project, embedding)
    registry = registry or load_registry()
    if name is None or name not in registry.names("taggers"):
        return {}
    tagger = registry.tagger(name)
    if type(tagger).score_columns is Tagger.score_columns:
        return {}  # it keeps no scores in its embedding: no need to load its model
    tagger.setup(plugin_context(project, name, registry))
    if tagger.embedding_model != embedding:
        return {}
    return dict(tagger.score_columns())
