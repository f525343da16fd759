"""One validation layer at every way in: metadata files, the review library, vocabularies,
curator.toml and plugin settings refuse a bad value with one line, and write nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import two_tone_project

from curator.catalogue.metadata import import_metadata, segment_metadata
from curator.curation.review import (
    ReviewFilter,
    bulk_relabel,
    review_page,
    save_segment,
    set_labels,
)
from curator.errors import CuratorError, InvalidInput, SettingsError
from curator.plugins.clap.settings import ClapSettings
from curator.plugins.learned.settings import LearnedSettings
from curator.plugins.minilm.settings import MiniLMSettings
from curator.plugins.musicnn.settings import MusicnnSettings
from curator.project import Project, open_project
from curator.settings import load_settings
from curator.storage import HumanLabel
from curator.validation import key_name, tempo_text
from curator.vocabulary import add_tag, load_vocabulary

LONG = "x" * 10_000


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tracks, four segments, the default vocabulary: made once, copied per test."""
    audio = tmp_path_factory.mktemp("beats")
    return two_tone_project(audio, tmp_path_factory.mktemp("template") / "project").root


@pytest.fixture
def project(ingested: Path, tmp_path: Path) -> Project:
    shutil.copytree(ingested, tmp_path / "project")
    return open_project(tmp_path / "project")


def first_segment(project: Project) -> str:
    return project.catalog.segment_rows()[0]["id"]


def stored(project: Project) -> tuple[int, int, int]:
    """Labels, history rows and runs: what any write would change."""
    catalog = project.catalog
    return len(catalog.labels()), len(catalog.label_history()), len(catalog.runs())


def import_file(project: Project, tmp_path: Path, content: str | bytes, human: bool = True):
    path = tmp_path / "labels.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return import_metadata(project, path, "seed", human=human)


# -- defect 3: a bad value poisoned the catalogue -------------------------------------------


def test_a_tempo_that_is_not_a_number_is_refused_and_every_reader_still_works(
    project: Project, tmp_path: Path, run_curator
) -> None:
    segment = first_segment(project)
    path = tmp_path / "t.json"
    path.write_text(json.dumps({segment: {"tempo": "fast"}}))
    result = run_curator(
        "metadata", "import", path, "--source", "x", "--human", "--project", project.root
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: {path}: record {segment!r}: tempo: must be a number of BPM, got 'fast'"
    ]
    assert stored(project) == (0, 0, 0)
    with pytest.raises(InvalidInput, match="tempo"):
        set_labels(project, [HumanLabel(segment, "tempo", "tempo", value="fast")])
    with pytest.raises(InvalidInput, match="tempo"):
        save_segment(project, segment, [HumanLabel(segment, "tempo", "tempo", value="fast")])
    assert stored(project) == (0, 0, 0)
    for command in (("metadata", "export"), ("prompts",), ("export", tmp_path / "out")):
        result = run_curator(*command, "--project", project.root, timeout=300)
        assert result.returncode == 0, result.stderr


