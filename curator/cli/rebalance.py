"""`curator rebalance` and `curator selections`: choose, list, show and delete selections."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from curator.catalogue.metadata import TAG_FACETS
from curator.cli.common import (
    console,
    print_json,
    project_dir_option,
    project_option,
    resolve_project,
)
from curator.errors import CuratorError
from curator.project import Project
from curator.rebalance.plan import (
    METHODS,
    TARGET_KINDS,
    RebalanceRequest,
    parse_budget,
    parse_tag_bound,
    read_targets_file,
    rebalance,
)
from curator.rebalance.selections import (
    delete_selection,
    selection,
    selection_leaks,
    selections,
)


def register(cli: click.Group) -> None:
    """Add this module's commands to `cli`."""
    cli.add_command(rebalance_command)
    cli.add_command(selections_group)


@click.command("rebalance")
@project_option
@click.option("--name", required=True, help="Name the selection is stored under.")
@click.option(
    "--budget",
    required=True,
    help="Size of the selection: segment copies (5000; repeats count) or audio (40h, 90m).",
)
@click.option(
    "--method",
    type=click.Choice(METHODS),
    default="budgeted",
    show_default=True,
    help="budgeted: greedy toward the targets; repeat-factor: LVIS sampling; random: baseline.",
)
@click.option(
    "--target",
    "target_specs",
    multiple=True,
    metavar="KIND|FACET=KIND",
    help=f"Target tag distribution ({', '.join(TARGET_KINDS)}), for every facet or one "
    "facet (repeatable; default uniform). caps: today's shares, bounded by --cap/--floor.",
)
@click.option("--cap", "caps", multiple=True, metavar="TAG=N", help="At most N copies with TAG.")
@click.option(
    "--floor", "floors", multiple=True, metavar="TAG=N", help="Aim for at least N copies with TAG."
)
@click.option(
    "--targets",
    "targets_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file of targets, caps and floors per facet (see docs/rebalance.md).",
)
@click.option(
    "--facet",
    "facets",
    multiple=True,
    help=f"Facet to balance (repeatable; default {', '.join(TAG_FACETS)}).",
)
@click.option(
    "--validation",
    type=float,
    help="Fraction of tracks set aside for validation ([rebalance] validation, 0.1).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same selection.")
@click.option(
    "--max-repeats",
    type=click.IntRange(min=1),
    help="Most copies of one segment ([rebalance] max_repeats, 4).",
)
@click.option(
    "--threshold",
    type=float,
    help="Repeat-factor sampling's t ([rebalance] repeat_factor_threshold).",
)
@click.option(
    "--keep-duplicates",
    is_flag=True,
    help="Count every member of a duplicate unit (default: one per unit; see "
    "`curator duplicates`). The split keeps a unit on one side either way.",
)
@click.option("--replace", is_flag=True, help="Overwrite a selection of the same name.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def rebalance_command(
    project: Project,
    name: str,
    budget: str,
    method: str,
    target_specs: tuple[str, ...],
    caps: tuple[str, ...],
    floors: tuple[str, ...],
    targets_file: Path | None,
    facets: tuple[str, ...],
    validation: float | None,
    seed: int,
    max_repeats: int | None,
    threshold: float | None,
    keep_duplicates: bool,
    replace: bool,
    as_json: bool,
) -> None:
    """Choose a named selection of segment copies that evens out tag frequencies.

    Counts the effective labels (a person's over a model's) of usable segments, picks
    copies within the budget (a segment may repeat up to --max-repeats times, so rare
    tags are upsampled), splits the tracks into train and validation (stratified over
    tags, both segments of a track on one side) and stores the selection with its
    report: counts per tag before and after, MeanIR and entropy per facet, hours.

    Duplicates (`curator duplicates`) count once: each unit of linked segments keeps one
    member in the pool (the one a curator kept, else the best-labelled), and tracks linked
    through a unit go to the same side of the split.
    """
    spec = read_targets_file(targets_file) if targets_file else {}
    default, per_facet = _target_options(target_specs, spec)
    request = RebalanceRequest(
        name=name,
        budget=parse_budget(budget),
        method=method,
        facets=facets or TAG_FACETS,
        default_target=default,
        targets=per_facet,
        caps={**spec.get("caps", {}), **_bounds(caps)},
        floors={**spec.get("floors", {}), **_bounds(floors)},
        validation=validation,
        seed=seed,
        max_repeats=max_repeats,
        threshold=threshold,
        keep_duplicates=keep_duplicates,
    )
    planned = rebalance(project, request, replace=replace)
    if as_json:
        print_json({"name": planned.name, **planned.report})
    else:
        print_report(planned.name, planned.report)


