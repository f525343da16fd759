"""`curator ingest`."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from curator.catalogue.ingest import IngestSummary, ingest
from curator.cli.common import console, interruptible, progress_bar, project_option
from curator.duplicates.fingerprint import fingerprint_missing
from curator.project import Project


def register(cli: click.Group) -> None:
    cli.add_command(ingest_command)


@click.command("ingest")
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path, exists=False))
@click.option(
    "--fingerprint",
    is_flag=True,
    help="Also fingerprint the tracks not fingerprinted yet, for `curator duplicates`.",
)
@project_option
def ingest_command(project: Project, sources: tuple[Path, ...], fingerprint: bool) -> None:
    """Scan SOURCES (folders, recursively, or files) and add their audio to the catalogue.

    Each track is hashed (the same audio at two paths is one track) and cut into segments
    as set in curator.toml [ingest]. Re-running skips unchanged files, adds new ones and
    marks vanished ones missing. Bad files are listed with the reason and the rest goes
    on; the command fails only when nothing at all could be read. Interrupt it at any
    time: what it finished is kept, and running it again completes the job. The folders
    given are remembered: `curator export` refuses to write inside them. With
    --fingerprint, the tracks are then fingerprinted (resumable too), so `curator
    duplicates` has only to compare.
    """
    kept = "finished files are saved; run the same command again to do the rest."
    with interruptible(kept) as interrupted:
        with progress_bar("Ingesting") as update:
            summary = ingest(project, list(sources), progress=update)
        _print_summary(summary)
        if summary.interrupted:
            interrupted()
        if fingerprint:
            _fingerprint(project)
    if summary.nothing_readable:
        raise click.ClickException("no audio could be read from " + ", ".join(map(str, sources)))


def _fingerprint(project: Project) -> None:
    with progress_bar("Fingerprinting") as update:
        done = fingerprint_missing(project, update)
    console.print(f"Fingerprinted {done.done} track(s), {len(done.failed)} failed.")
    for path, reason in done.failed:
        console.print(f"[yellow]not fingerprinted[/]: {path}: {reason}")
    if done.interrupted:
        raise KeyboardInterrupt


def _print_summary(summary: IngestSummary) -> None:
    console.print(
        f"Found {summary.found} audio file(s): {summary.added} added "
        f"({summary.segments_added} segments, {summary.silent_segments} flagged silent), "
        f"{summary.unchanged} unchanged, {summary.duplicates} duplicate(s), "
        f"{summary.revived} found again, {summary.skipped} skipped, "
        f"{summary.failed} failed, {summary.missing} missing."
    )
    if summary.problems:
        table = Table("status", "file", "reason", title="Files not used")
        for path, status, reason in summary.problems:
            table.add_row(status, path, reason)
        console.print(table)
