"""Project settings: the defaults, and how `curator.toml` overrides them."""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curator.errors import SettingsError
from curator.validation import check_bounds, device_setting, read_input_text, setting


@dataclass(frozen=True)
class IngestSettings:
    """How audio files become tracks and segments.

    extensions: file name endings scanned for, compared case-insensitively.
    segments_per_track: how many segments to cut from each track (fewer if it is short).
    segment_min_seconds / segment_max_seconds: bounds on each segment's length.
    seed: makes segment choice reproducible; each track's draw also depends on its content.
    silence_threshold_db: a segment whose RMS level is below this (dBFS) is flagged silent.
    workers: threads that hash and probe files in parallel (0 means one per core).
    commit_every: files written to the catalogue per transaction.
    """

    extensions: tuple[str, ...] = ("wav", "flac", "mp3", "ogg", "aiff", "aif")
    segments_per_track: int = setting(2, minimum=1)
    segment_min_seconds: float = setting(20.0, above=0)
    segment_max_seconds: float = setting(35.0, above=0)
    seed: int = 0
    silence_threshold_db: float = setting(-60.0, maximum=0)
    workers: int = setting(0, minimum=0)
    commit_every: int = setting(32, minimum=1)

    def validate(self) -> None:
        if self.segment_min_seconds > self.segment_max_seconds:
            raise SettingsError("ingest.segment_min_seconds must be at most segment_max_seconds")


@dataclass(frozen=True)
class CatalogSettings:
    """How the catalogue is shared between processes.

    lock_timeout_seconds: how long a command waits for another process to release the
      catalogue before giving up with a message (its work so far is kept).
    """

    lock_timeout_seconds: float = setting(120.0, above=0)


@dataclass(frozen=True)
class TaggingSettings:
    """How `curator tag` and `curator analyze` run plugins.

    vocabulary_dir: the project's vocabulary folder (one TOML file per facet).
    batch_size: segments a plugin gets at once (more is faster on a GPU, uses more memory).
    shard_size: segments per Parquet shard; each shard is merged into the catalogue in one
      short transaction, and is what an interrupted run loses at most.
    shard_seconds: a shard is also closed and merged once it has been open this long, so a
      slow run shows results as they come and an interruption loses little.
    min_confidence: analyzer values (tempo, key, scale) below this are stored but not used
      as labels (the seed project kept only estimates above 0.7).
    offline: never contact a model hub; models must be local (also HF_HUB_OFFLINE=1).
    device: "cpu", "cuda", or "auto" (cuda when available).
    engine: "local" (this process) or "ray" (a pool of Ray actors, docs/ray.md).
    ray_address: the Ray cluster to join ("auto", "ray://head:10001"); empty starts a local
      one for the run.
    ray_actors: actors in the pool (0: as many as the cluster's CPUs or GPUs allow).
    ray_cpus_per_actor / ray_gpus_per_actor: what each actor reserves (0.5 GPU: two
      actors share one).
    decode_workers: threads decoding audio ahead of the model in each process (0: auto,
      half the cores locally, an actor's reserved CPUs on Ray; a GPU needs several).
    """

    vocabulary_dir: str = "vocabularies"
    batch_size: int = setting(8, minimum=1)
    shard_size: int = setting(256, minimum=1)
    shard_seconds: float = setting(30.0, above=0)
    min_confidence: float = setting(0.7, minimum=0, maximum=1)
    offline: bool = False
    device: str = device_setting("auto")
    engine: str = setting("local", choices=("local", "ray"))
    ray_address: str = ""
    ray_actors: int = setting(0, minimum=0)
    ray_cpus_per_actor: float = setting(1.0, above=0)
    ray_gpus_per_actor: float = setting(0.0, minimum=0)
    decode_workers: int = setting(0, minimum=0)