# -- metadata files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"instruments_tags": "piano"}, "instruments_tags: Input should be a valid list"),
        ({"instruments_tags": [None, 3, True]}, r"instruments_tags\[0\]: a tag must be text"),
        ({"moods_tags": [LONG]}, "at most 64 characters, got 10000"),
        ({"moods_tags": [""]}, "cannot be empty"),
        ({"moods_tags": ["dark\nlight"]}, "one line of printable characters"),
        ({"instruments_tags": ["banjo"]}, "no tag 'banjo' in the instruments vocabulary"),
        ({"drums_tags": ["kick"]}, "unknown tag list"),
        ({"tempo": float("nan")}, "tempo: must be 20-400 BPM"),
        ({"tempo": 1e9}, "tempo: must be 20-400 BPM"),
        ({"tempo": True}, "tempo: must be a number of BPM"),
        ({"key": "H"}, "key: must be a pitch class"),
        ({"key": "G minor"}, "key: must be a pitch class"),
        ({"scale": "dorian"}, "scale: must be one of major, minor"),
        ({"start": "abc"}, "start: Input should be a valid number"),
    ],
)
def test_a_bad_record_refuses_the_whole_file(
    project: Project, tmp_path: Path, record, reason
) -> None:
    first, second = (row["id"] for row in project.catalog.segment_rows()[:2])
    records = {first: {"instruments_tags": ["808"], "tempo": 92}, second: record}
    with pytest.raises(InvalidInput, match=reason) as caught:
        import_file(project, tmp_path, json.dumps(records))
    assert f"record {second!r}" in str(caught.value) and "\n" not in str(caught.value)
    assert stored(project) == (0, 0, 0), "nothing of the good record went in either"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "holds no records"),
        ("{}", "holds no records"),
        ("[1, 2]", "a JSON list; expected an object of records"),
        ('"text"', "a JSON str"),
        ('{"a-segment": 3}', "record 'a-segment': must be a JSON object, got a int"),
        ("[" * 100_000, "nested too deeply|neither a JSON object"),
        ('{"id": "x"}\nnot json\n', "line 2: neither a JSON object nor JSON lines"),
        (b"\xff\xfe{}", "not UTF-8 text"),
    ],
)
def test_a_file_that_is_not_records_is_refused(project, tmp_path: Path, content, reason) -> None:
    with pytest.raises(InvalidInput, match=reason):
        import_file(project, tmp_path, content, human=False)
    assert stored(project) == (0, 0, 0), "no import run is recorded either"


@pytest.mark.parametrize("path", ["/proc/self/mem", "/dev/zero", "/sys/kernel/notes"])
def test_a_system_path_gives_one_line(project: Project, path: str, run_curator) -> None:
    if not Path(path).exists():
        pytest.skip(f"{path} does not exist here")
    args = ("metadata", "import", path, "--source", "x", "--project", project.root)
    result = run_curator(*args)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"Error: {path}: ") and len(result.stderr.splitlines()) == 1


def test_values_are_normalised_to_one_spelling(project: Project, tmp_path: Path) -> None:
    segment = first_segment(project)
    record = {"key": "Gb", "scale": "Minor", "tempo": "92.50", "moods_tags": [" dark ", "dark"]}
    import_file(project, tmp_path, json.dumps({segment: record}))
    exported = segment_metadata(project)[segment]
    assert (exported["key"], exported["scale"], exported["tempo"]) == ("F#", "minor", 92.5)
    assert exported["moods_tags"] == ["dark"]
    assert [key_name(k) for k in ("f sharp", "G♭", "Bb", "a-flat", "c")] == [
        "F#",
        "F#",
        "A#",
        "G#",
        "C",
    ]
    assert tempo_text(109) == "109"


def test_a_record_matching_no_segment_is_reported_and_an_all_unmatched_file_records_no_run(
    project: Project, tmp_path: Path
) -> None:
    summary = import_file(project, tmp_path, json.dumps({"gone.wav": {"moods_tags": ["dark"]}}))
    assert summary.unmatched == [
        ("gone.wav", "no segment id or audio file of this name in the project")
    ]
    assert stored(project) == (0, 0, 0)


# -- the review library -----------------------------------------------------------------------


def test_review_changes_are_checked_before_anything_is_written(project: Project) -> None:
    segment = first_segment(project)
    bad = {
        "an unknown segment": HumanLabel("no-such-segment", "moods", "dark"),
        "an unknown facet": HumanLabel(segment, "colours", "red"),
        "a tag not in the vocabulary": HumanLabel(segment, "moods", "banjo"),
        "an empty tag": HumanLabel(segment, "moods", " "),
        "a long tag": HumanLabel(segment, "moods", LONG),
        "a key that is no pitch class": HumanLabel(segment, "key", "key", value="H"),
        "a scale not known": HumanLabel(segment, "scale", "scale", value="lydian"),
        "a tempo out of range": HumanLabel(segment, "tempo", "tempo", value="1e9"),
    }
    good = HumanLabel(segment, "moods", "dark")
    for what, label in bad.items():
        with pytest.raises(CuratorError) as caught:
            set_labels(project, [good, label])
        assert "\n" not in str(caught.value), what
        with pytest.raises(CuratorError):
            save_segment(project, segment, [good, label], note="checked", excluded=True)
    assert stored(project) == (0, 0, 0)
    (row,) = [r for r in review_page(project, ReviewFilter()).segments if r["id"] == segment]
    assert row["note"] is None and not row["excluded"]


