"""The `curator` command line: one module per command group, gathered here."""

from __future__ import annotations

from typing import Any

import click

from curator import __version__
from curator.errors import CuratorError


class _Group(click.Group):
    """Prints a CuratorError, or a path the system refuses, as one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CuratorError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:
            # A path the user named that the system refuses: /proc, /sys, a read-only or
            # full disk, a missing parent folder. Nothing the code can fix, so no traceback.
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="curator")
def cli() -> None:
    """Curate, review and rebalance tagged audio datasets for music-generation fine-tuning.

    Start with `curator init DIR`, then `curator ingest FOLDER...` inside it.
    """


def _register() -> None:
    from curator.cli import (
        app,
        demo,
        duplicates,
        export,
        ingest,
        jobs,
        metadata,
        plugins,
        project,
        prompts,
        rebalance,
        search,
        suspects,
        tag,
        trap,
    )

    for module in (project, ingest, plugins, tag, demo, app, metadata):
        module.register(cli)
    for module in (rebalance, prompts, export, jobs, suspects, trap, duplicates):
        module.register(cli)
    search.register(cli)


_register()


def main() -> None:
    cli(prog_name="curator")
