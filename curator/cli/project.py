"""`curator init` and `curator status`."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from curator.cli.common import console, print_json, project_option
from curator.project import Project, init_project
from curator.status import project_status


def register(cli: click.Group) -> None:
    cli.add_command(init)
    cli.add_command(status)


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
def init(directory: Path) -> None:
    """Make DIRECTORY a Curator project: curator.toml (settings) and catalog.duckdb.

    Running it again on a project keeps its settings and applies any new migrations.
    """
    project = init_project(directory)
    console.print(f"Project ready in [bold]{project.root}[/]")
    console.print(f"Settings: {project.root / 'curator.toml'} (every key documented there)")
    console.print(f"Next: [bold]curator ingest FOLDER --project {project.root}[/]")


@click.command()
@project_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(project: Project, as_json: bool) -> None:
    """Show counts by state (files, tracks, segments) and every file that failed, and why."""
    report = project_status(project)
    if as_json:
        print_json(report)
        return
    _print_counts(report)
    _print_runs(report["runs"])
    _print_problems(report["problems"])
    for shard in report["quarantined_shards"]:
        console.print(
            f"[yellow]Shard set aside, not merged[/]: {escape(shard['shard'])}: "
            f"{escape(shard['reason'])}",
            soft_wrap=True,
        )


def _print_counts(report: dict) -> None:
    console.print(f"Project [bold]{report['project']}[/]")
    for group in ("files", "tracks", "segments"):
        counts = report[group] or {"none yet": 0}
        console.print(f"  {group:9s} " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    console.print(f"  usable audio: {report['usable_hours']:.2f} h")


def _print_runs(runs: list[dict]) -> None:
    if not runs:
        return
    table = Table("run", "kind", "plugin", "status", "done", "failed", "started", title="Runs")
    for run in runs:
        plugin = f"{run['plugin']}@{run['plugin_version']}" + (
            " (cache)" if run["from_cache"] else ""
        )
        table.add_row(
            str(run["id"]),
            run["kind"],
            plugin,
            run["status"],
            str(run["done"]),
            str(run["failed"]),
            run["started_at"][:19],
        )
    console.print(table)


def _print_problems(problems: list[dict]) -> None:
    if not problems:
        return
    table = Table("status", "file", "reason", title=f"{len(problems)} file(s) not used")
    for row in problems:
        table.add_row(row["status"], row["path"], row["reason"])
    console.print(table)
