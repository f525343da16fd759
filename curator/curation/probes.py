"""Per-tag probes over cached audio embeddings: the data, cross-validation, calibration, storage.

Two users: the suspicion queue (curator.curation.suspects) trains probes on the labels
themselves and reads their out-of-fold probabilities; the learned tagger (`curator learn`,
the `learned` plugin) trains calibrated probes on human-verified labels and keeps them under
PROJECT/models/learned/<version>/, where <version> is the hash of its training data.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curator.errors import CuratorError
from curator.files import write_json_atomically
from curator.music import VALUE_FACETS
from curator.project import Project
from curator.storage.suspects import embedding_models, label_cells, segment_tracks

Progress = Callable[[int, int], None]
Pair = tuple[str, str]
MODELS_DIR = Path("models") / "learned"
CURRENT = "current.json"


@dataclass
class Dataset:
    """Everything probes learn from for one embedding model: one row per segment.

    present: the effective label (a person's, else any model's, else absent).
    human: the person's decision (1, 0, or -1 for none), of any origin (a review, a bulk
      relabel, an import); verified: a person decided this very tag on this segment (the
      one definition of verified, storage.sql.VERIFIED_LABEL); model: any model says present.
    sources: the plugins that say present, "a,b" ("" for none).
    """

    embedding: str
    segment_ids: list[str]
    features: np.ndarray
    groups: np.ndarray
    pairs: list[Pair]
    present: np.ndarray
    human: np.ndarray
    verified: np.ndarray
    model: np.ndarray
    sources: np.ndarray

    def column(self, pair: Pair) -> int:
        return self.pairs.index(pair)


def vocabulary_pairs(
    project: Project, facet: str | None = None, tags: Sequence[str] | None = None
) -> list[Pair]:
    """The (facet, tag) pairs of the vocabulary to probe, optionally one facet or some tags."""
    vocabulary = project.vocabulary()
    if facet is not None and facet not in vocabulary.facet_names:
        raise CuratorError(
            f"no facet {facet!r} in the vocabulary (facets: {', '.join(vocabulary.facet_names)})"
        )
    pairs = [
        (t.facet, t.name)
        for t in vocabulary.tags()
        if (facet is None or t.facet == facet) and t.facet not in VALUE_FACETS  # never probed
    ]
    if tags:
        unknown = sorted(set(tags) - {tag for _, tag in pairs})
        if unknown:
            raise CuratorError(f"no tag {unknown[0]!r} in the vocabulary{_in_facet(facet)}")
        pairs = [p for p in pairs if p[1] in set(tags)]
    return pairs


def _in_facet(facet: str | None) -> str:
    return f" facet {facet!r}" if facet else ""


def choose_embedding(project: Project, requested: str | None) -> str:
    """`requested`, checked; else the embedding model cached for the most segments."""
    known = embedding_models(project.catalog)
    names = [k["model"] for k in known]
    if requested:
        if requested not in names:
            raise CuratorError(
                f"no cached embeddings of {requested!r} (cached: {', '.join(names) or 'none'}); "
                "run the tagger that makes them first"
            )
        return requested
    if not known:
        raise CuratorError(
            "no cached audio embeddings yet: run a tagger that keeps them, e.g. "
            '`curator tag --plugin musicnn` with [plugins.musicnn] embedding = "penultimate"'
        )
    return str(names[0])


def load_dataset(project: Project, embedding: str, pairs: Sequence[Pair]) -> Dataset:
    """The cached embeddings of `embedding` and every label of `pairs`, aligned by segment."""
    ids, features = project.catalog.embeddings(embedding)
    usable = {r["id"] for r in project.catalog.segment_rows()}
    keep = [i for i, s in enumerate(ids) if s in usable]
    ids, features = [ids[i] for i in keep], features[keep]
    tracks = segment_tracks(project.catalog)
    shape = (len(ids), len(pairs))
    data = Dataset(
        embedding,
        ids,
        features,
        np.array([tracks[s] for s in ids], dtype=object),
        list(pairs),
        np.zeros(shape, dtype=bool),
        np.full(shape, -1, dtype=np.int8),
        np.zeros(shape, dtype=bool),
        np.zeros(shape, dtype=bool),
        np.full(shape, "", dtype=object),
    )
    _fill_labels(project, data)
    return data


def _fill_labels(project: Project, data: Dataset) -> None:
    cells = label_cells(project.catalog, sorted({f for f, _ in data.pairs}))
    rows = {s: i for i, s in enumerate(data.segment_ids)}
    columns = {p: j for j, p in enumerate(data.pairs)}
    for k in range(len(cells.segment_id)):
        i = rows.get(cells.segment_id[k])
        j = columns.get((cells.facet[k], cells.tag[k]))
        if i is None or j is None:
            continue
        data.human[i, j], data.verified[i, j], data.model[i, j], data.sources[i, j] = (
            cells.human[k],
            cells.verified[k],
            cells.model[k],
            cells.sources[k],
        )
    data.present[:] = np.where(data.human >= 0, data.human == 1, data.model)


# -- probes and folds ------------------------------------------------------------------------


def fold_of_each_row(groups: np.ndarray, folds: int) -> np.ndarray:
    """A fold number per row; a track's segments share one, so no fold learns its sibling."""
    from sklearn.model_selection import GroupKFold

    count = min(folds, len(set(groups)))
    if count < 2:
        raise CuratorError(f"cross-validation needs segments of at least 2 tracks, got {count}")
    fold = np.zeros(len(groups), dtype=int)
    for number, (_, test) in enumerate(GroupKFold(count).split(groups, groups=groups)):
        fold[test] = number
    return fold


