"""The `[plugins.musicnn]` settings table, checked, and where the frozen graphs are found."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curator.api import reject_unknown_keys
from curator.errors import SettingsError

MODELS = ("MSD_musicnn", "MTT_musicnn")
EMBEDDINGS = ("tags", "penultimate")
# plugins/musicnn/settings.py -> the repository root, where set-up writes .models/.
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class MusicnnSettings:
    """How the musicnn tagger runs, from the project's `[plugins.musicnn]` table.

    model: "MSD_musicnn" (the default; Million Song Dataset tags, among them Hip-Hop, rnb,
      soul, jazz, funk and moods such as sad, happy, chill, sexy, party) or "MTT_musicnn"
      (MagnaTagATune tags, mostly instruments: piano, strings, guitar, flute, voice).
    graph_dir: the folder holding `<model>.pb` and `<model>.json` (made by `make setup`);
      a relative path is taken from the project folder. Default: `$CURATOR_MODELS/musicnn`
      when CURATOR_MODELS is set, else `.models/musicnn` in the repository.
    tag_map: per facet, Curator tag -> the musicnn tags whose highest score it takes;
      each entry replaces the built-in one for that tag, `[]` removes it.
    embedding: what is cached per segment. "tags" (the default): the 50 averaged tag
      probabilities, embedding model `musicnn-<model>`. "penultimate": those 50 followed by
      the 200 values of the penultimate layer (`model/dense/BiasAdd`) averaged over the
      segment's patches, embedding model `musicnn-<model>-penultimate`: an audio embedding
      the learned tagger and the suspicion queue can train on. Tags are the same either way.
    """

    model: str = "MSD_musicnn"
    graph_dir: str | None = None
    tag_map: Mapping[str, Any] = field(default_factory=dict)
    embedding: str = "tags"

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> MusicnnSettings:
        """Read the table, naming any unknown key or bad value."""
        reject_unknown_keys(cls, table, "[plugins.musicnn]")
        settings = cls(**table)
        if not isinstance(settings.graph_dir, str | None):
            raise SettingsError(
                f"[plugins.musicnn] graph_dir = {settings.graph_dir!r} must be a folder's path"
            )
        if not isinstance(settings.tag_map, Mapping):
            raise SettingsError("[plugins.musicnn] tag_map must be a table of facets")
        if settings.model not in MODELS:
            raise SettingsError(
                f"[plugins.musicnn] model = {settings.model!r} is not one of {', '.join(MODELS)}"
            )
        if settings.embedding not in EMBEDDINGS:
            raise SettingsError(
                f"[plugins.musicnn] embedding = {settings.embedding!r} is not one of "
                f"{', '.join(EMBEDDINGS)}"
            )
        return settings

    @property
    def embedding_model(self) -> str:
        """The name the cached embeddings are kept under."""
        suffix = "-penultimate" if self.embedding == "penultimate" else ""
        return f"musicnn-{self.model}{suffix}"

    def graph_folder(self, project_root: Path | None) -> Path:
        """Where this model's graph and tag list are read from."""
        if self.graph_dir:
            return (project_root or Path.cwd()) / Path(self.graph_dir).expanduser()
        return default_graph_folder()


def default_graph_folder() -> Path:
    """`$CURATOR_MODELS/musicnn`, else the repository's `.models/musicnn`."""
    models = os.environ.get("CURATOR_MODELS")
    return Path(models) / "musicnn" if models else REPO_ROOT / ".models" / "musicnn"
