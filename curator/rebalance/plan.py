"""Rebalance: choose a named selection of segment copies whose tags are evenly represented.

The methods live in curator.rebalance.methods, the metrics in curator.rebalance.metrics and
the train/validation split in curator.rebalance.split; this module reads the catalogue,
checks what the curator asked for, runs them and writes the selection with its report.
"""

from __future__ import annotations

import math
import re
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curator.catalogue.metadata import TAG_FACETS
from curator.duplicates.units import Folded, Units, read_units
from curator.errors import CuratorError
from curator.music import VALUE_FACETS
from curator.project import Project
from curator.rebalance.methods import (
    METHODS,
    TARGET_KINDS,
    Budget,
    TagMatrix,
    TagTargets,
    budgeted_repeats,
    random_repeats,
    repeat_factor_repeats,
    tag_targets,
)
from curator.rebalance.metrics import facet_metrics
from curator.rebalance.split import split_by_track
from curator.storage.rebalance import RebalancePool, rebalance_pool
from curator.storage.selections import (
    SelectionItem,
    UnknownSelection,
    save_selection,
    selection,
)

__all__ = [
    "METHODS",
    "TARGET_KINDS",
    "Budget",
    "RebalanceRequest",
    "Rebalanced",
    "parse_budget",
    "parse_tag_bound",
    "plan",
    "read_targets_file",
    "rebalance",
]

_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(h|m|)\s*$", re.IGNORECASE)


def parse_budget(text: str) -> Budget:
    """A budget as a curator types it: copies ("5000") or audio time ("40h", "90m")."""
    match = _BUDGET.match(str(text))
    if not match:
        raise CuratorError(
            f"budget {text!r}: give a number of segment copies (5000) or hours or minutes "
            "of audio (40h, 2.5h, 90m)"
        )
    number, unit = float(match[1]), match[2].lower()
    if number <= 0:
        raise CuratorError(f"budget {text!r}: must be more than zero")
    if unit:
        return Budget(seconds=number * (3600 if unit == "h" else 60))
    if not number.is_integer():
        raise CuratorError(f"budget {text!r}: copies are whole numbers (or add h or m)")
    return Budget(copies=int(number))


def describe_budget(budget: Budget) -> str:
    if budget.copies is not None:
        return f"{budget.copies} copies"
    return f"{(budget.seconds or 0) / 3600:g} h"


def parse_tag_bound(text: str) -> tuple[str, int]:
    """ "TAG=N" or "FACET:TAG=N" (for a tag two facets share) as (tag, N)."""
    tag, sep, number = str(text).rpartition("=")
    if not sep or not tag.strip():
        raise CuratorError(f"{text!r}: write TAG=N (or FACET:TAG=N), e.g. trap=2000")
    try:
        value = int(number)
    except ValueError:
        raise CuratorError(f"{text!r}: {number!r} is not a whole number of copies") from None
    if value < 0:
        raise CuratorError(f"{text!r}: a number of copies cannot be negative")
    return tag.strip(), value


@dataclass(frozen=True)
class RebalanceRequest:
    """What a curator asks `curator rebalance` for.

    targets: facet -> "uniform", "sqrt" or "caps" (facets not named get `default_target`).
    caps / floors: tag (or "facet:tag") -> copies, for the budgeted method: a cap is never
      exceeded, a floor is aimed at (as far as max_repeats x the tag's segments allows).
    validation: fraction of the selected tracks set aside; seed: makes it all repeatable.
    threshold: repeat-factor sampling's t. None takes the project's [rebalance] settings.
    keep_duplicates: count every member of a duplicate unit (default: one per unit, see
      curator.duplicates.units); the split keeps a unit on one side either way.
    """

    name: str
    budget: Budget
    method: str = "budgeted"
    facets: tuple[str, ...] = TAG_FACETS
    default_target: str = "uniform"
    targets: Mapping[str, str] = field(default_factory=dict)
    caps: Mapping[str, int] = field(default_factory=dict)
    floors: Mapping[str, int] = field(default_factory=dict)
    validation: float | None = None
    seed: int = 0
    max_repeats: int | None = None
    threshold: float | None = None
    keep_duplicates: bool = False


@dataclass
class Rebalanced:
    """A planned selection: its items, the report, and the settings it was made with."""

    name: str
    method: str
    items: list[SelectionItem]
    report: dict[str, Any]
    settings: dict[str, Any]


