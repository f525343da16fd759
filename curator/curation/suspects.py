"""The suspicion queue: which current labels are most likely wrong, and why.

For each (segment, tag) of the vocabulary, a probe trained on the labels themselves over the
cached audio embeddings predicts the tag out of fold (a track's segments never help judge
each other). Confident learning (Northcutt et al. 2021, one-vs-rest per tag as cleanlab
does for multi-label data) flags a label when the probe's probability confidently takes the
other side: at least the tag's threshold, the mean probability of the segments labelled
present (for an absent label), or its mirror for a present label. Flagged or not, each cell
gets a score from its self-confidence (the probability the probe gives to its current
label), the tagger's confidence (its score near the threshold) and whether two taggers
disagree on it. A label a person verified (decided that tag on that segment) is never a
suspect; a bulk relabel or an import is, as the learned tagger counts it unverified too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from curator.curation.probes import (
    Dataset,
    Progress,
    choose_embedding,
    fit_probe,
    fold_of_each_row,
    load_dataset,
    out_of_fold,
    vocabulary_pairs,
)
from curator.project import Project
from curator.storage.suspects import SuspectRow, save_suspects, stored_suspects

# How the three signals add up (flagged cells get +0.5, so they always rank first).
WEIGHT_PROBE, WEIGHT_TAGGER, WEIGHT_DISAGREEMENT = 0.7, 0.2, 0.1
# Learned-tagger probabilities are calibrated: their decision point is 0.5.
LEARNED_THRESHOLD = 0.5
STORED_AT_LEAST, STORED_AT_MOST = 1000, 50_000


@dataclass(frozen=True)
class SuspectOptions:
    """What to judge and how.

    embedding: the embedding model the probes learn on (default: the most cached one).
    facet / tags: only these; by default every tag of every facet in the vocabulary.
    min_labels: a tag needs this many segments labelled present and absent to be judged.
    """

    embedding: str | None = None
    facet: str | None = None
    tags: Sequence[str] = ()
    folds: int = 5
    regularization: float = 0.1
    min_labels: int = 5


@dataclass(frozen=True)
class Suspect:
    """One label that may be wrong: its segment, tag, current value, score and why."""

    segment_id: str
    facet: str
    tag: str
    present: bool
    score: float
    probability: float
    flagged: bool
    reason: str


@dataclass
class SuspectReport:
    """The whole judged queue, most suspicious first, and what could not be judged."""

    embedding: str
    judged: list[tuple[str, str]]
    skipped: list[tuple[str, str, str]]  # facet, tag, why
    segments: int
    ranking: list[tuple[str, str, str]] = field(default_factory=list)  # segment, facet, tag
    # The same cells ranked by confident learning alone (flag, then self-confidence), to
    # show what the tagger signals add.
    probe_ranking: list[tuple[str, str, str]] = field(default_factory=list)
    suspects: list[Suspect] = field(default_factory=list)  # the head of the ranking


def find_suspects(
    project: Project,
    options: SuspectOptions,
    progress: Progress | None = None,
    save: bool = True,
) -> SuspectReport:
    """Judge every label of the chosen tags; keep the head of the queue in the catalogue."""
    embedding = choose_embedding(project, options.embedding)
    data = load_dataset(project, embedding, vocabulary_pairs(project, options.facet, options.tags))
    judged, skipped = _judgeable(data, options.min_labels)
    report = SuspectReport(
        embedding, [data.pairs[j] for j in judged], skipped, len(data.segment_ids)
    )
    if judged:
        _judge(project, data, judged, options, report, progress)
    if save:
        save_suspects(project.catalog, report.judged, [_row(s, embedding) for s in report.suspects])
    return report


def _judgeable(data: Dataset, min_labels: int) -> tuple[list[int], list[tuple[str, str, str]]]:
    judged, skipped = [], []
    for j, (facet, tag) in enumerate(data.pairs):
        present = int(data.present[:, j].sum())
        absent = len(data.segment_ids) - present
        if min(present, absent) >= min_labels:
            judged.append(j)
        else:
            skipped.append((facet, tag, f"{present} present, {absent} absent (< {min_labels})"))
    return judged, skipped


def _judge(
    project: Project,
    data: Dataset,
    judged: list[int],
    options: SuspectOptions,
    report: SuspectReport,
    progress: Progress | None,
) -> None:
    labels = data.present[:, judged]
    fold = fold_of_each_row(data.groups, options.folds)
    everything = np.ones_like(labels)
    probability = out_of_fold(
        data.features, labels, everything, fold, fit_probe(options.regularization), progress
    )
    taggers = tagger_signals(project, data, judged)
    signals = ConfidentLearning(probability, labels)
    score = 0.5 * signals.flagged + 0.5 * (
        WEIGHT_PROBE * (1 - signals.self_confidence)
        + WEIGHT_TAGGER * taggers.uncertainty
        + WEIGHT_DISAGREEMENT * taggers.disagreement
    )
    # A label a person verified is never a suspect; a bulk relabel or an import can be.
    score[data.verified[:, judged]] = np.nan
    rows, columns = np.nonzero(~np.isnan(score))
    order = np.lexsort((rows, -score[rows, columns]))
    rows, columns = rows[order], columns[order]
    pairs = [data.pairs[j] for j in judged]
    report.ranking = [
        (data.segment_ids[i], pairs[k][0], pairs[k][1]) for i, k in zip(rows, columns, strict=True)
    ]
    alone = np.lexsort((signals.self_confidence[rows, columns], ~signals.flagged[rows, columns]))
    report.probe_ranking = [report.ranking[n] for n in alone]
    flagged = int(signals.flagged[rows, columns].sum())
    head = min(len(rows), STORED_AT_MOST, max(STORED_AT_LEAST, flagged))
    report.suspects = [
        Suspect(
            data.segment_ids[i],
            pairs[k][0],
            pairs[k][1],
            bool(labels[i, k]),
            float(score[i, k]),
            float(probability[i, k]),
            bool(signals.flagged[i, k]),
            _reason(i, k, pairs[k], labels, signals, taggers, data.embedding),
        )
        for i, k in zip(rows[:head], columns[:head], strict=True)
    ]


class ConfidentLearning:
    """Per-tag confident learning on out-of-fold probabilities (binary, one-vs-rest).

    threshold_present: the mean probability among cells labelled present; threshold_absent:
    the mean of 1 - p among cells labelled absent. A cell is confidently of a class when its
    probability for that class reaches the class's threshold (the larger one when both do);
    it is flagged when that class is not its label.
    """

    def __init__(self, probability: np.ndarray, labels: np.ndarray) -> None:
        p = np.nan_to_num(probability, nan=0.5)
        count_present = np.maximum(labels.sum(axis=0), 1)
        count_absent = np.maximum((~labels).sum(axis=0), 1)
        self.threshold_present = (p * labels).sum(axis=0) / count_present
        self.threshold_absent = ((1 - p) * ~labels).sum(axis=0) / count_absent
        sure_present = p >= self.threshold_present
        sure_absent = (1 - p) >= self.threshold_absent
        says_present = np.where(sure_present & sure_absent, p >= 0.5, sure_present)
        says_absent = np.where(sure_present & sure_absent, p < 0.5, sure_absent)
        self.flagged = np.where(labels, says_absent, says_present)
        self.self_confidence = np.where(labels, p, 1 - p)
        self.probability = p


@dataclass
class TaggerSignals:
    """Per judged cell: how unsure the taggers are (0..1), whether two disagree, and who.

    closest: per cell, the index in `plugins` of the least sure tagger (-1: no tagger).
    """

    plugins: list[str]
    scores: list[np.ndarray]
    thresholds: list[np.ndarray]
    uncertainty: np.ndarray
    closest: np.ndarray
    disagreement: np.ndarray
    sides: dict[tuple[int, int], str]


def tagger_signals(project: Project, data: Dataset, judged: list[int]) -> TaggerSignals:
    """From every tagger's latest scores: closeness to threshold and disagreement per cell."""
    shape = (len(data.segment_ids), len(judged))
    found = latest_scores(project, data, judged)
    signals = TaggerSignals(
        list(found), [], [], np.zeros(shape), np.full(shape, -1), np.zeros(shape), {}
    )
    opinions = []
    for number, (plugin, scores) in enumerate(found.items()):
        known = ~np.isnan(scores)
        thresholds = np.array([_threshold(project, plugin, data.pairs[j]) for j in judged])
        unsure = _closeness(np.abs(scores - thresholds), known)
        closer = unsure > signals.uncertainty
        signals.uncertainty = np.where(closer, unsure, signals.uncertainty)
        signals.closest = np.where(closer, number, signals.closest)
        signals.scores.append(scores)
        signals.thresholds.append(thresholds)
        says = np.vectorize(lambda s, p=plugin: p in s.split(","), otypes=[bool])(
            data.sources[:, judged]
        )
        opinions.append(np.where(known, says.astype(np.int8), -1))
    if len(opinions) > 1:
        _disagreements(np.stack(opinions), signals)
    return signals