def probe(regularization: float) -> Any:
    """A linear probe: standardised features, balanced logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(),
        LogisticRegression(C=regularization, class_weight="balanced", max_iter=2000),
    )


def out_of_fold(
    features: np.ndarray,
    labels: np.ndarray,
    known: np.ndarray,
    fold: np.ndarray,
    make: Callable[[np.ndarray, np.ndarray, np.ndarray], Any],
    progress: Progress | None = None,
) -> np.ndarray:
    """P(present) for every row, each from probes that never saw the row's fold.

    labels and known are (rows, tags); only known cells train. `make(X, y, rows)` returns a
    fitted estimator. A fold whose training cells hold one class predicts that class's rate.
    """
    result = np.full(labels.shape, np.nan)
    for j in range(labels.shape[1]):
        for f in np.unique(fold):
            train = (fold != f) & known[:, j]
            y = labels[train, j]
            if y.min(initial=1) == y.max(initial=0):
                result[fold == f, j] = float(y.mean()) if y.size else np.nan
                continue
            fitted = make(features[train], y, np.flatnonzero(train))
            result[fold == f, j] = fitted.predict_proba(features[fold == f])[:, 1]
        if progress:
            progress(j + 1, labels.shape[1])
    return result


def fit_probe(regularization: float) -> Callable[[np.ndarray, np.ndarray, np.ndarray], Any]:
    def make(x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> Any:
        return probe(regularization).fit(x, y)

    return make


def fit_calibrated(
    regularization: float, groups: np.ndarray
) -> Callable[[np.ndarray, np.ndarray, np.ndarray], Any]:
    """Probes whose probabilities are Platt-calibrated on folds of other tracks."""

    def make(x: np.ndarray, y: np.ndarray, rows: np.ndarray) -> Any:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import StratifiedGroupKFold

        count = int(min(3, y.sum(), (~y).sum(), len(set(groups[rows]))))
        if count < 2:
            return probe(regularization).fit(x, y)
        splits = list(StratifiedGroupKFold(count).split(x, y, groups[rows]))
        if any(len(set(y[train])) < 2 for train, _ in splits):
            return probe(regularization).fit(x, y)
        calibrated = CalibratedClassifierCV(probe(regularization), method="sigmoid", cv=splits)
        return calibrated.fit(x, y)

    return make


# -- the learned tagger ------------------------------------------------------------------------


@dataclass(frozen=True)
class LearnOptions:
    """How `curator learn` trains.

    labels_wanted: verified positives and negatives per tag a curator should aim for.
    min_labels: fewer verified positives or negatives than this and a tag is not trained.
    include_model_labels: also train on model labels far from their tagger's threshold
      (those cells are counted apart in the report).
    prior: where the embedding holds its source tagger's probability for a tag
      (`Tagger.score_columns`), start that tag's probe from it (curator.curation.prior).
    """

    embedding: str | None = None
    facet: str | None = None
    tags: tuple[str, ...] = ()
    labels_wanted: int = 20
    min_labels: int = 5
    folds: int = 5
    regularization: float = 0.1
    threshold: float = 0.5
    include_model_labels: bool = False
    prior: bool = True


@dataclass
class TagReport:
    """Cross-validated quality of one tag's probe and how many labels it still needs."""

    facet: str
    tag: str
    positives: int
    negatives: int
    from_models: int = 0
    trained: bool = False
    precision: float | None = None
    recall: float | None = None
    needed: int = 0
    prior: str | None = None  # the tagger whose probability the probe starts from