@dataclass(frozen=True)
class TrainingSettings:
    """How fine-tuning and generation jobs run (`curator train`, `curator generate`).

    python: the .venv-train interpreter; empty means $CURATOR_TRAIN_PYTHON, else the
      repository's `.venv-train/bin/python` (built by `make setup`).
    max_gpu_jobs: jobs on a GPU at once on this machine; the others wait in the queue.
    lock_dir: where the machine-wide GPU slots live (empty: a folder under the temp dir).
    cancel_grace_seconds: after a cancel, how long a job may take to stop before it is killed.
    model_config / ckpt: the base model the app offers (e.g. Stable Audio Open 1.0 files).
    device: "cpu", "cuda" or "auto"; precision: "32", "16-mixed" (CUDA only), "bf16-mixed".
    batch_size, checkpoint_every, num_workers, learning_rate: training defaults.
    """

    python: str = ""
    max_gpu_jobs: int = setting(1, minimum=1)
    lock_dir: str = ""
    cancel_grace_seconds: float = setting(30.0, minimum=0)
    model_config: str = ""
    ckpt: str = ""
    device: str = setting("auto", choices=("cpu", "cuda", "auto"))
    precision: str = setting("32", choices=("32", "16-mixed", "bf16-mixed"))
    batch_size: int = setting(4, minimum=1)
    checkpoint_every: int = setting(500, minimum=1)
    num_workers: int = setting(2, minimum=0)
    learning_rate: float = setting(5e-5, above=0)


@dataclass(frozen=True)
class ExportSettings:
    """How `curator export` writes a training set (the CLI's flags override these).

    exporter: the exporter plugin that writes the trainer's files ("stable-audio-tools").
    format: "wav" or "flac", one audio file per segment (and per repeated copy).
    bit_depth: 16 or 24 bits per sample.
    sample_rate / channels: of the written audio (Stable Audio Open: 44100 Hz, 2).
    seconds: what the `seconds_start` / `seconds_total` conditioning says: "segment" (the
      segment as its own clip: 0 and its duration) or "track" (its position in the source
      track: its start and the track's duration).
    writer: whose prompts go in ("" = the newest of any writer); a curator's edit always
      wins. Segments without a prompt get one from this writer ("" = "template").
    seed: seed for the prompts written during an export.
    workers: threads decoding and writing audio (0: one per core, at most 4).
    """

    exporter: str = "stable-audio-tools"
    format: str = "wav"
    bit_depth: int = 16
    sample_rate: int = 44100
    channels: int = 2
    seconds: str = "segment"
    writer: str = ""
    seed: int = 0
    workers: int = 0


@dataclass(frozen=True)
class AppSettings:
    """Who may use the review app (`curator app`) and which files its pages may name.

    auth_file: the user list (YAML: bcrypt password hashes and the sign-in cookie's key),
      relative to the project; `curator app add-user NAME` writes it. While it holds a
      user, every page asks for a sign-in and changes are recorded under that name; the
      app serves other machines (`--host` other than loopback) only then.
    path_roots: folders, besides the project folder, whose files the Jobs and Generate
      pages accept (e.g. where the models are); a typed path elsewhere is refused.
    """

    auth_file: str = "users.yaml"
    path_roots: tuple[str, ...] = ()


@dataclass(frozen=True)
class RebalanceSettings:
    """Defaults of `curator rebalance` (its flags override them).

    max_repeats: the most copies of one segment a selection holds (rare tags are upsampled
      by repeating their segments up to this).
    validation: the fraction of a selection's tracks set aside for validation.
    repeat_factor_threshold: t of repeat-factor sampling, r = max(1, sqrt(t / f)); LVIS
      used 0.001 for 1,200 classes, a vocabulary of tens of tags needs a larger one.
    """

    max_repeats: int = setting(4, minimum=1)
    validation: float = setting(0.1, minimum=0, maximum=0.9)
    repeat_factor_threshold: float = setting(0.1, above=0)


@dataclass(frozen=True)
class SearchSettings:
    """How `curator search` and `curator similar` search cached embeddings.

    index: "exact" (numpy, every segment scored), "approximate" (faiss 8-bit codes scanned,
      the best candidates re-scored exactly) or "auto" (approximate from `approximate_from`
      segments with embeddings of the model). Exact search of 400,000 512-d rows takes
      about 40 ms here, as fast as the approximate scan; the approximate index reads a
      quarter of the bytes, which pays once the float rows no longer stay in memory
      (docs/search.md).
    """

    index: str = setting("auto", choices=("auto", "exact", "approximate"))
    approximate_from: int = setting(1_000_000, minimum=1)