def tagger_uncertainty(project: Project, data: Dataset) -> np.ndarray:
    """Per cell of `data`, the least sure tagger's closeness to threshold (NaN: unscored)."""
    signals = tagger_signals(project, data, list(range(len(data.pairs))))
    return np.where(signals.closest >= 0, signals.uncertainty, np.nan)


def _disagreements(opinions: np.ndarray, signals: TaggerSignals) -> None:
    """Cells where one tagger labels the tag and another, scoring it too, does not."""
    yes, no = (opinions == 1).any(axis=0), (opinions == 0).any(axis=0)
    signals.disagreement = (yes & no).astype(float)
    for i, k in zip(*np.nonzero(yes & no), strict=True):
        present = [n for n, v in zip(signals.plugins, opinions[:, i, k], strict=True) if v == 1]
        absent = [n for n, v in zip(signals.plugins, opinions[:, i, k], strict=True) if v == 0]
        signals.sides[(int(i), int(k))] = (
            f"{', '.join(present)} say{'s' if len(present) == 1 else ''} present, "
            f"{', '.join(absent)} absent"
        )


def _closeness(margin: np.ndarray, known: np.ndarray) -> np.ndarray:
    """1 for the score nearest its threshold among a tag's scores, down to 0 for the farthest.

    Ranks make taggers with different score scales (CLAP cosines, probabilities) comparable.
    """
    result = np.zeros(margin.shape)
    for k in range(margin.shape[1]):
        rows = np.flatnonzero(known[:, k])
        if len(rows) > 1:
            ranks = np.argsort(np.argsort(margin[rows, k], kind="stable"), kind="stable")
            result[rows, k] = 1 - ranks / (len(rows) - 1)
        elif len(rows) == 1:
            result[rows, k] = 1.0
    return result