@dataclass
class LearnedModel:
    """A trained learned tagger: calibrated probes per tag and how they were made."""

    version: str
    embedding: str
    source_plugin: str | None
    threshold: float
    pairs: list[Pair]
    probes: list[Any]
    report: list[TagReport] = field(default_factory=list)
    trained_at: float = 0.0

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """P(present) per row and trained tag, columns in `pairs` order."""
        if not self.probes:
            return np.zeros((len(features), 0), dtype=np.float32)
        return np.column_stack([p.predict_proba(features)[:, 1] for p in self.probes]).astype(
            np.float32
        )


def verified(data: Dataset) -> np.ndarray:
    """Cells a person verified: they saw that tag on that segment and accepted or rejected it.

    Nothing else counts: a model's tag left untouched on a saved segment, another tag of
    the same facet, a bulk relabel or `metadata import --human` verify nothing (they still
    decide the effective label). The suspicion queue uses the same cells (docs/review.md).
    """
    return data.verified.copy()


def confident_model_cells(data: Dataset, uncertainty: np.ndarray) -> np.ndarray:
    """Unverified cells a tagger scored far from its threshold (uncertainty NaN: unscored)."""
    return (data.human < 0) & (uncertainty < 0.5)


def learn(
    project: Project,
    options: LearnOptions,
    uncertainty: Callable[[Project, Dataset], np.ndarray] | None = None,
    progress: Progress | None = None,
    registry: Any = None,
) -> LearnedModel:
    """Train, cross-validate and save the learned tagger; returns it (with its report).

    `registry` (None: the installed plugins) is asked for the embedding's source tagger,
    whose own probabilities become the probes' prior unless `options.prior` is off.
    """
    from curator.curation.prior import prior_columns

    embedding = choose_embedding(project, options.embedding)
    data = load_dataset(project, embedding, vocabulary_pairs(project, options.facet, options.tags))
    known = verified(data)
    from_models = np.zeros_like(known)
    if options.include_model_labels and uncertainty is not None:
        from_models = confident_model_cells(data, uncertainty(project, data)) & ~known
    trainable = known | from_models
    report = [_tag_report(data, j, known, from_models, options) for j in range(len(data.pairs))]
    chosen = [j for j, r in enumerate(report) if r.trained]
    if not chosen:
        raise NotEnoughLabels(_not_enough(report, options), not options.include_model_labels)
    prior = prior_columns(project, embedding, registry) if options.prior else {}
    source = embedding_source(project, embedding)
    for j in chosen:
        report[j].prior = source if data.pairs[j] in prior else None
    fold = fold_of_each_row(data.groups, options.folds)
    makers = [_maker(options, data, prior.get(data.pairs[j])) for j in chosen]
    for k, j in enumerate(chosen):
        oof = out_of_fold(
            data.features,
            data.present[:, [j]],
            trainable[:, [j]],
            fold,
            makers[k],
            _half(progress, k, len(chosen)),
        )
        _cv_figures(report[j], oof[:, 0], data.present[:, j], known[:, j], options.threshold)
    probes = []
    for k, j in enumerate(chosen):
        rows = np.flatnonzero(trainable[:, j])
        probes.append(makers[k](data.features[rows], data.present[rows, j], rows))
        if progress:
            progress(len(chosen) + k + 1, 2 * len(chosen))
    used = {data.pairs[j]: prior[data.pairs[j]] for j in chosen if data.pairs[j] in prior}
    model = LearnedModel(
        training_hash(data, trainable, chosen, options, used),
        embedding,
        source,
        options.threshold,
        [data.pairs[j] for j in chosen],
        probes,
        report,
        time.time(),
    )
    save_model(project, model)
    return model


def _maker(
    options: LearnOptions, data: Dataset, prior_column: int | None
) -> Callable[[np.ndarray, np.ndarray, np.ndarray], Any]:
    """A tag's probe: from its tagger's probability when the embedding holds it, else as
    a calibrated probe of the embedding alone."""
    from curator.curation.prior import fit_with_prior

    if prior_column is None:
        return fit_calibrated(options.regularization, data.groups)
    return fit_with_prior(prior_column, data.groups)


