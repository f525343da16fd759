"""`curator prompts`: write a training prompt per segment, or show a segment's prompts."""

from __future__ import annotations

import click

from curator.cli.common import console, interruptible, print_json, project_option, with_progress
from curator.project import Project
from curator.prompts.editing import prompt_versions, selection_segment_ids
from curator.prompts.writing import DEFAULT_WRITER, PromptSummary, write_prompts


def register(cli: click.Group) -> None:
    """Add this module's commands to `cli`."""
    cli.add_command(prompts)


@click.command()
@project_option
@click.option("--selection", help="Only the segments of this selection (see `curator rebalance`).")
@click.option(
    "--writer",
    default=DEFAULT_WRITER,
    show_default=True,
    help="The prompt writer plugin: template (offline) or ollama (a local LLM).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the wording.")
@click.option("--force", is_flag=True, help="Write again prompts that are up to date.")
@click.option("--limit", type=click.IntRange(min=1), help="Write at most this many now.")
@click.option(
    "--show",
    "show_id",
    metavar="SEGMENT_ID",
    help="Print every prompt stored for this segment (the one in use first, a curator's "
    "edit with the curator's name) and stop.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary (or --show) as JSON.")
def prompts(
    project: Project,
    selection: str | None,
    writer: str,
    seed: int,
    force: bool,
    limit: int | None,
    show_id: str | None,
    as_json: bool,
) -> None:
    """Write a training prompt for every usable segment (or a selection's) from its tags,
    tempo and key, and print a summary with a few examples.

    A prompt already written by this writer version from the same tags, settings and seed
    is kept unless --force; answers given before come from a cache, so re-running costs
    nothing. A curator's edit (in the app's Prompts page) always wins over a writer's.
    Interrupting keeps what was written; run the command again to do the rest.
    """
    if show_id:
        _show(project, show_id, as_json)
        return
    segment_ids = selection_segment_ids(project, selection) if selection else None
    kept = "the prompts written so far are saved; run the same command again to do the rest."
    with interruptible(kept) as interrupted:
        summary = with_progress(
            f"Writing prompts with {writer}",
            lambda update: write_prompts(
                project, segment_ids, writer, seed, force, update, limit=limit
            ),
        )
    if as_json:
        print_json(summary.__dict__)
    else:
        _report(summary)
    if summary.interrupted:
        interrupted()


def _report(summary: PromptSummary) -> None:
    console.print(
        f"{summary.writer}: {summary.written} prompt(s) written, {summary.from_cache} from "
        f"the cache, {summary.skipped} already up to date, {summary.failed} failed, "
        f"of {summary.segments} segment(s)"
        + (f"; {summary.deferred} left for a later run." if summary.deferred else "."),
        highlight=False,
    )
    for segment_id, reason in summary.failures[:20]:
        console.print(f"  [red]failed[/] {segment_id}: {reason}", markup=True, highlight=False)
    if len(summary.failures) > 20:
        console.print(f"  ... and {len(summary.failures) - 20} more")
    for segment_id, text in summary.examples:
        console.print(f"  {segment_id}: {text}", markup=False, highlight=False, soft_wrap=True)


def _show(project: Project, segment_id: str, as_json: bool) -> None:
    versions = prompt_versions(project, segment_id)
    if as_json:
        print_json(versions)
        return
    if not versions:
        console.print(f"No prompt for {segment_id} yet; run `curator prompts`.")
        return
    for version in versions:
        mark = "in use" if version["in_use"] else "      "
        # A curator's edit names its curator; a writer's prompt is named by its writer.
        who = version["writer"] + (f" ({version['actor']})" if version["actor"] else "")
        click.echo(f"{mark}  {who:<20} {version['created_at']:%Y-%m-%d %H:%M}  {version['text']}")