def test_a_review_saves_labels_and_flags_in_one_transaction(project: Project) -> None:
    segment = first_segment(project)
    with pytest.raises(CuratorError, match="no segment 'gone'"):
        # The labels are fine; the flags name a segment that is not there.
        project.catalog.save_review("gone", [HumanLabel(segment, "moods", "dark")], "ana", "b1")
    assert stored(project) == (0, 0, 0)
    _, changed = save_segment(
        project, segment, [HumanLabel(segment, "key", "key", value="eb")], note="ok", actor="ana"
    )
    assert changed == 2
    assert [(h["facet"], h["new_value"]) for h in project.catalog.label_history()] == [
        ("key", "D#"),
        ("_segment", "ok"),
    ]


def test_bulk_relabel_never_adds_an_empty_or_unknown_tag(project: Project) -> None:
    everything = ReviewFilter()
    for tag in ("", "   ", None, "banjo", LONG):
        with pytest.raises(InvalidInput):
            bulk_relabel(project, everything, "add", "moods", tag)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="no tag 'banjo'"):
        bulk_relabel(project, everything, "rename", "moods", "dark", new_tag="banjo")
    with pytest.raises(InvalidInput, match="no facet"):
        bulk_relabel(project, everything, "add", "colours", "red")
    assert stored(project) == (0, 0, 0)
    _, changed = bulk_relabel(project, everything, "add", "moods", "dark")
    assert changed == review_page(project, everything).total


def test_a_tag_dropped_from_the_vocabulary_can_still_be_removed(project: Project) -> None:
    segment = first_segment(project)
    set_labels(project, [HumanLabel(segment, "moods", "dark")])
    path = project.vocabulary_dir / "moods.toml"
    path.write_text(path.read_text().replace('"dark" =', '"darker" ='))
    _, removed = bulk_relabel(project, ReviewFilter("moods", "dark"), "remove", "moods", "dark")
    assert removed == 1


# -- vocabulary files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('facet = "moods"\ncolour = "red"\n[tags]\n"dark" = []\n', "unknown key colour"),
        ('facet = "moods"\nthreshold = 1.5\n[tags]\n"dark" = []\n', "threshold"),
        ('facet = "moods"\nthreshold = nan\n[tags]\n"dark" = []\n', "finite"),
        ('facet = "moods"\ntop_k = 0\n[tags]\n"dark" = []\n', "top_k"),
        ('facet = "moods"\n[tags]\n"" = []\n', "cannot be empty"),
        (f'facet = "moods"\n[tags]\n"{LONG}" = []\n', "at most 64 characters"),
        ('facet = "moods"\n[tags]\n"dark" = "gloomy"\n', "dark"),
        ('facet = "moods"\n[tags]\n"dark" = [1]\n', "must be text"),
        ('facet = "tempo"\n[tags]\n"fast" = []\n', "taken by the tempo"),
        ('facet = "moods"\n[tags]\n"dark" = []\n[thresholds]\nlight = 0.3\n', "unknown tag"),
    ],
)
def test_a_bad_vocabulary_file_is_named(tmp_path: Path, text: str, reason: str) -> None:
    (tmp_path / "moods.toml").write_text(text)
    with pytest.raises(SettingsError, match=reason) as caught:
        load_vocabulary(tmp_path)
    assert str(caught.value).startswith(str(tmp_path / "moods.toml"))


def test_a_vocabulary_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    (tmp_path / "moods.toml").write_bytes(b'facet = "\xff"\n')
    with pytest.raises(CuratorError, match="not UTF-8"):
        load_vocabulary(tmp_path)