@dataclass(frozen=True)
class Settings:
    """Everything in `curator.toml`; each table is optional.

    plugins: per-plugin tables (`[plugins.clap]`, ...), passed to each plugin as is.
    """

    ingest: IngestSettings = field(default_factory=IngestSettings)
    catalog: CatalogSettings = field(default_factory=CatalogSettings)
    tagging: TaggingSettings = field(default_factory=TaggingSettings)
    rebalance: RebalanceSettings = field(default_factory=RebalanceSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    app: AppSettings = field(default_factory=AppSettings)
    plugins: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_settings(path: Path) -> Settings:
    """Read `curator.toml`, filling in defaults and rejecting unknown keys by name."""
    data = read_toml(path)
    tables = {f.name: f.type for f in dataclasses.fields(Settings)}
    unknown = sorted(set(data) - set(tables))
    if unknown:
        raise SettingsError(f"{path}: unknown table(s) {names(unknown)}")
    defaults = Settings()
    parts = {
        name: _table(path, name, getattr(defaults, name), data.get(name, {}))
        for name in tables
        if name != "plugins"
    }
    settings = Settings(**parts, plugins=_plugin_tables(path, data.get("plugins", {})))
    settings.ingest.validate()
    return settings


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's tables, or a SettingsError naming the file and what is wrong with it."""
    try:
        return tomllib.loads(read_input_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML ({exc})") from exc


def _plugin_tables(path: Path, value: Any) -> dict[str, dict[str, Any]]:
    # Plugins check their own keys; here only the shape is checked.
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise SettingsError(
            f"{path}: [plugins] must hold one table per plugin, like [plugins.clap]"
        )
    return value


def _table(path: Path, name: str, default: Any, values: Any) -> Any:
    if not isinstance(values, dict):
        raise SettingsError(f"{path}: [{name}] must be a table, got {values!r}")
    reject_unknown_keys(type(default), values, f"{path}: [{name}]")
    return _checked_settings(default, values, lambda key: f"{path}: {name}.{key}")


def _checked_settings(defaults: Any, values: Mapping[str, Any], label: Any) -> Any:
    """`defaults` with `values` put over it, each checked for its type and its bounds."""
    converted = {
        key: typed_value(label(key), getattr(defaults, key), value) for key, value in values.items()
    }
    settings = dataclasses.replace(defaults, **converted)
    check_bounds(settings, label)
    return settings


def names(keys: list[str]) -> str:
    """Keys as a person can read them on one line: a key with a newline or a control
    character (a typo TOML allows in quotes) is shown quoted and escaped."""
    return ", ".join(key if key.isprintable() else repr(key) for key in keys)


def reject_unknown_keys(settings_class: type, values: Mapping[str, Any], table: str) -> None:
    """Raise SettingsError naming every key of `values` the settings dataclass lacks.

    Shared by curator.toml's own tables and by plugins checking their `[plugins.NAME]`.
    """
    known = [f.name for f in dataclasses.fields(settings_class)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise SettingsError(f"{table}: unknown key(s) {names(unknown)} (known: {', '.join(known)})")


def settings_from_table[T](settings_class: type[T], values: Mapping[str, Any], table: str) -> T:
    """A settings dataclass from a TOML table: defaults, then `values` checked by name and type.

    `table` names the table in errors, e.g. "[plugins.clap]". What every plugin's
    `from_mapping` starts with. Ranges and choices declared on a field with
    `curator.validation.setting` are checked here; checks across fields stay with the plugin.
    """
    reject_unknown_keys(settings_class, values, table)
    settings: T = _checked_settings(settings_class(), values, lambda key: f"{table} {key}")
    return settings


def typed_value(label: str, default: Any, value: Any) -> Any:
    """`value` checked against the type of `default` (ints widen to floats, lists to tuples).

    `label` names the setting in the error, e.g. "[plugins.clap] hop_seconds".
    """
    if isinstance(default, tuple):
        if not isinstance(value, list):
            raise SettingsError(f"{label} must be a list")
        kinds = {type(item) for item in default}
        if kinds and not all(type(item) in kinds for item in value):
            raise SettingsError(f"{label} must be a list of {kinds.pop().__name__}, got {value!r}")
        return tuple(value)
    if isinstance(default, bool) or not isinstance(default, int | float):
        expected: type = type(default)
    else:
        expected = float if isinstance(default, float) else int
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected) or isinstance(value, bool) != isinstance(default, bool):
        raise SettingsError(f"{label} must be {expected.__name__}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SettingsError(f"{label} must be a finite number, got {value!r}")
    return value


# What `curator init` writes: every key with its default and a comment a curator can read.
# tests/test_settings.py checks it against the dataclasses above, key by key, value by value.
DEFAULT_TOML = """\
# Curator project settings. Every key is optional: the values below are the defaults.
# Edit a value to change it; delete a line to go back to the default.

[ingest]
# File name endings scanned for (case-insensitive).
extensions = ["wav", "flac", "mp3", "ogg", "aiff", "aif"]
# Segments cut from each track, and their length bounds in seconds. A track shorter
# than one segment is skipped; one too short for all of them gets as many as fit.
segments_per_track = 2
segment_min_seconds = 20.0
segment_max_seconds = 35.0
# Segment choice is reproducible for a given seed (and each track's content).
seed = 0
# A segment quieter than this RMS level (dBFS) is flagged silent and left out of training.
silence_threshold_db = -60.0
# Threads that hash and probe files (0: one per core); files per catalogue transaction.
workers = 0
commit_every = 32

[catalog]
# Seconds to wait for another process to release the catalogue before giving up.
lock_timeout_seconds = 120.0

[tagging]
# The project's vocabulary: one TOML file per facet (tags, synonyms, thresholds, top_k).
vocabulary_dir = "vocabularies"
# Segments per model call, and per Parquet shard merged into the catalogue at once; a
# shard is also merged once it has been open this many seconds (results show as they come).
batch_size = 8
shard_size = 256
shard_seconds = 30.0
# Analyzer values (tempo, key, scale) below this confidence are kept but not used as labels.
min_confidence = 0.7
# true: never contact a model hub (also when HF_HUB_OFFLINE=1); "cpu", "cuda" or "auto".
offline = false
device = "auto"
# "local" runs plugins in this process; "ray" spreads segments over a pool of Ray actors
# (docs/ray.md). ray_address: "auto" or "ray://head:10001" joins a cluster, "" starts one
# for the run; ray_actors = 0 fits as many as the CPUs (or GPUs) allow; what each reserves.
engine = "local"
ray_address = ""
ray_actors = 0
ray_cpus_per_actor = 1.0
ray_gpus_per_actor = 0.0
# Threads decoding audio ahead of the model in each process; 0: half the cores locally, an
# actor's CPUs on Ray (a GPU eats windows faster than one thread decodes them).
decode_workers = 0

[rebalance]
# The most copies of one segment in a selection; the share of its tracks kept for
# validation; repeat-factor sampling's threshold t (r = max(1, sqrt(t / tag frequency))).
max_repeats = 4
validation = 0.1
repeat_factor_threshold = 0.1

[search]
# "exact" scores every segment (numpy), "approximate" scans 8-bit codes (faiss) and re-scores
# the best exactly; "auto" is approximate from this many segments (docs/search.md: exact
# search takes about 40 ms at 400,000).
index = "auto"
approximate_from = 1000000

# Each plugin reads its own table; see `curator plugins` and docs/plugins.md.
# [plugins.clap]
# model = "laion/larger_clap_music"      # a hub id or a local folder
# [plugins.essentia]
# bpm_method = "degara"

[training]
# The .venv-train interpreter ("": $CURATOR_TRAIN_PYTHON, else the repository's .venv-train).
python = ""
# Jobs on a GPU at once on this machine (the rest wait their turn); where the slots live.
max_gpu_jobs = 1
lock_dir = ""
# Seconds a cancelled job gets to stop by itself before it is killed.
cancel_grace_seconds = 30.0
# The base model the app offers: a model_config.json and its .ckpt/.safetensors.
model_config = ""
ckpt = ""
# Training defaults: "cpu", "cuda" or "auto"; precision "32", "16-mixed" (CUDA only) or
# "bf16-mixed" (half the memory on a GPU).
device = "auto"
precision = "32"
batch_size = 4
checkpoint_every = 500
num_workers = 2
learning_rate = 5e-5

[export]
# The exporter plugin that writes the trainer's files (see `curator plugins`).
exporter = "stable-audio-tools"
# Each segment (and each repeated copy) as its own file: "wav" or "flac", 16 or 24 bits.
format = "wav"
bit_depth = 16
sample_rate = 44100
channels = 2
# seconds_start/seconds_total: "segment" (the segment as its own clip) or "track" (its
# position in the source track, as the seed kept start offsets).
seconds = "segment"
# Whose prompts go in ("": the newest of any writer; a curator's edit always wins), and
# the seed for prompts written for segments that have none yet ("" writes with "template").
writer = ""
seed = 0
# Threads decoding and writing audio (0: one per core, at most 4).
workers = 0

[app]
# The app's user list (bcrypt hashes; `curator app add-user NAME` adds one). With a user in
# it every page asks for a sign-in; without one the app serves this machine only.
auth_file = "users.yaml"
# Folders besides the project whose files the Jobs and Generate pages accept (e.g. models).
path_roots = []
"""
