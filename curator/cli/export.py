"""`curator export` and `curator exports`: training-set folders and the list of past ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from curator.cli.common import (
    console,
    interruptible,
    print_json,
    progress_bar,
    project_option,
)
from curator.export.audio import FORMATS
from curator.export.build import export, export_settings, exports
from curator.export.records import SECONDS, ExportSummary
from curator.export.staging import check_destination, staging_path
from curator.project import Project


def register(cli: click.Group) -> None:
    """Add this module's commands to `cli`."""
    cli.add_command(export_command)
    cli.add_command(exports_command)


@click.command("export")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--selection", help="A selection made by `curator rebalance` (default: all usable).")
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), help="Audio file format.")
@click.option("--bit-depth", type=click.Choice(["16", "24"]), help="Bits per sample.")
@click.option("--sample-rate", type=int, help="Sample rate of the written audio, in Hz.")
@click.option(
    "--seconds",
    type=click.Choice(list(SECONDS)),
    help="seconds_start/seconds_total: the segment as its own clip, or its place in the track.",
)
@click.option("--writer", help="Whose prompts go in, and who writes the missing ones.")
@click.option("--exporter", help="The exporter plugin (default: stable-audio-tools).")
@click.option(
    "--dedupe",
    is_flag=True,
    help="Write one member of each duplicate unit (`curator duplicates`); the others are "
    "listed as left out, naming the one written.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@project_option
def export_command(
    project: Project,
    out: Path,
    selection: str | None,
    fmt: str | None,
    bit_depth: str | None,
    sample_rate: int | None,
    seconds: str | None,
    writer: str | None,
    exporter: str | None,
    dedupe: bool,
    as_json: bool,
) -> None:
    """Write a training set to the folder OUT that stable-audio-tools trains on as it is.

    Each segment of the selection (or every usable segment) becomes its own audio file,
    repeated as the selection says, in train/ and validation/; beside them a manifest
    (JSONL and Parquet) with prompts, tags, tempo and key, the dataset configs, the module
    that gives each sample its prompt, and a README. Defaults come from curator.toml
    [export]. Segments without a prompt get one from the prompt writer.

    OUT is built beside itself and renamed into place when complete, so an earlier export
    there stays intact until then. Interrupt at any time: running the same command again
    reuses the audio already written. Unreadable sources are listed and left out, and
    so, with --dedupe, is every duplicate but one per unit.

    OUT must be new, empty, or an earlier export holding only what Curator wrote there;
    any other folder is refused and left as it is, and so is a folder ingest scans (the
    next ingest would take the exported audio as new tracks).
    """
    settings = export_settings(
        project,
        format=fmt,
        bit_depth=int(bit_depth) if bit_depth else None,
        sample_rate=sample_rate,
        seconds=seconds,
        writer=writer,
        exporter=exporter,
    )
    out = out.expanduser().resolve()
    check_destination(project, out)  # before the progress bar: a refusal is the only line
    kept = (
        f"the audio written so far is kept in {staging_path(out)}; run the same command "
        "again to finish. Any earlier export in the folder is untouched."
    )
    with interruptible(kept), progress_bar("Exporting") as update:
        summary = export(project, out, selection, settings, progress=update, dedupe=dedupe)
    if as_json:
        print_json(summary.as_dict())
    else:
        _print_summary(summary)


def _print_summary(summary: ExportSummary) -> None:
    splits = ", ".join(f"{n} {split}" for split, n in summary.splits.items() if n)
    console.print(
        f"Exported {summary.segments} segment(s) as {summary.files} audio file(s) ({splits}) "
        f"to {summary.out}: {summary.written} written, {summary.reused} reused, "
        f"{_prompts_line(summary)}. Content hash {summary.content_hash[:16]}."
    )
    if summary.left_out:
        table = Table("segment", "reason", title=f"{len(summary.left_out)} segment(s) left out")
        for segment_id, reason in summary.left_out:
            table.add_row(segment_id, reason)
        console.print(table)


def _prompts_line(summary: ExportSummary) -> str:
    """What the export did about prompts: a bare "0 written" read as if writing failed."""
    if not summary.prompts_missing:
        return "every segment already had a prompt"
    return (
        f"{summary.prompts_written} prompt(s) written for the {summary.prompts_missing} "
        "segment(s) that had none"
    )


@click.command("exports")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@project_option
def exports_command(project: Project, as_json: bool) -> None:
    """List past exports, newest first: folder, selection, counts, settings, content hash."""
    rows = exports(project)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("No exports yet; `curator export OUT` makes one.")
        return
    for row in rows:
        click.echo(_export_line(row))


def _export_line(row: dict[str, Any]) -> str:
    audio = row["settings"]
    left_out = f", {len(row['left_out'])} left out" if row["left_out"] else ""
    return (
        f"#{row['id']} {row['created_at']:%Y-%m-%d %H:%M}  {row['path']}  "
        f"selection {row['selection'] or '(all usable)'}: {row['n_segments']} segments, "
        f"{row['n_files']} files{left_out}; {audio.get('format')} {audio.get('bit_depth')}-bit "
        f"{audio.get('sample_rate')} Hz; hash {(row['content_hash'] or '')[:12]}"
    )
