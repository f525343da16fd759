"""`curator plugins`, `curator tag`, `curator analyze`."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from curator.cli.common import console, print_json, progress_bar, project_option
from curator.project import Project
from curator.registry import load_registry
from curator.registry.report import plugin_report
from curator.registry.template import create_plugin
from curator.tagging.runs import RunSummary, retag_from_cache, run_plugin


def register(cli: click.Group) -> None:
    cli.add_command(plugins)
    cli.add_command(new_plugin)
    cli.add_command(tag)
    cli.add_command(analyze)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def plugins(as_json: bool) -> None:
    """List installed plugins: version, what each provides, and why any failed to load.

    CURATOR_LOAD_PLUGINS=a,b loads only those plugins; CURATOR_TRACE_PLUGINS=1 traces
    every hook call.
    """
    report = plugin_report(load_registry())
    if as_json:
        print_json(report)
        return
    table = Table("plugin", "version", "provides", "status")
    for entry in report:
        provides = "; ".join(
            f"{kind.replace('_', ' ')}: " + ", ".join(i["name"] for i in items)
            for kind, items in entry["provides"].items()
        )
        status = "[red]" + "; ".join(entry["errors"]) + "[/]" if entry["errors"] else "ok"
        table.add_row(entry["name"], entry["version"] or "", provides, status)
    console.print(table)


@click.command("new-plugin")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", required=True, help="The plugin's name, e.g. trap-snare.")
def new_plugin(folder: Path, name: str) -> None:
    """Start a plugin package in FOLDER from the template: a working tagger to edit,
    its entry point, and an "is installed" test. See docs/writing-plugins.md.
    """
    for path in create_plugin(folder, name):
        console.print(f"wrote {path}")
    console.print(f"Next: pip install -e {folder} && curator plugins")


def _run_options(command):
    command = click.option(
        "--limit",
        type=click.IntRange(min=1),
        help="Process at most this many segments now (the rest later).",
    )(command)
    command = click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        help="Segments per model call (default: [tagging] batch_size).",
    )(command)
    return project_option(command)


@click.command()
@click.option("--plugin", "name", required=True, help="The tagger to run (see `curator plugins`).")
@click.option(
    "--from-cache",
    is_flag=True,
    help="Re-score cached embeddings against the current vocabulary; no audio is read.",
)
@_run_options
def tag(
    project: Project, name: str, from_cache: bool, batch_size: int | None, limit: int | None
) -> None:
    """Tag the segments this tagger, with these settings and vocabulary, has not tagged yet.

    Results are written as Parquet shards in the project's runs/ folder and merged into the
    catalogue as they come, so the app shows them at once and an interrupted run resumes
    where it stopped. Human labels are never changed.
    """
    if from_cache:
        summary = retag_from_cache(project, name)
    else:
        summary = _with_progress(
            f"Tagging with {name}",
            lambda update: run_plugin(project, "tag", name, batch_size, limit, update),
        )
    _report(summary, "tagged")


@click.command()
@click.option(
    "--plugin",
    "name",
    default="essentia",
    show_default=True,
    help="The analyzer to run (see `curator plugins`).",
)
@_run_options
def analyze(project: Project, name: str, batch_size: int | None, limit: int | None) -> None:
    """Measure tempo, key, scale (and more) for segments this analyzer has not done yet.

    Values below [tagging] min_confidence are stored but not used as labels.
    """
    summary = _with_progress(
        f"Analyzing with {name}",
        lambda update: run_plugin(project, "analyze", name, batch_size, limit, update),
    )
    _report(summary, "analyzed")


def _with_progress(title: str, work):
    signal.signal(signal.SIGTERM, _interrupt)
    with progress_bar(title) as update:
        return work(lambda done, total: update(done, total, ""))


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _report(summary: RunSummary, verb: str) -> None:
    for note in summary.notes:
        console.print(f"[yellow]Set aside[/]: {escape(note)}", soft_wrap=True)
    if summary.pending == 0:
        console.print(
            f"Nothing to do: every usable segment is already {verb} by {summary.plugin} "
            "with these settings."
        )
        return
    console.print(
        f"Run {summary.run_id}: {summary.done} segment(s) {verb}, "
        f"{summary.failed} failed, of {summary.pending} pending."
    )
    for segment_id, reason in summary.failures[:20]:
        console.print(f"  [red]failed[/] {segment_id}: {reason}")
    if summary.interrupted:
        console.print(
            "[yellow]Interrupted[/]: finished segments are saved; run the same "
            "command again to do the rest."
        )
        sys.exit(130)
