"""Metadata in the seed's format: export, and import into a fresh project of the same audio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curator.catalogue.ingest import ingest
from curator.catalogue.metadata import import_metadata, segment_metadata
from curator.project import Project, init_project
from curator.storage import HumanLabel


@pytest.fixture
def labelled(tmp_path: Path, write_audio) -> tuple[Project, Path]:
    folder = write_audio("beats/39118.wav", 80).parent
    write_audio("beats/40000.wav", 60, seed=1)
    project = init_project(tmp_path / "a")
    ingest(project, [folder])
    first, second = (r["id"] for r in project.catalog.segment_rows()[:2])
    project.catalog.apply_human_labels(
        [
            HumanLabel(first, "instruments", "plucked guitar"),
            HumanLabel(first, "instruments", "synth bells"),
            HumanLabel(first, "genres", "rap with soul"),
            HumanLabel(first, "moods", "melancholic"),
            HumanLabel(first, "tempo", "tempo", value="109"),
            HumanLabel(first, "key", "key", value="G"),
            HumanLabel(first, "scale", "scale", value="minor"),
            HumanLabel(second, "instruments", "808"),
            HumanLabel(second, "instruments", "snare", present=False),
        ],
        actor="ana",
        batch_id="b1",
    )
    return project, folder


def test_export_shows_effective_labels_in_the_seed_format(labelled) -> None:
    project, _ = labelled
    records = segment_metadata(project)
    first = records[project.catalog.segment_rows()[0]["id"]]
    assert first["instruments_tags"] == ["plucked guitar", "synth bells"]
    assert (first["genres_tags"], first["moods_tags"]) == (["rap with soul"], ["melancholic"])
    assert (first["tempo"], first["key"], first["scale"]) == (109.0, "G", "minor")
    second = records[project.catalog.segment_rows()[1]["id"]]
    assert second["instruments_tags"] == ["808"], "a rejected tag is not exported"


@pytest.mark.parametrize("human", [True, False])
def test_import_of_the_export_reproduces_it(labelled, tmp_path: Path, run_cli, human) -> None:
    project, folder = labelled
    exported = tmp_path / "meta.json"
    run_cli("metadata", "export", "--out", exported, "--project", project.root)
    fresh = init_project(tmp_path / "b")
    ingest(fresh, [folder])
    args = ["metadata", "import", exported, "--source", "seed-clap", "--project", fresh.root]
    result = run_cli(*args, *(["--human"] if human else []))
    assert "0 record(s) unmatched" in result.output
    assert segment_metadata(fresh) == json.loads(exported.read_text())


def test_seed_records_match_by_file_name_and_start(labelled, tmp_path: Path) -> None:
    _, folder = labelled
    fresh = init_project(tmp_path / "b")
    ingest(fresh, [folder])
    rows = [r for r in fresh.catalog.segment_rows() if r["source"].endswith("39118.wav")]
    later = max(rows, key=lambda r: r["start"])
    seed = {
        "39118.wav": {
            "instruments_tags": ["movie sample"],
            "genres_tags": [],
            "moods_tags": ["love"],
            "key": "A",
            "scale": "major",
            "tempo": 92.0,
            "start": later["start"] + 1,
            "duration": 20,
        },
        "missing.wav": {"instruments_tags": ["piano"], "start": 0, "duration": 20},
    }
    (tmp_path / "seed.json").write_text(json.dumps(seed))
    summary = import_metadata(fresh, tmp_path / "seed.json", "seed", human=False)
    assert summary.segments == 1 and summary.unmatched[0][0] == "missing.wav"
    record = segment_metadata(fresh)[later["id"]]
    assert record["instruments_tags"] == ["movie sample"] and record["moods_tags"] == ["love"]
    assert (record["tempo"], record["key"], record["scale"]) == (92.0, "A", "major")


def test_a_human_label_wins_over_an_imported_model_label(labelled, tmp_path: Path) -> None:
    project, _ = labelled
    second = project.catalog.segment_rows()[1]["id"]
    (tmp_path / "m.json").write_text(json.dumps({second: {"instruments_tags": ["snare"]}}))
    import_metadata(project, tmp_path / "m.json", "other-tool", human=False)
    assert segment_metadata(project)[second]["instruments_tags"] == ["808"]
