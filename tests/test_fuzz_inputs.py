"""Fuzz every way in: metadata files, the review library, vocabulary files and curator.toml.

Each generated input must end in a clean error (a CuratorError of one short line) or in
values the catalogue can use; afterwards `metadata export`, `prompts` and `export` still
work on the same project. One project serves every example.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from typing import Any

import pytest
from conftest import two_tone_project
from hypothesis import event, given, settings
from hypothesis import strategies as st

from curator.catalogue.metadata import import_metadata
from curator.curation.review import ReviewFilter, bulk_relabel, save_segment, set_labels
from curator.errors import CuratorError
from curator.project import Project, open_project
from curator.storage import HumanLabel
from curator.validation import TAG_MAX_CHARS, VALUE_CHECKS, bounds_problem
from curator.vocabulary import add_tag, default_vocabulary_dir, load_vocabulary

FUZZ = settings(max_examples=100, deadline=None, database=None)

# What a curator's vocabulary holds, so that many inputs are valid or nearly so.
DEFAULT = load_vocabulary(default_vocabulary_dir())
TAGS = sorted({tag.name for tag in DEFAULT.tags()})
FACETS = [*DEFAULT.facet_names, "tempo", "key", "scale"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return two_tone_project(
        tmp_path_factory.mktemp("beats"), tmp_path_factory.mktemp("fuzz") / "project"
    )


@pytest.fixture(scope="module")
def segment_ids(project: Project) -> list[str]:
    return [row["id"] for row in project.catalog.segment_rows(include_unusable=True)]


# -- strategies -------------------------------------------------------------------------------

text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()  # NaN and infinities included
    | text
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
tag_like = st.sampled_from(
    [*TAGS, "", "  ", "banjo", "x" * (TAG_MAX_CHARS + 1), "a\nb", "tab\there", "🎷"]
) | st.text(max_size=70)
tag_lists = st.lists(tag_like, max_size=4) | json_values
tempos = st.sampled_from(["109", "92.5", "fast", "1e999", "", "nan"]) | scalars
keys = st.sampled_from(["G", "Gb", "f sharp", "A♭", "H", "G minor", "", "c#"]) | scalars
scales = st.sampled_from(["major", "Minor", "dorian", ""]) | scalars
wild_records = st.fixed_dictionaries(
    {},
    optional={
        "instruments_tags": tag_lists,
        "genres_tags": tag_lists,
        "moods_tags": tag_lists,
        "drums_tags": tag_lists,
        "tempo": tempos,
        "key": keys,
        "scale": scales,
        "start": st.floats(-10, 100) | scalars,
        "duration": st.floats(-1, 40) | scalars,
        "source": scalars,
        "prompt": text,
    },
)


# Records a curator would write, so that imports also succeed and store values.
def good_tags(facet: str) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from([t.name for t in DEFAULT.facet(facet).tags]), max_size=3)


good_records = st.fixed_dictionaries(
    {},
    optional={
        "instruments_tags": good_tags("instruments"),
        "genres_tags": good_tags("genres"),
        "moods_tags": good_tags("moods"),
        "tempo": st.floats(20, 400) | st.sampled_from(["92.5", 140]),
        "key": st.sampled_from(["G", "Gb", "f sharp", "A♭", "c#", "B"]),
        "scale": st.sampled_from(["major", "Minor"]),
        "prompt": text,
    },
)
records = good_records | wild_records


@st.composite
def metadata_files(draw: st.DrawFn, segment_ids: list[str]) -> bytes:
    """The bytes of a metadata file: good records, good ones and a bad one, or anything."""
    ids = st.sampled_from(segment_ids)
    good = draw(st.dictionaries(ids, good_records, min_size=1, max_size=3))
    record_keys = ids | st.sampled_from(["beat0.wav", "gone.wav"]) | text
    kind = draw(st.sampled_from(["good", "one bad", "keyed", "jsonl", "json", "text", "bytes"]))
    if kind == "good":
        return json.dumps(good).encode()
    if kind == "one bad":
        return json.dumps({**good, draw(record_keys): draw(wild_records | json_values)}).encode()
    if kind == "keyed":
        return json.dumps(draw(st.dictionaries(record_keys, records, max_size=3))).encode()
    if kind == "jsonl":
        lines = draw(st.lists(st.tuples(record_keys, records), max_size=3))
        return "".join(json.dumps({"id": key, **r}) + "\n" for key, r in lines).encode()
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "text":
        return draw(text).encode("utf-8")
    return draw(st.binary(max_size=40))


@st.composite
def human_labels(draw: st.DrawFn, segment_ids: list[str]) -> HumanLabel:
    """Mostly a change a review page would make; else anything at all."""
    segment = draw(st.sampled_from(segment_ids))
    if draw(st.booleans()):
        facet = draw(st.sampled_from(FACETS))
        if facet in VALUE_CHECKS:
            value = draw({"tempo": tempos, "key": keys, "scale": scales}[facet])
            return HumanLabel(segment, facet, facet, value=value)
        tags = [t.name for t in DEFAULT.facet(facet).tags]
        return HumanLabel(segment, facet, draw(st.sampled_from(tags)), draw(st.booleans()))
    facet = draw(st.sampled_from(FACETS) | tag_like)
    tag = facet if facet in VALUE_CHECKS and draw(st.booleans()) else draw(tag_like)
    value = {"tempo": tempos, "key": keys, "scale": scales}.get(facet, st.none() | text)
    return HumanLabel(
        draw(st.sampled_from([segment, "no-such-segment"]) | text),
        facet,
        tag,
        present=draw(st.booleans() | scalars),
        value=draw(value),
    )


def toml_text(table: dict[str, Any]) -> str:
    """`table` as TOML, each top-level key on one line (inline tables and arrays)."""
    return "".join(f"{json.dumps(key)} = {toml_value(value)}\n" for key, value in table.items())


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items() if v is not None)
        return "{" + ", ".join(items) + "}"
    return '""'


good_synonyms = st.lists(st.sampled_from(["soft", "thick", "wide"]), max_size=2)
toml_scalars = (
    st.booleans() | st.integers(-5, 10**6) | st.floats() | text | st.lists(text, max_size=3)
)
good_vocabulary = st.fixed_dictionaries(
    {
        "facet": st.just("textures"),
        "tags": st.dictionaries(st.sampled_from(["grainy", "airy", "lush"]), good_synonyms),
    },
    optional={"threshold": st.floats(0, 1), "top_k": st.integers(1, 5)},
)
wild_vocabulary = st.fixed_dictionaries(
    {},
    optional={
        "facet": st.sampled_from(["textures", "moods", "tempo", "", "a\nb"]) | toml_scalars,
        "threshold": st.floats(-1, 2) | toml_scalars,
        "top_k": st.integers(-2, 5) | toml_scalars,
        "tags": st.dictionaries(tag_like, st.lists(tag_like, max_size=2) | toml_scalars),
        "thresholds": st.dictionaries(tag_like, st.floats(-1, 2) | toml_scalars, max_size=2),
        "colour": toml_scalars,
    },
)
vocabulary_tables = good_vocabulary | wild_vocabulary
SETTINGS_KEYS = {
    "tagging": ["batch_size", "shard_size", "min_confidence", "device", "offline"],
    "catalog": ["lock_timeout_seconds"],
    "ingest": ["segments_per_track", "segment_min_seconds", "extensions", "commit_every"],
    "training": ["device", "precision", "batch_size", "learning_rate"],
    "rebalance": ["max_repeats", "validation"],
    "plugins": ["clap", "essentia"],
    "nonsense": ["x"],
}
settings_tables = st.sampled_from(sorted(SETTINGS_KEYS)).flatmap(
    lambda name: st.dictionaries(
        st.sampled_from(SETTINGS_KEYS[name]) | text, toml_scalars, max_size=3
    ).map(lambda values: {name: values})
)


# -- what a clean outcome is ------------------------------------------------------------------


def assert_clean(error: CuratorError) -> None:
    event(f"refused: {type(error).__name__}")
    message = str(error)
    assert message and "\n" not in message and len(message) < 600, message
    assert "Traceback" not in message


def assert_catalogue_valid(project: Project) -> None:
    """Every stored label is a vocabulary tag or a normalised tempo, key or scale."""
    vocabulary = project.vocabulary()
    for label in project.catalog.labels():
        facet, tag, value = label["facet"], label["tag"], label["value"]
        if facet in VALUE_CHECKS:
            assert tag == facet and (value is None or VALUE_CHECKS[facet](value) == value), label
        else:
            assert vocabulary.facet(facet).tag(tag) is not None, label


# -- the fuzz tests ---------------------------------------------------------------------------


@FUZZ
@given(data=st.data(), human=st.booleans())
def test_metadata_files(project: Project, segment_ids: list[str], data, human: bool) -> None:
    path = project.root / "fuzz-labels.json"
    path.write_bytes(data.draw(metadata_files(segment_ids), label="file"))
    try:
        summary = import_metadata(project, path, "fuzz", human=human)
        event(f"imported {'some' if summary.labels else 'no'} labels")
    except CuratorError as error:
        assert_clean(error)
    assert_catalogue_valid(project)


@FUZZ
@given(
    data=st.data(),
    note=st.none() | text | st.text(min_size=2001, max_size=2001) | scalars,
    excluded=st.none() | st.booleans() | scalars,
    bulk=st.tuples(st.sampled_from(["add", "remove", "rename", "explode"]), tag_like),
)
def test_the_review_library(
    project: Project, segment_ids: list[str], data, note: Any, excluded: Any, bulk: tuple
) -> None:
    labels = data.draw(st.lists(human_labels(segment_ids), min_size=1, max_size=3), label="labels")
    action, tag = bulk
    for change in (
        lambda: set_labels(project, labels, actor="fuzz"),
        lambda: save_segment(project, labels[0].segment_id, labels, note, excluded),
        lambda: bulk_relabel(project, ReviewFilter(), action, labels[0].facet, tag, tag),
    ):
        try:
            change()
            event("saved")
        except CuratorError as error:
            assert_clean(error)
    assert_catalogue_valid(project)


@FUZZ
@given(
    table=vocabulary_tables,
    raw=st.none() | st.binary(max_size=30),
    new=st.tuples(st.sampled_from(FACETS), tag_like),
)
def test_vocabulary_files(
    project: Project, table: dict[str, Any], raw: bytes | None, new: tuple[str, str]
) -> None:
    folder = project.vocabulary_dir
    extra = folder / "zz-fuzz.toml"
    extra.write_bytes(raw if raw is not None else toml_text(table).encode())
    try:
        vocabulary = load_vocabulary(folder)
        event("loaded")
    except CuratorError as error:
        assert_clean(error)
    else:
        for tag in vocabulary.tags():
            assert 0 < len(tag.name) <= TAG_MAX_CHARS and tag.name.isprintable()
            assert 0 <= tag.threshold <= 1
        assert all(f.top_k >= 1 for f in vocabulary.facets)
    finally:
        extra.unlink()
    try:
        add_tag(folder, *new)
        event("tag added")
    except CuratorError as error:
        assert_clean(error)
    load_vocabulary(folder)  # a tag added or refused, the folder still loads


@FUZZ
@given(table=settings_tables, raw=st.none() | st.binary(max_size=30))
def test_curator_toml(project: Project, table: dict[str, Any], raw: bytes | None) -> None:
    path = project.root / "curator.toml"
    original = path.read_bytes()
    path.write_bytes(raw if raw is not None else toml_text(table).encode())
    try:
        loaded = open_project(project.root).settings
        event("loaded")
    except CuratorError as error:
        assert_clean(error)
    else:
        for part in (loaded.ingest, loaded.catalog, loaded.tagging, loaded.training):
            for settings_field in fields(part):
                value = getattr(part, settings_field.name)
                assert bounds_problem(settings_field, value) is None, (settings_field, value)
    finally:
        path.write_bytes(original)


def test_after_all_of_it_the_project_still_exports(project: Project, run_cli, tmp_path) -> None:
    """Runs last (pytest keeps file order): the fuzzed catalogue is read by every reader."""
    labels = project.catalog.labels()
    assert any(x["source_kind"] == "human" for x in labels), "some fuzzed inputs were stored"
    assert any(x["facet"] in VALUE_CHECKS for x in labels), "values among them"
    for command in (("metadata", "export"), ("prompts",), ("export", tmp_path / "out")):
        run_cli(*command, "--project", project.root)
    assert (tmp_path / "out" / "train").is_dir()
