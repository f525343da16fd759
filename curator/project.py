"""A project: a folder holding `curator.toml`, the catalogue and the run folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curator.errors import CuratorError, ProjectNotFound
from curator.settings import DEFAULT_TOML, Settings, load_settings
from curator.storage import Catalog
from curator.vocabulary import Vocabulary, copy_default_vocabulary, load_vocabulary

SETTINGS_FILE = "curator.toml"
CATALOG_FILE = "catalog.duckdb"


@dataclass(frozen=True)
class Project:
    """An opened project; `catalog` opens the database only while it is used."""

    root: Path
    settings: Settings

    @property
    def catalog(self) -> Catalog:
        return Catalog(self.root / CATALOG_FILE, self.settings.catalog.lock_timeout_seconds)

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def search_dir(self) -> Path:
        """Search indexes, one folder per embedding model (rebuilt from the catalogue)."""
        return self.root / "search"

    @property
    def vocabulary_dir(self) -> Path:
        return self.root / self.settings.tagging.vocabulary_dir

    def vocabulary(self) -> Vocabulary:
        """The project's vocabulary, read from its folder each time (curators edit it)."""
        if not self.vocabulary_dir.is_dir():
            raise CuratorError(
                f"{self.vocabulary_dir}: no vocabulary folder; run "
                f"`curator init {self.root}` to restore the default one"
            )
        return load_vocabulary(self.vocabulary_dir)


def init_project(root: Path) -> Project:
    """Create (or complete) a project in `root`; an existing `curator.toml` is kept."""
    root = root.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise CuratorError(f"{root}: exists and is not a folder")
    root.mkdir(parents=True, exist_ok=True)
    settings_path = root / SETTINGS_FILE
    if not settings_path.exists():
        settings_path.write_text(DEFAULT_TOML, encoding="utf-8")
    project = open_project(root)
    project.catalog.migrate()
    copy_default_vocabulary(project.vocabulary_dir)
    return project


def open_project(root: Path) -> Project:
    """Open the project whose `curator.toml` is in `root`."""
    root = root.expanduser().resolve()
    settings_path = root / SETTINGS_FILE
    if not settings_path.is_file():
        raise ProjectNotFound(f"{root}: no {SETTINGS_FILE} here; run `curator init {root}` first")
    return Project(root=root, settings=load_settings(settings_path))


def find_project(start: Path | None = None) -> Project:
    """Open the nearest project at or above `start` (the current folder), as git does."""
    here = (start or Path.cwd()).expanduser().resolve()
    for folder in (here, *here.parents):
        if (folder / SETTINGS_FILE).is_file():
            return open_project(folder)
    raise ProjectNotFound(
        f"no {SETTINGS_FILE} in {here} or any folder above it; "
        "run `curator init DIR` or pass --project DIR"
    )