def _half(progress: Progress | None, done: int, count: int) -> Progress | None:
    if progress is None:
        return None
    return lambda k, _: progress(done + k, 2 * count)


def _tag_report(
    data: Dataset, j: int, known: np.ndarray, from_models: np.ndarray, options: LearnOptions
) -> TagReport:
    facet, tag = data.pairs[j]
    cells = known[:, j] | from_models[:, j]
    positives = int((cells & data.present[:, j]).sum())
    negatives = int((cells & ~data.present[:, j]).sum())
    human_pos = int((known[:, j] & data.present[:, j]).sum())
    human_neg = int((known[:, j] & ~data.present[:, j]).sum())
    needed = max(0, options.labels_wanted - human_pos) + max(0, options.labels_wanted - human_neg)
    trained = min(positives, negatives) >= options.min_labels
    return TagReport(
        facet, tag, positives, negatives, int(from_models[:, j].sum()), trained, None, None, needed
    )


def _cv_figures(
    report: TagReport, probability: np.ndarray, present: np.ndarray, known: np.ndarray, cut: float
) -> None:
    """Precision and recall at the label threshold, on human-verified cells only."""
    said = probability[known] >= cut
    truth = present[known]
    report.precision = float((said & truth).sum() / said.sum()) if said.any() else None
    report.recall = float((said & truth).sum() / truth.sum()) if truth.any() else None


class NotEnoughLabels(CuratorError):
    """No tag has enough verified labels to learn from.

    `model_labels_would_help`: the run left out confident model labels, which each front end
    offers in its own words (the CLI's flag, the page's checkbox).
    """

    def __init__(self, message: str, model_labels_would_help: bool) -> None:
        super().__init__(message)
        self.model_labels_would_help = model_labels_would_help


def _not_enough(report: list[TagReport], options: LearnOptions) -> str:
    best = max(report, key=lambda r: min(r.positives, r.negatives), default=None)
    detail = (
        f"; the best, {best.facet}/{best.tag}, has {best.positives} positive and "
        f"{best.negatives} negative"
        if best
        else ""
    )
    return (
        f"no tag has {options.min_labels} verified positive and {options.min_labels} verified "
        f"negative labels yet{detail}. Review segments in the app"
    )


def training_hash(
    data: Dataset,
    trainable: np.ndarray,
    chosen: list[int],
    options: LearnOptions,
    prior: dict[Pair, int] | None = None,
) -> str:
    """The version: a hash of what the probes learn from (labels, embeddings, settings, and
    the prior's columns when probes start from one)."""
    digest = hashlib.sha256()
    settings: list[Any] = [
        data.embedding,
        options.regularization,
        options.threshold,
        options.min_labels,
    ]
    if prior:  # only then, so versions trained without a prior keep their hash
        settings.append(sorted([*pair, column] for pair, column in prior.items()))
    digest.update(json.dumps(settings).encode())
    for j in chosen:
        rows = np.flatnonzero(trainable[:, j])
        digest.update(json.dumps(data.pairs[j]).encode())
        digest.update("\n".join(data.segment_ids[i] for i in rows).encode())
        digest.update(np.packbits(data.present[rows, j]).tobytes())
        digest.update(np.ascontiguousarray(data.features[rows], dtype=np.float32).tobytes())
    return digest.hexdigest()[:12]


def embedding_source(project: Project, embedding: str) -> str | None:
    """The plugin whose runs cache `embedding` (the one to run on new audio)."""
    from curator.storage.suspects import embedding_plugin

    return embedding_plugin(project.catalog, embedding)


# -- keeping it under the project ----------------------------------------------------------------


def models_folder(project: Project) -> Path:
    return project.root / MODELS_DIR


def save_model(project: Project, model: LearnedModel) -> Path:
    """Write the probes and report under models/learned/<version>/ and make it current."""
    import joblib

    folder = models_folder(project) / model.version
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / "model.joblib")
    write_json_atomically(folder / "report.json", report_dict(model))
    write_json_atomically(models_folder(project) / CURRENT, {"version": model.version})
    return folder


def report_dict(model: LearnedModel) -> dict[str, Any]:
    """What `curator learn --json` prints and report.json holds."""
    return {
        "version": model.version,
        "embedding": model.embedding,
        "source_plugin": model.source_plugin,
        "threshold": model.threshold,
        "trained_at": model.trained_at,
        "tags": [asdict(r) for r in model.report],
    }