def _threshold(project: Project, plugin: str, pair: tuple[str, str]) -> float:
    if plugin == "learned":
        return LEARNED_THRESHOLD
    facet = project.vocabulary().facet(pair[0])
    tag = facet.tag(pair[1])
    return tag.threshold if tag else facet.threshold


def latest_scores(project: Project, data: Dataset, judged: list[int]) -> dict[str, np.ndarray]:
    """Per tagger plugin, its latest score for each judged cell (NaN where it has none)."""
    catalog = project.catalog
    rows = {s: i for i, s in enumerate(data.segment_ids)}
    wanted = [data.pairs[j] for j in judged]
    found: dict[str, np.ndarray] = {}
    for run in sorted(catalog.runs(), key=lambda r: -r["id"]):
        tags = catalog.run_tags(run["id"]) if run["kind"] == "tag" else []
        columns = [(k, tags.index(p)) for k, p in enumerate(wanted) if p in tags]
        if not columns:
            continue
        ids, matrix = catalog.scores(run["id"])
        into = found.setdefault(run["plugin"], np.full((len(rows), len(wanted)), np.nan))
        at = np.array([rows.get(s, -1) for s in ids], dtype=int)
        matrix, at = matrix[at >= 0], at[at >= 0]
        for k, c in columns:
            empty = np.isnan(into[at, k])  # a newer run of the plugin already filled the rest
            into[at[empty], k] = matrix[empty, c]
    return found


def _reason(
    i: int,
    k: int,
    pair: tuple[str, str],
    labels: np.ndarray,
    signals: ConfidentLearning,
    taggers: TaggerSignals,
    embedding: str,
) -> str:
    tag = pair[1]
    p = signals.probability[i, k]
    if labels[i, k]:
        probe = (
            f"labelled present; a probe on {embedding} gives {p:.2f} "
            f"(segments labelled {tag!r} average {signals.threshold_present[k]:.2f})"
        )
    else:
        probe = (
            f"labelled absent; a probe on {embedding} gives {p:.2f}, like segments "
            f"labelled {tag!r} (average {signals.threshold_present[k]:.2f})"
        )
    parts = [("confidently wrong: " if signals.flagged[i, k] else "") + probe]
    number = taggers.closest[i, k]
    if number >= 0 and taggers.uncertainty[i, k] >= 0.8:
        parts.append(
            f"{taggers.plugins[number]} scores it {taggers.scores[number][i, k]:.2f}, near "
            f"its threshold {taggers.thresholds[number][k]:.2f}"
        )
    if (i, k) in taggers.sides:
        parts.append(taggers.sides[(i, k)])
    return "; ".join(parts)


def _row(suspect: Suspect, embedding: str) -> SuspectRow:
    return SuspectRow(
        suspect.segment_id,
        suspect.facet,
        suspect.tag,
        suspect.present,
        suspect.score,
        suspect.probability,
        suspect.reason,
        embedding,
    )


def open_suspects(
    project: Project, facet: str | None = None, tag: str | None = None, limit: int | None = None
) -> list[dict[str, object]]:
    """The stored queue without the cells a person has labelled since, worst first."""
    return stored_suspects(project.catalog, facet, tag, limit)
