"""`curator search` (segments by words) and `curator similar` (segments by sound)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from curator.cli.common import print_json, project_option
from curator.project import Project
from curator.search import SearchResult, describe_hits, search_text, similar_to


def register(cli: click.Group) -> None:
    """Add this module's commands to `cli`."""
    cli.add_command(search)
    cli.add_command(similar)


def _search_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        (
            click.option(
                "--limit",
                type=click.IntRange(min=1),
                default=20,
                show_default=True,
                help="Print this many segments, best first.",
            ),
            click.option("--json", "as_json", is_flag=True, help="Print the hits as JSON."),
            click.option(
                "--model", help="Cached embeddings to search (default: see the command's help)."
            ),
            click.option(
                "--index",
                type=click.Choice(["auto", "exact", "approximate"]),
                help="Exact or approximate search (default: [search] index in curator.toml).",
            ),
        )
    ):
        command = option(command)
    return command


@click.command()
@click.argument("text")
@_search_options
@project_option
def search(
    project: Project, text: str, limit: int, as_json: bool, model: str | None, index: str | None
) -> None:
    """List the usable segments that best match TEXT, e.g. "dark bells with a sliding 808".

    TEXT goes through the text tower of an embedder whose space matches cached audio
    embeddings (CLAP, once `curator tag --plugin clap` has cached them and its model is
    here); otherwise its words are matched to vocabulary tags and synonyms and segments are
    ranked by those tags' scores, a person's label winning. The line under the table says
    which. See docs/search.md.
    """
    _show(project, search_text(project, text, limit=limit, model=model, index=index), as_json)


@click.command()
@click.argument("segment_id")
@_search_options
@project_option
def similar(
    project: Project,
    segment_id: str,
    limit: int,
    as_json: bool,
    model: str | None,
    index: str | None,
) -> None:
    """List the usable segments that sound most like SEGMENT_ID (cosine of cached audio
    embeddings; default: the model cached for the most segments that has this one).

    The segment itself and the other segments of its track are left out. See
    docs/search.md.
    """
    _show(project, similar_to(project, segment_id, limit=limit, model=model, index=index), as_json)


def _show(project: Project, result: SearchResult, as_json: bool) -> None:
    rows = describe_hits(project, result.hits)
    if as_json:
        print_json({"how": result.how, "hits": rows})
        return
    table = Table("segment", "track file", "start", "score", "top tags")
    for row in rows:
        table.add_row(
            row["segment_id"],
            Path(row.get("source", "")).name,
            f"{row.get('start', 0.0):.1f}",
            f"{row['score']:.3f}",
            ", ".join(row.get("tags", [])[:4]),
        )
    Console(width=200).print(table)  # the results go to stdout, made at call time
    click.echo(f"{len(rows)} segment(s); ranked by {result.how}")
