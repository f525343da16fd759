"""`curator suspects` (labels likely wrong) and `curator learn` (the learned tagger)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click
from rich.table import Table

from curator.cli.common import console, print_json, progress_bar, project_option
from curator.curation.probes import (
    LearnOptions,
    NotEnoughLabels,
    apply_learned,
    learn,
    learned_diff,
    report_dict,
)
from curator.curation.suspects import (
    SuspectOptions,
    find_suspects,
    open_suspects,
    tagger_uncertainty,
)
from curator.errors import CuratorError
from curator.project import Project


def register(cli: click.Group) -> None:
    """Add this module's commands to `cli`."""
    cli.add_command(suspects)
    cli.add_command(learn_command)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the queue as JSON.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Print this many of the most suspicious labels.",
)
@click.option("--facet", help="Only tags of this facet (instruments, genres, moods, ...).")
@click.option("--tag", "tags", multiple=True, help="Only this tag (repeat for more).")
@click.option("--embedding", help="Embedding model the probes learn on (default: most cached).")
@click.option(
    "--stored",
    is_flag=True,
    help="Print the queue computed last (what the review app shows); no training.",
)
@project_option
def suspects(
    project: Project,
    as_json: bool,
    limit: int,
    facet: str | None,
    tags: tuple[str, ...],
    embedding: str | None,
    stored: bool,
) -> None:
    """List the labels most likely wrong: segment, facet, tag, current label, score, reason.

    Probes trained on the labels themselves over cached audio embeddings predict each tag
    out of fold; confident learning flags a label the probe confidently contradicts (score
    from 0.5 up), and the score adds the tagger's closeness to its threshold and taggers'
    disagreement. Labels a person set are never listed. The queue is saved for the review
    app's "likely wrong first" order. See docs/suspects.md.
    """
    if not stored:
        options = SuspectOptions(embedding=embedding, facet=facet, tags=tags)
        with progress_bar("Cross-validating probes per tag") as update:
            report = find_suspects(project, options, lambda d, t: update(d, t, ""))
        if not as_json:
            _summary(report)
    rows = open_suspects(project, facet, tags[0] if len(tags) == 1 else None, None)
    rows = [r for r in rows if not tags or r["tag"] in tags][:limit]
    if as_json:
        print_json([_suspect_json(r) for r in rows])
        return
    _suspect_table(rows)


def _summary(report: Any) -> None:
    console.print(
        f"Judged {len(report.judged)} tag(s) over {report.segments} segment(s) with "
        f"{report.embedding} embeddings; {sum(s.flagged for s in report.suspects)} label(s) "
        "flagged by confident learning."
    )
    for facet, tag, why in report.skipped:
        console.print(f"  skipped {facet}/{tag}: {why}")


def _suspect_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "segment_id": row["segment_id"],
        "facet": row["facet"],
        "tag": row["tag"],
        "label": "present" if row["present"] else "absent",
        "score": round(float(row["score"]), 4),
        "reason": row["reason"],
    }


def _suspect_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        console.print("No suspects: every judged label agrees with its probe (or was reviewed).")
        return
    table = Table("segment", "facet", "tag", "label", "score", "reason")
    for row in map(_suspect_json, rows):
        table.add_row(
            row["segment_id"],
            row["facet"],
            row["tag"],
            row["label"],
            f"{row['score']:.2f}",
            row["reason"],
        )
    console.print(table)