def current_version(project: Project) -> str | None:
    path = models_folder(project) / CURRENT
    if not path.is_file():
        return None
    return str(json.loads(path.read_text(encoding="utf-8"))["version"])


def load_model(project_root: Path, version: str | None = None) -> LearnedModel:
    """The learned tagger saved under the project (the current one unless `version`)."""
    import joblib

    folder = project_root / MODELS_DIR
    if version is None:
        path = folder / CURRENT
        if not path.is_file():
            raise CuratorError(
                f"no learned tagger in {folder}: train one with `curator learn` first"
            )
        version = str(json.loads(path.read_text(encoding="utf-8"))["version"])
    file = folder / version / "model.joblib"
    if not file.is_file():
        raise CuratorError(f"learned tagger {version} is missing its probes ({file})")
    model = joblib.load(file)
    if not isinstance(model, LearnedModel):
        raise CuratorError(f"{file} does not hold a learned tagger")
    return model


# -- active learning ---------------------------------------------------------------------------


def informative_ranking(
    project: Project, facet: str | None = None, tag: str | None = None
) -> dict[str, float]:
    """Segment -> how much a person's label would teach the learned tagger (1 best).

    Uncertainty sampling: 1 - 2|p - 0.5| of the probe's probability, over tags the segment
    has no human label for (the most uncertain such tag counts), for `facet`/`tag` if given.
    """
    model = load_model(project.root)
    columns = [
        k
        for k, (f, t) in enumerate(model.pairs)
        if (facet is None or f == facet) and (tag is None or t == tag)
    ]
    if not columns:
        return {}
    data = load_dataset(project, model.embedding, [model.pairs[k] for k in columns])
    probability = model.probabilities(data.features)[:, columns]
    uncertainty = 1 - 2 * np.abs(probability - 0.5)
    uncertainty[data.verified] = -1  # a bulk or imported label is still worth checking
    best = uncertainty.max(axis=1)
    return {s: float(v) for s, v in zip(data.segment_ids, best, strict=True) if v >= 0}


# -- re-tagging with it: the diff first, then the run -------------------------------------------


@dataclass
class TagDiff:
    """What re-tagging with the learned tagger would change for one tag's effective labels."""

    facet: str
    tag: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def learned_diff(project: Project, registry: Any = None) -> tuple[str, list[TagDiff]]:
    """The learned tagger's version and, per tag, the segments that would gain or lose it.

    People's labels win, so cells with a human label never change; other models' labels
    stay, so a tag the learned tagger drops is only removed where no other model gives it.
    """
    from curator.registry import load_registry
    from curator.tagging.runs import model_labels, plugin_context

    registry = registry or load_registry()
    tagger = registry.tagger("learned")
    tagger.setup(plugin_context(project, "learned", registry))
    pairs = tagger.tag_order()
    data = load_dataset(project, tagger.embedding_model or "", pairs)
    new = np.zeros(data.present.shape, dtype=bool)
    found = model_labels(tagger, pairs, np.asarray(tagger.tag_embeddings(data.features)))
    columns = {p: j for j, p in enumerate(pairs)}
    for row, facet, tag in zip(found.rows, found.facets, found.tags, strict=True):
        new[row, columns[(facet, tag)]] = True
    others = np.vectorize(lambda s: bool(set(s.split(",")) - {"", "learned"}), otypes=[bool])(
        data.sources
    )
    human = data.human >= 0
    after = np.where(human, data.human == 1, others | new)
    diffs = []
    for j, (facet, tag) in enumerate(pairs):
        diff = TagDiff(facet, tag)
        diff.added = [
            data.segment_ids[i] for i in np.flatnonzero(after[:, j] & ~data.present[:, j])
        ]
        diff.removed = [
            data.segment_ids[i] for i in np.flatnonzero(~after[:, j] & data.present[:, j])
        ]
        diffs.append(diff)
    return tagger.version, diffs


def apply_learned(project: Project, registry: Any = None) -> Any:
    """Re-tag every cached embedding with the learned tagger (a run like any tagger's)."""
    from curator.tagging.runs import retag_from_cache

    return retag_from_cache(project, "learned", registry)


def current_report(project: Project) -> dict[str, Any] | None:
    """The current learned tagger's report (report.json), or None before `curator learn`."""
    version = current_version(project)
    if version is None:
        return None
    path = models_folder(project) / version / "report.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def embedding_choices(project: Project) -> list[str]:
    """Embedding models with cached embeddings, the most cached first."""
    return [str(k["model"]) for k in embedding_models(project.catalog)]
