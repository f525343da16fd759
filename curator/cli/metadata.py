"""`curator metadata`: per-segment metadata in the seed's format."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from curator.catalogue.metadata import import_metadata, write_metadata
from curator.cli.common import console, project_option
from curator.files import replace_atomically
from curator.project import Project


def register(cli: click.Group) -> None:
    cli.add_command(metadata)


@click.group()
def metadata() -> None:
    """Export per-segment metadata (tags, tempo, key) in the seed project's JSON format."""


@metadata.command("export")
@project_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "jsonl"]),
    default="json",
    show_default=True,
    help="json: one object keyed by segment id; jsonl: one line per segment.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@click.option(
    "--all",
    "include_unusable",
    is_flag=True,
    help="Include silent and excluded segments and those of missing tracks.",
)
def export(project: Project, fmt: str, out: Path | None, include_unusable: bool) -> None:
    """Print each segment's source, start, duration, tags per facet, key, scale and tempo.

    Tags and values are the effective labels: a person's decision wins over a model's.
    """
    if out is None:
        write_metadata(project, sys.stdout, fmt, include_unusable)
        return
    count = 0

    def write(partial: Path) -> None:
        nonlocal count
        with partial.open("w", encoding="utf-8") as stream:
            count = write_metadata(project, stream, fmt, include_unusable)

    replace_atomically(out, write)  # a failed or interrupted export leaves `out` as it was
    console.print(f"Wrote {count} segment(s) to {out}")


@metadata.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--source",
    required=True,
    help="Who made these labels (e.g. seed-clap); recorded with every label.",
)
@click.option(
    "--human",
    is_flag=True,
    help="Record them as people's decisions (they then win over every model).",
)
@project_option
def import_(project: Project, file: Path, source: str, human: bool) -> None:
    """Bring existing labels in from FILE: the seed's JSON or `metadata export` output.

    Records are matched to segments by segment id, else by audio file (full path, or file
    name when it is unique) and start offset; a record without a start applies to every
    segment of its file. Tags per facet, tempo, key and scale are read.

    Every record is checked first (tags in the project's vocabulary, tempo 20-400 BPM,
    key a pitch class, scale major or minor; see docs/validation.md): one bad record
    refuses the whole file and nothing is written. Records matching no segment are listed.
    """
    summary = import_metadata(project, file, source, human)
    kind = "human" if human else "model"
    console.print(
        f"Read {summary.records} record(s): {summary.labels} {kind} label(s) on "
        f"{summary.segments} segment(s), {len(summary.unmatched)} record(s) unmatched."
    )
    for key, reason in summary.unmatched[:20]:
        console.print(f"  [yellow]unmatched[/] {key}: {reason}")