def test_a_new_tag_is_checked_and_the_file_stays_valid(project: Project) -> None:
    folder = project.vocabulary_dir
    before = (folder / "moods.toml").read_text()
    for tag in ("", "two\nlines", LONG):
        with pytest.raises(InvalidInput):
            add_tag(folder, "moods", tag)
    with pytest.raises(InvalidInput, match="no facet"):
        add_tag(folder, "colours", "red")
    assert (folder / "moods.toml").read_text() == before
    assert add_tag(folder, "moods", " 🎷 smoky ") == "🎷 smoky"
    assert project.vocabulary().facet("moods").tag("🎷 smoky") is not None


# -- curator.toml and plugin settings --------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        ("[tagging]\nbatch_size = 0", "tagging.batch_size must be at least 1, got 0"),
        ("[tagging]\nshard_size = 0", "tagging.shard_size must be at least 1"),
        ("[catalog]\nlock_timeout_seconds = 0", "lock_timeout_seconds must be more than 0"),
        ("[catalog]\nlock_timeout_seconds = inf", "must be a finite number"),
        ("[tagging]\ndevice = 'gpu'", "tagging.device must be one of cpu, cuda"),
        ("[tagging]\nmin_confidence = 2.0", "min_confidence must be between 0 and 1"),
        ("[training]\nprecision = '8'", "training.precision must be one of"),
        ("[rebalance]\nmax_repeats = 0", "max_repeats must be at least 1"),
        ("[ingest]\nextensions = [1, 2]", "extensions must be a list of str"),
        ("ingest = 3", r"\[ingest\] must be a table"),
    ],
)
def test_a_setting_out_of_range_is_refused_up_front(tmp_path: Path, table, reason) -> None:
    path = tmp_path / "curator.toml"
    path.write_text(table + "\n")
    with pytest.raises(SettingsError, match=reason):
        load_settings(path)


def test_batch_size_zero_stops_every_command_before_a_run(project: Project, run_cli) -> None:
    settings = project.root / "curator.toml"
    settings.write_text(settings.read_text().replace("batch_size = 8", "batch_size = 0"))
    result = run_cli("tag", "--plugin", "clap", "--project", project.root, expect=1)
    assert "tagging.batch_size must be at least 1, got 0" in result.output
    settings.write_text(settings.read_text().replace("batch_size = 0", "batch_size = 8"))
    assert open_project(project.root).catalog.runs() == []


def test_a_settings_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    (tmp_path / "curator.toml").write_bytes(b"[ingest]\nseed = 1 # \xff\n")
    with pytest.raises(CuratorError, match="not UTF-8"):
        load_settings(tmp_path / "curator.toml")


@pytest.mark.parametrize(
    ("build", "values", "reason"),
    [
        (ClapSettings.from_mapping, {"batch_windows": 0}, "batch_windows must be at least 1"),
        (ClapSettings.from_mapping, {"device": "gpu"}, "device must be one of"),
        (ClapSettings.from_mapping, {"hop_seconds": -1.0}, "hop_seconds must be more than 0"),
        (MiniLMSettings.from_mapping, {"device": "tpu"}, "device must be one of"),
        (LearnedSettings.from_mapping, {"threshold": 1.5}, "threshold must be at most 1"),
        (MusicnnSettings.from_table, {"graph_dir": 3}, "graph_dir"),
    ],
)
def test_plugin_settings_have_ranges(build, values, reason) -> None:
    with pytest.raises(SettingsError, match=reason):
        build(values)
    assert ClapSettings.from_mapping({"device": "cuda:1"}).device == "cuda:1"


@pytest.mark.parametrize(
    "args",
    [
        ("train", "--batch-size", "0"),
        ("train", "--steps", "0"),
        ("train", "--learning-rate", "0"),
        ("rebalance", "--max-repeats", "0"),
    ],
)
def test_numeric_options_are_refused_out_of_range(run_cli, args) -> None:
    # Before, 0 fell back to the default through `value or default` without a word.
    result = run_cli(*args, expect=2)
    assert f"Invalid value for '{args[1]}'" in result.output