def read_targets_file(path: Path) -> dict[str, Any]:
    """Targets from TOML: `target` for every facet, and per facet `target`, `cap`, `floor`.

    ```toml
    target = "sqrt"
    [genres]
    target = "uniform"
    cap = { trap = 3000 }
    floor = { "boom bap" = 800 }
    ```
    Returns {"default_target", "targets", "caps", "floors"} for RebalanceRequest.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CuratorError(f"{path}: cannot read targets ({exc})") from exc
    found: dict[str, Any] = {"targets": {}, "caps": {}, "floors": {}}
    for key, value in data.items():
        if key == "target":
            found["default_target"] = _target_kind(path, key, value)
        elif isinstance(value, dict):
            _facet_table(path, key, value, found)
        else:
            raise CuratorError(f"{path}: {key!r} must be `target = ...` or a [facet] table")
    return found


def _facet_table(path: Path, facet: str, table: dict[str, Any], found: dict[str, Any]) -> None:
    for key, value in table.items():
        if key == "target":
            found["targets"][facet] = _target_kind(path, f"{facet}.target", value)
        elif key in ("cap", "floor") and isinstance(value, dict):
            for tag, number in value.items():
                if not isinstance(number, int) or isinstance(number, bool) or number < 0:
                    raise CuratorError(f"{path}: {facet}.{key}.{tag} must be a whole number")
                found[f"{key}s"][f"{facet}:{tag}"] = number
        else:
            raise CuratorError(
                f"{path}: [{facet}] {key!r} is not one of target, cap = {{...}}, floor = {{...}}"
            )


def _target_kind(path: Path, key: str, value: Any) -> str:
    if value not in TARGET_KINDS:
        raise CuratorError(f"{path}: {key} must be one of {', '.join(TARGET_KINDS)}, not {value!r}")
    return str(value)


# -- planning ------------------------------------------------------------------------------------


def rebalance(project: Project, request: RebalanceRequest, replace: bool = False) -> Rebalanced:
    """Plan the selection and store it under its name (an existing one only with `replace`)."""
    if not replace and _exists(project, request.name):
        raise CuratorError(
            f"a selection named {request.name!r} exists; choose another name or replace it "
            "(--replace; in the app, tick Replace)"
        )
    planned = plan(project, request)
    save_selection(
        project.catalog,
        planned.name,
        planned.method,
        planned.items,
        settings=planned.settings,
        report=planned.report,
    )
    return planned


def _exists(project: Project, name: str) -> bool:
    try:
        selection(project.catalog, name)
    except UnknownSelection:
        return False
    return True


def plan(project: Project, request: RebalanceRequest) -> Rebalanced:
    """Choose the copies and the split and build the report, without storing anything."""
    started = time.perf_counter()
    request = _with_defaults(project, request)
    _check(project, request)
    units = read_units(project.catalog)
    pool, folded = _fold_duplicates(
        rebalance_pool(project.catalog, request.facets), units, request.keep_duplicates
    )
    matrix, segment_ids = _tag_matrix(pool, request.facets)
    if matrix.segments == 0:
        raise CuratorError("no usable segments to choose from: ingest (and tag) audio first")
    rng = np.random.default_rng(request.seed)
    targets = _targets(project, request, matrix)
    repeats, weights = _choose(matrix, request, targets, rng)
    joined = _joined_tracks(pool, units)
    validation = split_by_track(matrix, repeats, request.validation or 0.0, rng, joined)
    report = build_report(project, request, matrix, repeats, validation, targets)
    report["duplicates"] = _duplicates_report(folded, pool, joined, request)
    report["notes"] += _duplicate_notes(report["duplicates"])
    report["seconds"] = round(time.perf_counter() - started, 3)
    items = [
        SelectionItem(
            str(segment_ids[i]),
            int(repeats[i]),
            float(weights[i]),
            "validation" if validation[i] else "train",
        )
        for i in np.flatnonzero(repeats > 0)
    ]
    return Rebalanced(request.name, request.method, items, report, _settings(request))


# -- duplicates ---------------------------------------------------------------------------------


def _fold_duplicates(pool: RebalancePool, units: Units, keep: bool) -> tuple[RebalancePool, Folded]:
    """The pool with one segment per duplicate unit (all of them with `keep`)."""
    ids = pool.segment_ids.tolist()
    if keep or not units:
        return pool, Folded(ids)
    folded = units.fold(ids)
    if not folded.left_out:
        return pool, folded
    kept = np.array([i not in folded.left_out for i in ids], dtype=bool)
    # Labels point at pool rows: renumber them to the rows that remain.
    rows = np.cumsum(kept) - 1
    labels = kept[pool.label_rows]
    subset = RebalancePool(
        pool.segment_ids[kept],
        pool.track_ids[kept],
        pool.durations[kept],
        rows[pool.label_rows[labels]],
        pool.label_facets[labels],
        pool.label_tags[labels],
    )
    return subset, folded


def _joined_tracks(pool: RebalancePool, units: Units) -> np.ndarray | None:
    """Per pool segment, a code shared by every track linked to its own through a duplicate
    unit (None when the catalogue has no duplicates: the split then goes by track)."""
    if not units:
        return None
    tracks = pool.track_ids.astype(str)
    joined = units.joined_tracks(set(tracks.tolist()))
    _, codes = np.unique(np.array([joined[t] for t in tracks], dtype=object), return_inverse=True)
    return codes.ravel().astype(np.int64)


def _duplicates_report(
    folded: Folded, pool: RebalancePool, joined: np.ndarray | None, request: RebalanceRequest
) -> dict[str, Any]:
    tracks = np.unique(pool.track_ids.astype(str)).size
    return {
        "counted_once": not request.keep_duplicates,
        "folded": len(folded.left_out),
        "units": folded.units,
        "joined_tracks": 0 if joined is None else int(tracks - np.unique(joined).size),
    }


def _duplicate_notes(found: Mapping[str, Any]) -> list[str]:
    notes = []
    if found["folded"]:
        notes.append(
            f"{found['folded']} duplicate segment(s) left out of the pool: each of "
            f"{found['units']} duplicate unit(s) counts once (`curator duplicates` lists "
            "them; --keep-duplicates counts every member)"
        )
    if found["joined_tracks"]:
        notes.append(
            f"{found['joined_tracks']} track(s) split together with a track they share "
            "duplicates with, so no duplicate unit is on both sides"
        )
    return notes


def _with_defaults(project: Project, request: RebalanceRequest) -> RebalanceRequest:
    defaults = project.settings.rebalance
    return RebalanceRequest(
        **{
            **asdict(request),
            "budget": request.budget,
            "facets": tuple(dict.fromkeys(request.facets)),
            "validation": defaults.validation if request.validation is None else request.validation,
            "max_repeats": request.max_repeats or defaults.max_repeats,
            "threshold": request.threshold or defaults.repeat_factor_threshold,
        }
    )


def _check(project: Project, request: RebalanceRequest) -> None:
    if not request.name.strip():
        raise CuratorError("a selection needs a name (--name)")
    if request.method not in METHODS:
        raise CuratorError(f"method must be one of {', '.join(METHODS)}, not {request.method!r}")
    known = (*project.vocabulary().facet_names, *VALUE_FACETS)
    for facet in (*request.facets, *request.targets):
        if facet not in known:
            raise CuratorError(f"unknown facet {facet!r} (known: {', '.join(known)})")
    for kind in (request.default_target, *request.targets.values()):
        if kind not in TARGET_KINDS:
            raise CuratorError(f"target must be one of {', '.join(TARGET_KINDS)}, not {kind!r}")
    if not 0 <= (request.validation or 0.0) < 1:
        raise CuratorError(
            f"validation must be a fraction from 0 to below 1, not {request.validation}"
        )
    if (request.max_repeats or 0) < 1:
        raise CuratorError(f"max repeats must be at least 1, not {request.max_repeats}")


def _tag_matrix(pool: RebalancePool, facets: Sequence[str]) -> tuple[TagMatrix, np.ndarray]:
    """The pool as a TagMatrix; columns ordered by facet (as asked), then tag name."""
    pairs = sorted(
        set(zip(pool.label_facets.tolist(), pool.label_tags.tolist(), strict=True)),
        key=lambda p: (facets.index(p[0]), p[1]),
    )
    column = {pair: i for i, pair in enumerate(pairs)}
    codes = np.array(
        [column[p] for p in zip(pool.label_facets.tolist(), pool.label_tags.tolist(), strict=True)],
        dtype=np.int64,
    )
    segments = pool.segment_ids.size
    # Labels arrive ordered by segment: CSR bounds are where each segment's run starts.
    indptr = np.searchsorted(pool.label_rows, np.arange(segments + 1))
    _, tracks = np.unique(pool.track_ids.astype(str), return_inverse=True)
    matrix = TagMatrix(pairs, indptr, codes, tracks.ravel(), pool.durations)
    return matrix, pool.segment_ids


def _known_tags(project: Project, matrix: TagMatrix, facets: Sequence[str]) -> dict[str, set[str]]:
    """Per facet, the tags a curator may name: the vocabulary's and those in use."""
    vocabulary = project.vocabulary()
    known: dict[str, set[str]] = {facet: set() for facet in facets}
    for facet in facets:
        if facet in vocabulary.facet_names:
            known[facet] |= {tag.name for tag in vocabulary.facet(facet).tags}
    for facet, tag in matrix.tags:
        if facet in known:
            known[facet].add(tag)
    return known


