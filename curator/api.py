"""The public API: what plugins implement, what they receive, and the helpers they may use.

A plugin imports from Curator only this module, `curator.errors`, `curator.testing` and
`hookimpl` from `curator` (tests/test_plugin_api.py holds them to it), so the modules behind
these names can move without breaking a plugin.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from curator.catalogue.audio import decode_window, to_channels
from curator.curation.probes import LearnedModel
from curator.curation.probes import load_model as load_learned_model
from curator.music import NOTE_NAMES
from curator.prompts.checking import prompt_problems, tag_lists, tag_phrases
from curator.settings import reject_unknown_keys, settings_from_table
from curator.storage.catalog import Migration
from curator.validation import device_setting, setting
from curator.vocabulary import Facet, Tag, Vocabulary

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "NOTE_NAMES",
    "PRECISIONS",
    "Analyzer",
    "CatalogueAccess",
    "Embedder",
    "Exporter",
    "Facet",
    "LearnedModel",
    "Measurement",
    "Migration",
    "OtherPlugins",
    "Plugin",
    "PluginContext",
    "PromptWriter",
    "SegmentAudio",
    "Tag",
    "TagResult",
    "Tagger",
    "Vocabulary",
    "autocast",
    "check_precision",
    "decode_window",
    "device_setting",
    "load_learned_model",
    "precision_setting",
    "prompt_problems",
    "reject_unknown_keys",
    "resolve_device",
    "setting",
    "settings_from_table",
    "tag_lists",
    "tag_phrases",
    "to_channels",
]


@dataclass(frozen=True)
class SegmentAudio:
    """One segment's audio, decoded at the rate and channel count the plugin asked for."""

    segment_id: str
    audio: np.ndarray  # float32, shape (frames, channels)
    sample_rate: int


@dataclass
class TagResult:
    """A tagger's output for one segment.

    scores: facet -> tag -> score; higher means more likely present. Every tag the
      tagger knows should be scored, so curators can see near misses.
    embedding: the segment's audio embedding, cached so that re-tagging with another
      vocabulary or threshold needs no audio (None if the tagger has none).
    """

    scores: dict[str, dict[str, float]]
    embedding: np.ndarray | None = None


@dataclass(frozen=True)
class Measurement:
    """One analyzer value: `value` for numbers (tempo), `text` for names (key, scale)."""

    name: str
    value: float | None = None
    text: str | None = None
    confidence: float = 1.0


