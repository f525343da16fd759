"""`curator app`: start the Streamlit review app on a project."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import click

from curator.cli.common import console, project_option
from curator.project import Project


def register(cli: click.Group) -> None:
    cli.add_command(app)


def app_command_line(project: Project, host: str, port: int, headless: bool) -> list[str]:
    """The `streamlit run` command line that serves the app for `project`."""
    home = Path(str(resources.files("curator.app") / "Home.py"))
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(home),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        str(headless).lower(),
        "--browser.gatherUsageStats",
        "false",
        "--",
        "--project",
        str(project.root),
    ]


@click.command()
@project_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; the default keeps the app on this machine.",
)
@click.option("--port", type=int, default=8501, show_default=True, help="Port to serve on.")
@click.option(
    "--headless/--open-browser",
    default=True,
    show_default=True,
    help="Whether to leave the browser alone or open the app in it.",
)
def app(project: Project, host: str, port: int, headless: bool) -> None:
    """Start the review app for the project and serve it until interrupted."""
    command = app_command_line(project, host, port, headless)
    console.print(
        f"Serving the app for {project.root} at [bold]http://{host}:{port}[/] (Ctrl-C stops it)"
    )
    env = {**os.environ, "CURATOR_PROJECT": str(project.root)}
    try:
        completed = subprocess.run(command, env=env, check=False)
    except KeyboardInterrupt:
        return
    if completed.returncode not in (0, -2, 130):
        raise click.ClickException(f"streamlit exited with status {completed.returncode}")