def _targets(project: Project, request: RebalanceRequest, matrix: TagMatrix) -> TagTargets:
    known = _known_tags(project, matrix, request.facets)
    caps = _bound_columns(request.caps, known, matrix, "--cap")
    floors = _bound_columns(request.floors, known, matrix, "--floor")
    kinds = {facet: request.targets.get(facet, request.default_target) for facet in request.facets}
    return tag_targets(
        matrix,
        kinds,
        _copies_estimate(request.budget, matrix),
        request.max_repeats or 1,
        caps,
        floors,
    )


def _copies_estimate(budget: Budget, matrix: TagMatrix) -> float:
    if budget.copies is not None:
        return float(budget.copies)
    return (budget.seconds or 0.0) / max(float(matrix.durations.mean()), 1e-9)


def _bound_columns(
    bounds: Mapping[str, int],
    known: dict[str, set[str]],
    matrix: TagMatrix,
    option: str,
) -> dict[int, int]:
    """Caps or floors by tag column; a tag nobody knows is an error that names it."""
    columns = {pair: i for i, pair in enumerate(matrix.tags)}
    found: dict[int, int] = {}
    for spec, value in bounds.items():
        facet = _facet_of(spec, known, option)
        tag = spec.split(":", 1)[1] if spec.startswith(f"{facet}:") else spec
        if (facet, tag) in columns:  # a known tag no segment has: nothing to bound
            found[columns[(facet, tag)]] = value
    return found