class CatalogueAccess(Protocol):
    """The project's catalogue, for the tables a plugin's own migrations made.

    Open it briefly and let go (DESIGN.md decision 2): another process may be waiting.
    """

    def connect(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """Open the file (waiting while another process holds it), yield, close."""
        ...

    def transaction(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """Open, BEGIN, yield, COMMIT; anything raised rolls the whole block back."""
        ...


class OtherPlugins(Protocol):
    """The other plugins of the run a plugin is set up for, as the host holds them."""

    def names(self, kind: str) -> list[str]:
        """The names of one kind: "taggers", "analyzers", "embedders", "prompt_writers", ..."""
        ...

    def tagger(self, name: str, set_up: bool = True) -> Tagger:
        """Tagger `name`, set up for this project as a run of it would be (its own settings
        table); `set_up=False` gives it as registered, to read its class attributes without
        loading a model. Raises CuratorError naming the installed ones if there is none."""
        ...


@dataclass(frozen=True)
class PluginContext:
    """What a plugin gets when it is set up for a run.

    settings: the project's `[plugins.<name>]` table (empty when absent).
    vocabulary: the project's vocabulary (facets, tags, synonyms, thresholds).
    project_root: the project folder, or None outside a project.
    cache_dir: a folder the plugin may keep files in (converted models, text embeddings).
    offline: True when no model hub may be contacted (`[tagging] offline` or HF_HUB_OFFLINE=1).
    device: "cpu", "cuda", or "auto" (the plugin picks cuda when it is available).
    catalog: the project's catalogue, for the plugin's own tables (see `register_migrations`),
      or None outside a project.
    plugins: the other plugins of this run (a tagger that needs another one's embeddings
      asks here), or None when the plugin is set up by hand.
    """

    settings: Mapping[str, Any] = field(default_factory=dict)
    vocabulary: Vocabulary | None = None
    project_root: Path | None = None
    cache_dir: Path = Path(".cache")
    offline: bool = True
    device: str = "cpu"
    catalog: CatalogueAccess | None = field(default=None, repr=False, compare=False)
    plugins: OtherPlugins | None = field(default=None, repr=False, compare=False)


class Plugin(ABC):  # noqa: B024 - what every kind of plugin shares; nothing to override
    """What every contributed thing has: a unique `name`, a `version`, and `setup`.

    Change `version` whenever the output would change. `setup` runs once per run, never
    at import; the default keeps the context as `self.context`.
    """

    name: str = ""
    version: str = "0"

    def setup(self, context: PluginContext) -> None:
        """Load models; the default keeps the context as `self.context`."""
        self.context = context

    def settings_for_run(self) -> dict[str, Any]:
        """The settings that change this plugin's output, recorded with each run."""
        context = getattr(self, "context", None)
        return dict(context.settings) if context else {}


class Tagger(Plugin):
    """Scores segments against tags of one or more facets.

    Class attributes a tagger sets: `name`, `version` (change it whenever its scores would
    change), `facets`, `sample_rate` and `channels` of the audio it wants, and
    `embedding_model` (a name for its cached embeddings, or None). `setup` loads the model
    (called once per run, never at import); `tag` scores a batch.
    """

    facets: tuple[str, ...] = ()
    sample_rate: int = 48000
    channels: int = 1
    embedding_model: str | None = None

    @abstractmethod
    def tag(self, batch: Sequence[SegmentAudio]) -> list[TagResult]:
        """One TagResult per segment, in the batch's order."""

    def tag_embeddings(self, embeddings: np.ndarray) -> np.ndarray | list[TagResult]:
        """Score cached embeddings (rows) without audio; taggers with embeddings override.

        Return either one TagResult per row, or (faster for 40,000 rows) an array of
        shape (rows, len(tag_order())) whose columns follow `tag_order()`.
        """
        raise NotImplementedError(f"{self.name} cannot re-tag from cached embeddings")

    def tag_order(self) -> list[tuple[str, str]]:
        """Every (facet, tag) this tagger scores; by default its facets' vocabulary tags.

        A tagger with tags of its own (a fixed-output model) overrides this.
        """
        context = getattr(self, "context", None)
        vocabulary = context.vocabulary if context else None
        if vocabulary is None:
            return []
        return [
            (facet.name, tag.name)
            for facet in vocabulary.facets
            if facet.name in self.facets
            for tag in facet.tags
        ]

    def label_threshold(self, facet: str, tag: str) -> float:
        """Score from which a tag becomes a model label: the vocabulary's, unless overridden."""
        known = self._facet(facet)
        if known is None:
            return 0.5
        found = known.tag(tag)
        return found.threshold if found else known.threshold

    def label_top_k(self, facet: str) -> int:
        """At most this many labels of `facet` per segment."""
        known = self._facet(facet)
        return known.top_k if known else 3

    def score_columns(self) -> dict[tuple[str, str], int]:
        """(facet, tag) -> the column of the cached embedding holding this tagger's own
        probability (0 to 1) for that tag; empty by default.

        `curator learn` starts each such tag's probe from that probability (its prior), so
        a learned tagger on this embedding is this tagger until corrections move it. Called
        on a set-up tagger whose `embedding_model` is the embedding learned on; a tagger
        that does not override it is never set up for it.
        """
        return {}

    def _facet(self, name: str) -> Facet | None:
        context = getattr(self, "context", None)
        vocabulary = context.vocabulary if context else None
        return vocabulary.facet(name) if vocabulary and name in vocabulary.facet_names else None


class Analyzer(Plugin):
    """Measures segments (tempo, key, scale, loudness, ...), each value with a confidence.

    Class attributes: `name`, `version`, `measures` (the names it returns), and the
    `sample_rate` and `channels` it wants.
    """

    measures: tuple[str, ...] = ()
    sample_rate: int = 44100
    channels: int = 1

    @abstractmethod
    def analyze(self, batch: Sequence[SegmentAudio]) -> list[list[Measurement]]:
        """Measurements per segment, in the batch's order."""


class Embedder(Plugin):  # a plugin provides embed_text, embed_audio or both
    """A text or audio encoder others can reuse (the tag map embeds tag phrases with it).

    Class attributes: `name`, `version`, `modalities` ("text", "audio" or both),
    `sample_rate` for audio, and `embedding_model`: once set up, the cached audio
    embeddings (a tagger's `embedding_model`) whose space its text rows share, so that
    `curator search` can compare words with them; None when it shares none.
    """

    modalities: tuple[str, ...] = ("text",)
    sample_rate: int = 48000
    embedding_model: str | None = None

    def embed_text(self, phrases: Sequence[str]) -> np.ndarray:
        """One L2-normalised row per phrase."""
        raise NotImplementedError(f"{self.name} does not embed text")

    def embed_audio(self, batch: Sequence[SegmentAudio]) -> np.ndarray:
        """One L2-normalised row per segment."""
        raise NotImplementedError(f"{self.name} does not embed audio")


class PromptWriter(Plugin):
    """Writes a training prompt from a segment's metadata (tags per facet, tempo, key)."""

    @abstractmethod
    def write(self, metadata: Mapping[str, Any], seed: int) -> str:
        """One prompt for one segment's metadata record (the seed's JSON format)."""


class Exporter(Plugin):
    """Writes a selection of segments somewhere a trainer can read it.

    `curator export` writes what every trainer needs first (each segment's audio file and
    repeated copies, `manifest.jsonl`, `metadata.parquet`) into a folder beside the
    destination, then calls `export` to add the trainer's own files (dataset config, loader
    code, README), then renames the folder into place.
    """

    # `final` was added because the audio is written by the core (decoding, resuming and the
    # atomic rename are the same for every trainer), so `out` is a staging folder, and files
    # a trainer reads paths from as given (stable-audio-tools' dataset config) must name the
    # folder's final place.
    @abstractmethod
    def export(
        self, records: Sequence[Mapping[str, Any]], out: Path, final: Path | None = None
    ) -> Path:
        """Write `records` (one per audio file: metadata, prompt, `filepath` relative to
        `out`) under `out`; `final` is where `out` will be once complete (None: `out`
        itself). Return the folder."""


def resolve_device(device: str) -> str:
    """The torch device a plugin runs on: "auto" or empty picks cuda when there is one."""
    import torch  # here, not at import: the CLI starts without torch

    if device in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


# A model's forward pass in fp32, or under autocast to bfloat16 / float16 (GPU only).
PRECISIONS = ("fp32", "bf16", "fp16")


def precision_setting(default: str = "fp32") -> Any:
    """A `precision` field of a plugin's settings: "fp32", "bf16" or "fp16" (GPU only)."""
    return setting(default, choices=PRECISIONS)


def check_precision(precision: str, device: str, table: str) -> None:
    """Raise SettingsError naming `table` when `precision` cannot run on `device`.

    float16 autocast is for GPUs; on a CPU bfloat16 is the fast one (and keeps fp32's range).
    """
    from curator.errors import SettingsError

    if precision == "fp16" and not str(device).startswith("cuda"):
        raise SettingsError(
            f'{table} precision = "fp16" runs on a GPU only, and this run\'s device is '
            f'{device}: use "bf16" (fast on recent CPUs) or "fp32"'
        )


def autocast(precision: str, device: str) -> AbstractContextManager[Any]:
    """What a forward pass runs under: torch.autocast to `precision` on `device`'s kind
    ("cpu", "cuda"), or nothing for fp32. Call `check_precision` at setup first."""
    import contextlib

    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)
