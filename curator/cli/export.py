"""Placeholder: the `export` commands are being written (see the open issues)."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Add this module's commands to `cli`."""
