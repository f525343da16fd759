"""`curator app`: start the Streamlit review app on a project, and manage who may sign in."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import click

from curator.access.users import add_user, has_users, users_file
from curator.cli.common import console, project_dir_option, resolve_project
from curator.errors import CuratorError
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
        # A full collection after every run holds the GIL while the run's last elements wait
        # to be sent: focus mode's card reached the browser 150-250 ms late on 2 cores.
        # Python's own collector still runs.
        "--runner.postScriptGC",
        "false",
        "--",
        "--project",
        str(project.root),
    ]


def is_loopback(host: str) -> bool:
    """Whether `host` serves this machine only (127.0.0.0/8, ::1 or localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[] ")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def check_exposure(project: Project, host: str) -> None:
    """Refuse to serve other machines unless sign-in is configured (a user list)."""
    if is_loopback(host) or has_users(project):
        return
    raise click.ClickException(
        f"refusing to serve on {host} without sign-in: add a user with "
        f"`curator app add-user NAME` (it writes {users_file(project)}), or keep the "
        "default --host 127.0.0.1"
    )


@click.group(invoke_without_command=True)
@project_dir_option
@click.option(
    "--host",
    "--address",
    "host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; the default keeps the app on this machine. Any other address "
    "needs a user list (`curator app add-user NAME`); every page then asks for a sign-in.",
)
@click.option("--port", type=int, default=8501, show_default=True, help="Port to serve on.")
@click.option(
    "--headless/--open-browser",
    default=True,
    show_default=True,
    help="Whether to leave the browser alone or open the app in it.",
)
@click.pass_context
def app(ctx: click.Context, project_dir: Path | None, host: str, port: int, headless: bool) -> None:
    """Start the review app for the project and serve it until interrupted.

    With a user list ([app] auth_file, written by `curator app add-user`), every page asks
    for a sign-in and each change is recorded under the signed-in name. See docs/security.md.
    """
    if ctx.invoked_subcommand is not None:
        return
    project = resolve_project(project_dir)
    try:
        check_exposure(project, host)
    except CuratorError as exc:  # an unreadable user list
        raise click.ClickException(str(exc)) from None
    serve(project, host, port, headless)


def serve(project: Project, host: str, port: int, headless: bool) -> None:
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


@app.command("add-user")
@click.argument("name")
@project_dir_option
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input (for scripts) instead "
    "of asking for it twice.",
)
@click.pass_context
def add_user_command(
    ctx: click.Context, name: str, project_dir: Path | None, password_stdin: bool
) -> None:
    """Add a user who may sign in to the app (or set a user's new password).

    NAME is what the catalogue's history records for that user's changes. The password is
    stored as a bcrypt hash in the project's user list ([app] auth_file, users.yaml).
    """
    # `curator app --project DIR add-user NAME` names the project on the group.
    group_dir = ctx.parent.params.get("project_dir") if ctx.parent else None
    project = resolve_project(project_dir or group_dir)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    path = users_file(project)
    try:
        new = add_user(path, name, password)
    except CuratorError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(f"{'Added' if new else 'Changed the password of'} {name} in {path}")