@click.command("learn")
@click.option("--embedding", help="Embedding model to train on (default: most cached).")
@click.option("--facet", help="Only tags of this facet.")
@click.option("--tag", "tags", multiple=True, help="Only this tag (repeat for more).")
@click.option(
    "--labels-wanted",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Verified positives and negatives per tag to aim for ('needed' counts to it).",
)
@click.option(
    "--include-model-labels",
    is_flag=True,
    help="Also train on model labels far from their tagger's threshold.",
)
@click.option(
    "--prior/--no-prior",
    default=True,
    show_default=True,
    help="Start each tag's probe from the embedding's own tagger's probability for it, "
    "where the embedding holds one (trap's does): with few corrections the learned tagger "
    "is that tagger, and each correction moves it. --no-prior: the embedding alone.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Calibrated probability from which the learned tagger labels a tag.",
)
@click.option(
    "--diff",
    "show_diff",
    is_flag=True,
    help="Do not train: show what tagging with the current version would change.",
)
@click.option(
    "--apply",
    "apply",
    is_flag=True,
    help="Do not train: show the diff, then tag from cache with the current version.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report (or diff) as JSON.")
@project_option
def learn_command(
    project: Project,
    embedding: str | None,
    facet: str | None,
    tags: tuple[str, ...],
    labels_wanted: int,
    include_model_labels: bool,
    prior: bool,
    threshold: float,
    show_diff: bool,
    apply: bool,
    as_json: bool,
) -> None:
    """Train the learned tagger on human-verified labels and report it per tag.

    One calibrated logistic-regression probe per tag over cached audio embeddings,
    cross-validated with a track's segments kept in one fold; where the embedding holds its
    tagger's own probability for a tag (the trap tagger's does), the probe starts from it
    (see --prior). Prints cross-validated
    precision and recall and how many verified labels each tag still needs. The version is
    the training data's hash; the probes are kept under models/learned/. Tag with it by
    `curator learn --apply` (after `--diff` to see what it would change) or
    `curator tag --plugin learned --from-cache`. See docs/suspects.md.
    """
    if show_diff or apply:
        _diff_and_apply(project, apply, as_json)
        return
    options = LearnOptions(
        embedding=embedding,
        facet=facet,
        tags=tags,
        labels_wanted=labels_wanted,
        include_model_labels=include_model_labels,
        threshold=threshold,
        prior=prior,
    )
    try:
        with progress_bar("Training probes") as update:
            model = learn(project, options, tagger_uncertainty, lambda d, t: update(d, t, ""))
    except NotEnoughLabels as exc:
        hint = ", or pass --include-model-labels" if exc.model_labels_would_help else ""
        raise CuratorError(f"{exc}{hint}") from exc
    report = report_dict(model)
    if as_json:
        print_json(report)
        return
    _learn_table(report)


def _learn_table(report: dict[str, Any]) -> None:
    console.print(
        f"Learned tagger {report['version']} on {report['embedding']} "
        f"(threshold {report['threshold']:.2f}); kept under models/learned/{report['version']}"
    )
    _prior_line(report)
    table = Table("facet", "tag", "verified +", "verified -", "precision", "recall", "needed")
    for row in report["tags"]:
        table.add_row(
            row["facet"],
            row["tag"],
            str(row["positives"]),
            str(row["negatives"]),
            _figure(row["precision"]) if row["trained"] else "not trained",
            _figure(row["recall"]) if row["trained"] else "",
            str(row["needed"]),
        )
    console.print(table)


def _prior_line(report: dict[str, Any]) -> None:
    started = [row["tag"] for row in report["tags"] if row["trained"] and row["prior"]]
    if started:
        source = next(row["prior"] for row in report["tags"] if row["prior"])
        console.print(
            f"{len(started)} probe(s) start from {source}'s own probabilities "
            "(--no-prior: from the embedding alone)"
        )


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _diff_and_apply(project: Project, apply: bool, as_json: bool) -> None:
    version, diffs = learned_diff(project)
    changed = [d for d in diffs if d.added or d.removed]
    if as_json and not apply:
        print_json({"version": version, "tags": [asdict(d) for d in changed]})
        return
    console.print(f"Tagging with learned@{version} would change {len(changed)} tag(s):")
    for d in changed:
        console.print(f"  {d.facet}/{d.tag}: +{len(d.added)} -{len(d.removed)}")
    if apply:
        summary = apply_learned(project)
        console.print(f"Run {summary.run_id}: {summary.done} segment(s) tagged from cache.")
