"""What every page of the app shares: which project it shows."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from curator.project import Project, find_project, open_project


def current_project() -> Project:
    """The project named after `--` on the streamlit command line, or CURATOR_PROJECT."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--project")
    known, _ = parser.parse_known_args()
    folder = known.project or os.environ.get("CURATOR_PROJECT")
    return open_project(Path(folder)) if folder else find_project()
