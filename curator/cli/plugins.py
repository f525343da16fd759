"""`curator plugins` and `curator new-plugin`: what is installed, and a start for a new one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from curator.cli.common import console, print_json, project_dir_option
from curator.errors import ProjectNotFound
from curator.project import SETTINGS_FILE, Project, find_project, open_project
from curator.registry import load_registry
from curator.registry.report import configured_in, plugin_report, status_text
from curator.registry.template import create_plugin


def register(cli: click.Group) -> None:
    cli.add_command(plugins)
    cli.add_command(new_plugin)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@project_dir_option
def plugins(as_json: bool, project_dir: Path | None) -> None:
    """List installed plugins: version, what each provides, and why any failed to load.

    Inside a project (or with --project DIR) it also shows which plugins the project's
    curator.toml configures ([plugins.NAME] tables) and names any table that configures
    nothing installed, such as a misspelt plugin name.

    CURATOR_LOAD_PLUGINS=a,b loads only those plugins (the others are listed as skipped);
    CURATOR_TRACE_PLUGINS=1 traces every hook call.
    """
    project = _project_if_any(project_dir)
    report = plugin_report(load_registry())
    unknown: list[str] = []
    if project:
        unknown = configured_in(report, project.settings.plugins)
    if as_json:
        print_json(report)
    else:
        _print_report(report, with_settings=project is not None)
    for name in unknown:
        console.print(
            f"[yellow]{escape(str(project.root / SETTINGS_FILE))}: "  # type: ignore[union-attr]
            f"\\[plugins.{escape(name)}] configures no installed plugin[/]",
            soft_wrap=True,  # a path broken over lines cannot be copied
        )


def _print_report(report: list[dict[str, Any]], with_settings: bool) -> None:
    table = Table("plugin", "version", "provides", "status")
    if with_settings:
        table.add_column("configured in curator.toml")
    for entry in report:
        provides = "; ".join(
            f"{kind.replace('_', ' ')}: " + ", ".join(i["name"] for i in items)
            for kind, items in entry["provides"].items()
        )
        status = escape(status_text(entry))
        status = f"[red]{status}[/]" if entry["errors"] else status
        row = [entry["name"], entry["version"] or "", provides, status]
        if with_settings:
            row.append(escape(", ".join(f"[plugins.{n}]" for n in entry["configured"])))
        table.add_row(*row)
    console.print(table)


def _project_if_any(project_dir: Path | None) -> Project | None:
    """The project asked for, else the one around the current folder, else none: the list
    of installed plugins needs no project."""
    if project_dir:
        return open_project(project_dir)
    try:
        return find_project()
    except ProjectNotFound:
        return None


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
