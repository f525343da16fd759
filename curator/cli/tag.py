"""`curator tag` and `curator analyze`: runs of a tagger or an analyzer over the catalogue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

import click
from rich.markup import escape

from curator.cli.common import console, interruptible, project_option, with_progress
from curator.project import Project
from curator.tagging.runs import Engine, RunSummary, retag_from_cache, run_plugin

_KEPT = "finished segments are saved; run the same command again to do the rest."


def register(cli: click.Group) -> None:
    """Add this module's commands to `cli`."""
    cli.add_command(tag)
    cli.add_command(analyze)


def _run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = _engine_options(command)
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


def _engine_options(command: Callable[..., Any]) -> Callable[..., Any]:
    ray = "(--engine ray; default: [tagging] ray_"
    for option in (
        click.option(
            "--gpus-per-actor",
            type=click.FloatRange(min=0),
            help=f"GPUs each Ray actor reserves, 0.5 to share one {ray}gpus_per_actor).",
        ),
        click.option(
            "--cpus-per-actor",
            type=click.FloatRange(min=0, min_open=True),
            help=f"CPUs each Ray actor reserves {ray}cpus_per_actor).",
        ),
        click.option(
            "--num-actors",
            type=click.IntRange(min=0),
            help=f"Ray actors, each loading the plugin once; 0 fits the cluster {ray}actors).",
        ),
        click.option(
            "--address",
            help="Ray cluster to join: auto, ray://HEAD:10001; empty starts a local one "
            f"for the run {ray}address).",
        ),
        click.option(
            "--engine",
            type=click.Choice(["local", "ray"]),
            help="local: this process; ray: a pool of Ray actors, here or on a cluster "
            "(docs/ray.md). Default: [tagging] engine.",
        ),
    ):
        command = option(command)
    return command


def _engine(project: Project, engine: str | None, **ray_options: Any) -> Engine | None:
    """The engine the options and `[tagging]` choose; None is the local one.

    Ray is imported only when it is chosen, so the local engine never pays for it.
    """
    if (engine or project.settings.tagging.engine) == "local":
        flags = sorted(f"--{k.replace('_', '-')}" for k, v in ray_options.items() if v is not None)
        if flags:
            raise click.UsageError(f"{', '.join(flags)} only apply to --engine ray")
        return None
    from curator.tagging.ray_engine import RayEngine, RayOptions

    names = {"num_actors": "actors"}
    given = {names.get(key, key): value for key, value in ray_options.items()}
    return RayEngine(project, RayOptions.from_settings(project.settings.tagging, **given))


@click.command()
@click.option("--plugin", "name", required=True, help="The tagger to run (see `curator plugins`).")
@click.option(
    "--from-cache",
    is_flag=True,
    help="Re-score cached embeddings against the current vocabulary; no audio is read.",
)
@_run_options
def tag(
    project: Project,
    name: str,
    from_cache: bool,
    batch_size: int | None,
    limit: int | None,
    engine: str | None,
    **ray_options: Any,
) -> None:
    """Tag the segments this tagger, with these settings and vocabulary, has not tagged yet.

    Results are written as Parquet shards in the project's runs/ folder and merged into the
    catalogue as they come, so the app shows them at once and an interrupted run resumes
    where it stopped. Human labels are never changed. With --engine ray the segments are
    spread over Ray actors (docs/ray.md); --from-cache reads no audio and runs here.
    """
    chosen = None if from_cache else _engine(project, engine, **ray_options)
    with interruptible(_KEPT) as interrupted:
        if from_cache:
            summary = retag_from_cache(project, name)
        else:
            summary = with_progress(
                f"Tagging with {name}",
                lambda update: run_plugin(
                    project, "tag", name, batch_size, limit, update, engine=chosen
                ),
            )
    _report(summary, "tagged", interrupted)


@click.command()
@click.option(
    "--plugin",
    "name",
    default="essentia",
    show_default=True,
    help="The analyzer to run (see `curator plugins`).",
)
@_run_options
def analyze(
    project: Project,
    name: str,
    batch_size: int | None,
    limit: int | None,
    engine: str | None,
    **ray_options: Any,
) -> None:
    """Measure tempo, key, scale (and more) for segments this analyzer has not done yet.

    Values below [tagging] min_confidence are stored but not used as labels. With
    --engine ray the segments are spread over Ray actors (docs/ray.md).
    """
    chosen = _engine(project, engine, **ray_options)
    with interruptible(_KEPT) as interrupted:
        summary = with_progress(
            f"Analyzing with {name}",
            lambda update: run_plugin(
                project, "analyze", name, batch_size, limit, update, engine=chosen
            ),
        )
    _report(summary, "analyzed", interrupted)


def _report(summary: RunSummary, verb: str, interrupted: Callable[[], NoReturn]) -> None:
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
        interrupted()