def _target_options(
    specs: tuple[str, ...], from_file: dict[str, Any]
) -> tuple[str, dict[str, str]]:
    default = from_file.get("default_target", "uniform")
    per_facet = dict(from_file.get("targets", {}))
    for spec in specs:
        facet, sep, kind = spec.rpartition("=")
        if sep:
            per_facet[facet] = kind
        else:
            default = kind
    return default, per_facet


def _bounds(specs: tuple[str, ...]) -> dict[str, int]:
    return dict(parse_tag_bound(spec) for spec in specs)


def print_report(name: str, report: dict[str, Any]) -> None:
    """The report as a curator reads it: sizes, then per facet its metrics and tags."""
    after, split = report["after"], report["split"]
    click.echo(
        f"Selection {name!r} ({report['method']}, budget {report['budget']}): "
        f"{after['copies']} copies of {after['segments']} segments from {after['tracks']} "
        f"tracks, {after['hours']:.2f} h; train {split['train']['copies']} copies / "
        f"{split['train']['tracks']} tracks, validation {split['validation']['copies']} "
        f"copies / {split['validation']['tracks']} tracks"
    )
    for facet, data in report["facets"].items():
        click.echo(
            f"\n{facet} (target {report['targets'][facet]}): MeanIR "
            f"{_number(data['before']['mean_ir'])} -> {_number(data['after']['mean_ir'])}, "
            f"entropy {_number(data['before']['entropy'])} -> "
            f"{_number(data['after']['entropy'])}, tags lost {data['after']['tags_lost']}"
        )
        for row in data["tags"]:
            click.echo(f"  {row['tag']:<28} {row['before']:>7} -> {row['after']:>7}")
    for note in report["notes"][1:]:
        console.print(f"[yellow]note[/] {note}")


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@click.group("selections", invoke_without_command=True)
@project_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.pass_context
def selections_group(ctx: click.Context, project_dir: Path | None, as_json: bool) -> None:
    """List the stored selections: name, method, segments, copies, hours, when made.

    `curator selections show NAME` prints one selection's report; `delete NAME` removes it;
    `check [NAME]` reports duplicates split across train and validation.
    """
    if ctx.invoked_subcommand is not None:
        return  # the subcommand opens the project it is given
    project = resolve_project(project_dir)
    rows = [_summary_row(row) for row in selections(project)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print(
            "No selections yet: make one with `curator rebalance --name NAME --budget N`."
        )
    for row in rows:
        click.echo(
            f"{row['name']:<24} {row['method']:<14} {row['segments']:>7} segments "
            f"{row['copies']:>7} copies {row['hours']:>8.2f} h  {row['created_at']}"
        )


def _summary_row(row: dict[str, Any]) -> dict[str, Any]:
    after = row["report"].get("after", {})
    return {
        "name": row["name"],
        "method": row["method"],
        "segments": int(row["segments"]),
        "copies": int(row["copies"]),
        "hours": float(after.get("hours", 0.0)),
        "mean_ir": row["report"].get("summary", {}).get("after", {}).get("mean_ir"),
        "created_at": str(row["created_at"]),
    }


@selections_group.command("show")
@click.argument("name")
@project_option
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
def show(project: Project, name: str, as_json: bool) -> None:
    """Print one selection's report: counts per tag before/after, MeanIR, entropy, split."""
    row = selection(project, name)
    if as_json:
        print_json({**row, "created_at": str(row["created_at"])})
    elif row["report"].get("facets"):
        print_report(name, row["report"])
    else:
        raise CuratorError(f"selection {name!r} has no report (it was not made by rebalance)")


@selections_group.command("delete")
@click.argument("name")
@project_option
def delete(project: Project, name: str) -> None:
    """Remove a selection and its items from the catalogue (the audio is not touched)."""
    delete_selection(project, name)
    console.print(f"Deleted selection {name!r}")


@selections_group.command("check")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@project_option
@click.option("--json", "as_json", is_flag=True, help="Print the leaks as JSON.")
def check(project: Project, names: tuple[str, ...], as_json: bool) -> None:
    """Report duplicate units split across train and validation (leaks), one line each.

    Checks the named selections, or every one, against the duplicate groups found now
    (`curator duplicates`): a selection made before they were found, or with a unit on
    both sides, lets validation hear what training learned. Exits with status 1 when a
    leak is found; rebalance the selection again (--replace) to mend it.
    """
    found = selection_leaks(project, names)
    if as_json:
        print_json({name: [asdict(leak) for leak in leaks] for name, leaks in found.items()})
    else:
        _print_leaks(found)
    if any(found.values()):
        raise SystemExit(1)


def _print_leaks(found: dict[str, list[Any]]) -> None:
    if not found:
        console.print("No selections yet: nothing to check.")
    for name, leaks in found.items():
        if not leaks:
            click.echo(f"{name}: no duplicate unit on both sides")
        for leak in leaks:
            click.echo(f"{name}: leak: {leak.line()}")