def _facet_of(spec: str, known: dict[str, set[str]], option: str) -> str:
    facet, sep, tag = spec.partition(":")
    if sep and facet in known and tag in known[facet]:
        return facet
    holders = [f for f, tags in known.items() if spec in tags]
    if len(holders) == 1:
        return holders[0]
    if len(holders) > 1:
        raise CuratorError(
            f"{option} {spec}: the tag is in {' and '.join(holders)}; write FACET:TAG, "
            f"e.g. {holders[0]}:{spec}"
        )
    raise CuratorError(
        f"{option} {spec}: unknown tag {spec!r} in facets {', '.join(known)} "
        "(see `curator selections` or the Charts page for the tags in use)"
    )


def _choose(
    matrix: TagMatrix, request: RebalanceRequest, targets: TagTargets, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(repeats, weights) per segment from the requested method."""
    most = request.max_repeats or 1
    if request.method == "random":
        return random_repeats(matrix, request.budget, most, rng)
    if request.method == "repeat-factor":
        return repeat_factor_repeats(matrix, request.budget, most, request.threshold or 0.1, rng)
    repeats = budgeted_repeats(matrix, request.budget, targets, most, rng)
    return repeats, repeats.astype(float)


def _settings(request: RebalanceRequest) -> dict[str, Any]:
    values = asdict(request)
    values["budget"] = {k: v for k, v in asdict(request.budget).items() if v is not None}
    values["facets"] = list(request.facets)
    for key in ("targets", "caps", "floors"):
        values[key] = dict(values[key])
    return values


# -- the report ------------------------------------------------------------------------------


def build_report(
    project: Project,
    request: RebalanceRequest,
    matrix: TagMatrix,
    repeats: np.ndarray,
    validation: np.ndarray,
    targets: TagTargets,
) -> dict[str, Any]:
    """Counts per tag before and after, MeanIR and entropy per facet, sizes of each side."""
    before = matrix.counts()
    after = matrix.counts(repeats)
    held_out = matrix.counts(np.where(validation, repeats, 0))
    facets = {
        facet: _facet_report(project, facet, matrix, before, after, held_out, targets, request)
        for facet in request.facets
    }
    report: dict[str, Any] = {
        "method": request.method,
        "budget": describe_budget(request.budget),
        "targets": {f: request.targets.get(f, request.default_target) for f in request.facets},
        "max_repeats": request.max_repeats,
        "seed": request.seed,
        "before": _totals(matrix, np.ones(matrix.segments, dtype=np.int64)),
        "after": _totals(matrix, repeats),
        "split": {
            "train": _totals(matrix, np.where(validation, 0, repeats)),
            "validation": _totals(matrix, np.where(validation, repeats, 0)),
        },
        "facets": facets,
        "summary": _summary(facets),
        "notes": _notes(facets, matrix, repeats, request),
    }
    return report


def _totals(matrix: TagMatrix, repeats: np.ndarray) -> dict[str, Any]:
    chosen = repeats > 0
    return {
        "segments": int(chosen.sum()),
        "copies": int(repeats.sum()),
        "tracks": int(np.unique(matrix.tracks[chosen]).size),
        "hours": round(float(np.dot(repeats, matrix.durations)) / 3600, 3),
    }


def _facet_report(
    project: Project,
    facet: str,
    matrix: TagMatrix,
    before: np.ndarray,
    after: np.ndarray,
    held_out: np.ndarray,
    targets: TagTargets,
    request: RebalanceRequest,
) -> dict[str, Any]:
    columns = matrix.facet_columns(facet)
    budgeted = request.method == "budgeted"
    rows = [
        {
            "tag": matrix.tags[c][1],
            "before": int(before[c]),
            "after": int(after[c]),
            "validation": int(held_out[c]),
            "target": round(float(targets.target[c]), 1) if budgeted else None,
            "cap": None if math.isinf(targets.cap[c]) else int(targets.cap[c]),
            "floor": int(targets.floor[c]) or None,
        }
        for c in columns
    ]
    used = {row["tag"] for row in rows}
    rows += [
        {
            "tag": tag,
            "before": 0,
            "after": 0,
            "validation": 0,
            "target": None,
            "cap": None,
            "floor": None,
        }
        for tag in sorted(_known_tags(project, matrix, [facet])[facet] - used)
    ]
    rows.sort(key=lambda row: (-row["before"], row["tag"]))
    return {
        "tags": rows,
        "before": facet_metrics(before[columns], before[columns]),
        "after": facet_metrics(after[columns], before[columns]),
    }


def _summary(facets: Mapping[str, Any]) -> dict[str, Any]:
    """MeanIR and entropy averaged over the facets that have them, before and after."""
    summary: dict[str, Any] = {}
    for side in ("before", "after"):
        summary[side] = {
            metric: _mean([f[side][metric] for f in facets.values()])
            for metric in ("mean_ir", "entropy")
        }
    return summary


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 4) if present else None


def _notes(
    facets: Mapping[str, Any], matrix: TagMatrix, repeats: np.ndarray, request: RebalanceRequest
) -> list[str]:
    notes = [
        "MeanIR averages max count / count over the tags with a count above zero; tags "
        "with none (before: not in any usable segment; after: lost by the selection) are "
        "left out of it and counted in tags_lost. Entropy is divided by the log of the "
        "number of tags the catalogue has."
    ]
    for facet, data in facets.items():
        missing = [row["tag"] for row in data["tags"] if row["before"] == 0]
        if missing:
            notes.append(f"{facet}: no usable segment has {', '.join(missing)}")
        short = [
            f"{row['tag']} ({row['after']} of {row['floor']})"
            for row in data["tags"]
            if row["floor"] and row["after"] < row["floor"]
        ]
        if short and request.method == "budgeted":
            notes.append(
                f"{facet}: floors not reached (too few segments at the most repeats): "
                + ", ".join(short)
            )
    untagged = int(repeats[np.diff(matrix.indptr) == 0].sum())
    if untagged:
        notes.append(f"{untagged} copies are of segments with no tag in the chosen facets")
    return notes
