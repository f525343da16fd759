"""What every command shares: the --project option, the console, progress bars, interrupts."""

from __future__ import annotations

import functools
import json
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from curator.project import Project, find_project, open_project

console = Console(stderr=True)


def project_dir_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add `--project DIR` as `project_dir` (None when absent); see `resolve_project`.

    For commands that open the project only sometimes, like a group listing its items
    when called without a subcommand.
    """
    return click.option(
        "--project",
        "project_dir",
        envvar="CURATOR_PROJECT",
        type=click.Path(file_okay=False, path_type=Path),
        help="Project folder (default: $CURATOR_PROJECT, else the nearest folder upward "
        "holding curator.toml).",
    )(command)


def resolve_project(project_dir: Path | None) -> Project:
    """The project at `project_dir`, else the nearest folder upward holding `curator.toml`."""
    return open_project(project_dir) if project_dir else find_project()


def project_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add `--project DIR` and pass the opened Project as `project`.

    Without the option $CURATOR_PROJECT is used when set, else the nearest folder upward
    holding `curator.toml`, as git finds its repository.
    """

    @project_dir_option
    @functools.wraps(command)
    def wrapper(*args: Any, project_dir: Path | None, **kwargs: Any) -> Any:
        return command(*args, project=resolve_project(project_dir), **kwargs)

    return wrapper


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int, str], None]]:
    """A rich progress bar with rate and ETA; yields `update(done, total, current)`."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=None, rate="")

        def update(done: int, total: int, current: str) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = f"{done / elapsed:.1f}/s" if elapsed > 0 else ""
            bar.update(task, completed=done, total=total, rate=rate)

        yield update


def with_progress[T](title: str, work: Callable[[Callable[[int, int], None]], T]) -> T:
    """`work(update)` under a progress bar titled `title`; `update(done, total)` moves it."""
    with progress_bar(title) as update:
        return work(lambda done, total: update(done, total, ""))


@contextmanager
def interruptible(kept: str) -> Iterator[Callable[[], NoReturn]]:
    """Within the block `kill` (SIGTERM) acts as Ctrl-C; either ends the command with
    "Interrupted: `kept`" and exit status 130 (as shells report Ctrl-C).

    Work that catches the interrupt itself, to keep what it finished, reports it in its
    summary: call the yielded function then, to end the same way.
    """

    def interrupted() -> NoReturn:
        console.print(f"[yellow]Interrupted[/]: {kept}")
        sys.exit(130)

    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield interrupted
    except KeyboardInterrupt:
        interrupted()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    # The work then stops as on Ctrl-C: what it has in hand is finished, nothing half-written.
    raise KeyboardInterrupt


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
