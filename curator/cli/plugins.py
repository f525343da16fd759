"""`curator plugins` and `curator new-plugin`: what is installed, and a start for a new one."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from curator.cli.common import console, print_json
from curator.registry import load_registry
from curator.registry.report import plugin_report, status_text
from curator.registry.template import create_plugin


def register(cli: click.Group) -> None:
    cli.add_command(plugins)
    cli.add_command(new_plugin)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def plugins(as_json: bool) -> None:
    """List installed plugins: version, what each provides, and why any failed to load.

    CURATOR_LOAD_PLUGINS=a,b loads only those plugins (the others are listed as skipped);
    CURATOR_TRACE_PLUGINS=1 traces every hook call.
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
        status = escape(status_text(entry))
        status = f"[red]{status}[/]" if entry["errors"] else status
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
