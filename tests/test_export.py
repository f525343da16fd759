"""`curator export`: audio per segment, manifest, repeats, splits, resuming, atomic replace."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

import curator.plugins.stable_audio_export as sat
import curator.plugins.template_writer as template_writer
from curator import hookimpl
from curator.catalogue.audio import decode_window
from curator.catalogue.ingest import ingest
from curator.curation.review import save_segment
from curator.errors import CuratorError, SettingsError
from curator.export.build import export, export_settings
from curator.export.records import MANIFEST, METADATA
from curator.export.staging import previous_path, staging_path
from curator.project import Project, init_project, open_project
from curator.storage import HumanLabel
from curator.storage.exports import exports
from curator.storage.prompts import HUMAN, PromptRow, effective_prompts, save_prompts
from curator.storage.selections import SelectionItem, save_selection
from curator.testing import registry_of

SATS = registry_of(sat)


SHORT_SEGMENTS = "[ingest]\nsegment_min_seconds = 4.0\nsegment_max_seconds = 6.0\n"


def short_segments(project: Project) -> Project:
    """The project with 4-6 s segments: the same code paths, a fraction of the audio."""
    (project.root / "curator.toml").write_text(SHORT_SEGMENTS)
    return open_project(project.root)


@pytest.fixture
def exportable(project: Project, write_audio) -> Project:
    """Three 15 s tone tracks (two segments each), every segment with its own prompt."""
    project = short_segments(project)
    for i in range(3):
        folder = write_audio(f"beats/track{i}.wav", 15.0, seed=i).parent
    ingest(project, [folder])
    ids = [row["id"] for row in project.catalog.segment_rows()]
    save_prompts(project.catalog, [PromptRow(i, "template@1", f"A beat, part {i}.") for i in ids])
    return project


def run(project: Project, out: Path, selection: str | None = None, **overrides):
    settings = export_settings(project, **overrides)
    return export(project, out, selection, settings, registry=SATS)


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / MANIFEST).read_text().splitlines()]


def select(project: Project, name: str = "picked") -> list[SelectionItem]:
    """Track 0's segments to validation, one train segment repeated three times.

    The first validation segment asks for two repeats too: validation writes each segment
    once, so the validation counts below check that rule.
    """
    rows = project.catalog.segment_rows()
    first_track = rows[0]["track_id"]
    items = [
        SelectionItem(
            r["id"],
            repeats={0: 2, 2: 3}.get(k, 1),
            weight=1.5,
            split="validation" if r["track_id"] == first_track else "train",
        )
        for k, r in enumerate(rows)
    ]
    save_selection(project.catalog, name, "test", items)
    return items


def test_every_usable_segment_becomes_its_own_file_with_its_audio(
    exportable: Project, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    summary = run(exportable, out)
    rows = {r["id"]: r for r in exportable.catalog.segment_rows()}
    records = manifest(out)
    assert summary.segments == summary.files == len(rows) == 6
    assert [r["filepath"] for r in records] == sorted(f"train/{i}.wav" for i in rows)
    for record in records:
        row = rows[record["segment_id"]]
        info = sf.info(str(out / record["filepath"]))
        assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "PCM_16")
        written, _ = sf.read(str(out / record["filepath"]), dtype="float32")
        expected = decode_window(Path(row["source"]), row["start"], row["duration"], 44100, 2)
        assert written.shape == expected.shape
        assert np.abs(written - expected).max() < 1e-4  # 16-bit rounding only
        assert record["prompt"] == f"A beat, part {row['id']}."
        assert (record["start"], record["duration"]) == (row["start"], row["duration"])
        assert (record["seconds_start"], record["seconds_total"]) == (0.0, row["duration"])
        assert record["source"] == row["source"] and record["track_id"] == row["track_id"]
    assert not staging_path(out).exists() and not (out / "validation").exists()
    assert pq.read_table(out / METADATA).to_pylist() == records


def test_manifest_holds_tags_tempo_key_and_a_curators_prompt_wins(
    exportable: Project, tmp_path: Path
) -> None:
    segment = exportable.catalog.segment_rows()[0]["id"]
    exportable.catalog.apply_human_labels(
        [
            HumanLabel(segment, "instruments", "808"),
            HumanLabel(segment, "moods", "dark"),
            HumanLabel(segment, "tempo", "tempo", value="140"),
            HumanLabel(segment, "key", "key", value="G"),
            HumanLabel(segment, "scale", "scale", value="minor"),
        ],
        actor="tester",
        batch_id="b1",
        action="review",
    )
    save_prompts(exportable.catalog, [PromptRow(segment, HUMAN, "Dark 808s at 140 BPM.")])
    out = tmp_path / "export"
    run(exportable, out)
    (record,) = [r for r in manifest(out) if r["segment_id"] == segment]
    assert record["prompt"] == "Dark 808s at 140 BPM."
    assert record["instruments_tags"] == ["808"] and record["moods_tags"] == ["dark"]
    assert (record["bpm"], record["key"], record["scale"]) == (140.0, "G", "minor")


def test_a_selection_gives_repeats_as_hard_links_and_a_folder_per_split(
    exportable: Project, tmp_path: Path
) -> None:
    items = select(exportable)
    out = tmp_path / "export"
    summary = run(exportable, out, "picked")
    records = manifest(out)
    train_copies = sum(i.repeats for i in items if i.split == "train")
    assert summary.files == len(records) == train_copies + 2 == 8
    assert summary.splits == {"train": 6, "validation": 2}
    repeated = next(i for i in items if i.repeats == 3)
    copies = [r for r in records if r["segment_id"] == repeated.segment_id]
    assert [r["copy"] for r in copies] == [0, 1, 2]
    paths = [out / r["filepath"] for r in copies]
    assert len({p.stat().st_ino for p in paths}) == 1, "copies should be hard links"
    for item in items:
        folder = out / item.split
        assert (folder / f"{item.segment_id}.wav").is_file()
    on_disk = sorted(str(p.relative_to(out)) for p in out.glob("*/*.wav"))
    assert on_disk == sorted(r["filepath"] for r in records)
    assert {r["weight"] for r in records} == {1.5}
    configs = {name: json.loads((out / name).read_text()) for name in sat.CONFIGS.values()}
    assert configs["dataset_config.json"]["datasets"][0]["path"] == str(out / "train")
    assert configs["val_dataset_config.json"]["datasets"][0]["path"] == str(out / "validation")


def test_same_selection_and_settings_give_byte_identical_manifests(
    exportable: Project, tmp_path: Path
) -> None:
    select(exportable)
    first = run(exportable, tmp_path / "a", "picked")
    second = run(exportable, tmp_path / "b", "picked")
    assert (tmp_path / "a" / MANIFEST).read_bytes() == (tmp_path / "b" / MANIFEST).read_bytes()
    assert first.content_hash == second.content_hash
    third = run(exportable, tmp_path / "c", "picked", seconds="track")
    assert third.content_hash != first.content_hash
    listed = exports(exportable.catalog)
    assert [row["path"] for row in listed] == [str(tmp_path / n) for n in "cba"]
    assert listed[0]["settings"]["seconds"] == "track" and listed[0]["n_files"] == 8


def test_flac_24_bit_at_another_rate_and_track_seconds(exportable: Project, tmp_path: Path) -> None:
    out = tmp_path / "export"
    run(exportable, out, format="flac", bit_depth=24, sample_rate=22050, seconds="track")
    rows = {r["id"]: r for r in exportable.catalog.segment_rows()}
    for record in manifest(out):
        assert record["filepath"].endswith(".flac")
        info = sf.info(str(out / record["filepath"]))
        assert (info.format, info.subtype, info.samplerate) == ("FLAC", "PCM_24", 22050)
        assert abs(info.duration - record["duration"]) < 0.01
        row = rows[record["segment_id"]]
        assert (record["seconds_start"], record["seconds_total"]) == (
            row["start"],
            row["track_duration"],
        )


def test_a_missing_source_is_named_and_the_rest_still_export(
    exportable: Project, tmp_path: Path
) -> None:
    rows = exportable.catalog.segment_rows()
    gone = Path(rows[0]["source"])
    gone.unlink()  # the catalogue still calls it ingested: nobody re-ran ingest
    out = tmp_path / "export"
    summary = run(exportable, out)
    lost = {r["id"] for r in rows if r["source"] == str(gone)}
    assert {segment for segment, _ in summary.left_out} == lost
    assert all(str(gone) in reason and "gone" in reason for _, reason in summary.left_out)
    assert {r["segment_id"] for r in manifest(out)} == {r["id"] for r in rows} - lost
    assert exports(exportable.catalog)[0]["left_out"] == sorted(summary.left_out)


def test_an_unreadable_source_is_named_with_the_reason(exportable: Project, tmp_path: Path) -> None:
    rows = exportable.catalog.segment_rows()
    Path(rows[0]["source"]).write_bytes(b"RIFF but not audio any more" * 100)
    summary = run(exportable, tmp_path / "export")
    assert summary.left_out and summary.segments == len(rows) - len(summary.left_out)
    assert all(rows[0]["source"] in reason for _, reason in summary.left_out)


def test_segments_excluded_after_the_selection_are_left_out_with_why(
    exportable: Project, tmp_path: Path
) -> None:
    items = select(exportable)
    save_segment(exportable, items[3].segment_id, [], excluded=True, actor="tester")
    summary = run(exportable, tmp_path / "export", "picked")
    (left_out,) = summary.left_out
    assert left_out[0] == items[3].segment_id and "excluded" in left_out[1]
    assert items[3].segment_id not in {r["segment_id"] for r in manifest(tmp_path / "export")}


def test_an_interrupted_export_keeps_the_previous_and_resumes_without_duplicates(
    exportable: Project, tmp_path: Path
) -> None:
    select(exportable)
    out = tmp_path / "export"
    run(exportable, out)  # an earlier export (the whole catalogue) in the folder
    before = (out / MANIFEST).read_bytes()

    def stop_after_three(done: int, total: int, current: str) -> None:
        if done == 3:
            raise KeyboardInterrupt

    settings = export_settings(exportable, workers=1, format="flac")
    with pytest.raises(KeyboardInterrupt):
        export(exportable, out, "picked", settings, stop_after_three, SATS)
    assert (out / MANIFEST).read_bytes() == before, "the previous export must stay intact"
    staged = list(staging_path(out).glob("*/*.flac"))
    assert len(staged) >= 3

    summary = export(exportable, out, "picked", settings, registry=SATS)
    assert summary.reused >= 3 and summary.written == summary.segments - summary.reused
    records = manifest(out)
    on_disk = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    expected = sorted(r["filepath"] for r in records)
    assert [p for p in on_disk if "/" in p] == expected  # no duplicates, nothing stale
    assert not staging_path(out).exists() and not previous_path(out).exists()


def test_staged_audio_with_other_settings_is_not_reused(
    exportable: Project, tmp_path: Path
) -> None:
    out = tmp_path / "export"

    def stop(done: int, total: int, current: str) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export(exportable, out, None, export_settings(exportable, workers=1), stop, SATS)
    summary = run(exportable, out, bit_depth=24)
    assert summary.reused == 0 and summary.written == 6
    assert {sf.info(str(p)).subtype for p in out.glob("train/*.wav")} == {"PCM_24"}


def test_a_re_export_reuses_the_audio_of_the_previous_one(
    exportable: Project, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    run(exportable, out)
    segment = exportable.catalog.segment_rows()[0]["id"]
    save_prompts(exportable.catalog, [PromptRow(segment, HUMAN, "Edited by hand.")])
    summary = run(exportable, out)
    assert (summary.reused, summary.written) == (6, 0)
    assert {r["prompt"] for r in manifest(out) if r["segment_id"] == segment} == {"Edited by hand."}


def test_audio_of_another_catalogue_is_not_reused(exportable: Project, tmp_path: Path) -> None:
    out = tmp_path / "export"
    run(exportable, out)
    other = short_segments(init_project(tmp_path / "other-project"))
    ingest(other, [Path(exportable.catalog.segment_rows()[0]["source"]).parent])
    ids = [r["id"] for r in other.catalog.segment_rows()]
    save_prompts(other.catalog, [PromptRow(i, "template@1", "Another beat.") for i in ids])
    summary = run(other, out)  # the same ids could name other windows there
    assert (summary.written, summary.reused) == (6, 0)


def test_a_folder_that_is_not_an_export_is_never_replaced(
    exportable: Project, tmp_path: Path
) -> None:
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.txt").write_text("years of work")
    with pytest.raises(CuratorError, match="not a Curator export"):
        run(exportable, out)
    assert (out / "thesis.txt").read_text() == "years of work"


def test_a_crash_between_the_renames_is_recovered(exportable: Project, tmp_path: Path) -> None:
    out = tmp_path / "export"
    run(exportable, out)
    os.rename(out, previous_path(out))  # as if the machine died right after the first rename
    summary = run(exportable, out)
    assert summary.reused == 6 and (out / MANIFEST).is_file()
    assert not previous_path(out).exists()


def test_segments_without_a_prompt_get_one_written(project: Project, write_audio) -> None:
    project = short_segments(project)
    ingest(project, [write_audio("beats/a.wav", 15.0).parent])
    out = project.root / "export"
    registry = registry_of(sat, template_writer)
    summary = export(project, out, None, export_settings(project), registry=registry)
    assert summary.prompts_written == summary.segments == 2
    ids = [r["segment_id"] for r in manifest(out)]
    assert [r["prompt"] for r in manifest(out)] == [
        effective_prompts(project.catalog)[i] for i in ids
    ]


def test_bad_settings_are_named(exportable: Project, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"export\.format"):
        export_settings(exportable, format="ogg")
    with pytest.raises(SettingsError, match=r"export\.bit_depth"):
        export_settings(exportable, bit_depth=12)
    toml = exportable.root / "curator.toml"
    toml.write_text("[export]\nseconds = 'track'\nformat = 'flac'\n")
    assert export_settings(open_project(exportable.root)).seconds == "track"
    toml.write_text("[export]\nformats = 'flac'\n")
    with pytest.raises(SettingsError, match="formats"):
        open_project(exportable.root)


def test_exporter_settings_table_is_checked(exportable: Project, tmp_path: Path) -> None:
    toml = exportable.root / "curator.toml"
    toml.write_text(
        SHORT_SEGMENTS + '[plugins.stable-audio-tools]\ndataset_id = "beats"\nrandom_crop = false\n'
    )
    project = open_project(exportable.root)
    run(project, tmp_path / "export")
    config = json.loads((tmp_path / "export" / "dataset_config.json").read_text())
    assert config["datasets"][0]["id"] == "beats-train" and config["random_crop"] is False
    toml.write_text("[plugins.stable-audio-tools]\ncrop = 1\n")
    with pytest.raises(SettingsError, match="crop"):
        run(open_project(exportable.root), tmp_path / "other")


# -- the command line --------------------------------------------------------------------------


def test_cli_export_and_exports(run_cli, exportable: Project, tmp_path: Path) -> None:
    select(exportable)
    out = tmp_path / "cli-export"
    result = run_cli(
        "export", out, "--selection", "picked", "--format", "flac", "--bit-depth", "24",
        "--sample-rate", "32000", "--seconds", "track", "--json", "--project", exportable.root,
    )  # fmt: skip
    summary = json.loads(result.output[result.output.index("{") :])
    assert summary["files"] == 8 and summary["splits"] == {"train": 6, "validation": 2}
    info = sf.info(str(next(out.glob("train/*.flac"))))
    assert (info.samplerate, info.subtype) == (32000, "PCM_24")
    listed = run_cli("exports", "--json", "--project", exportable.root).output
    (row,) = json.loads(listed[listed.index("[") :])
    assert row["selection"] == "picked" and row["content_hash"] == summary["content_hash"]
    table = run_cli("exports", "--project", exportable.root).output
    assert "picked" in table and "flac 24-bit" in table


def test_cli_names_an_unknown_selection_and_a_bad_exporter(
    run_cli, exportable: Project, tmp_path: Path
) -> None:
    result = run_cli("export", tmp_path / "x", "--selection", "nope", "--project",
                     exportable.root, expect=1)  # fmt: skip
    assert "no selection named 'nope'" in result.output
    result = run_cli("export", tmp_path / "x", "--exporter", "nope", "--project",
                     exportable.root, expect=1)  # fmt: skip
    assert "no exporter named 'nope'" in result.output
    assert not (tmp_path / "x").exists()


def test_cli_export_prints_what_was_left_out(run_cli, exportable: Project, tmp_path: Path) -> None:
    gone = exportable.catalog.segment_rows()[0]["source"]
    Path(gone).unlink()
    result = run_cli("export", tmp_path / "out", "--project", exportable.root)
    assert "left out" in result.output and "gone" in result.output
    assert "Exported 4 segment(s)" in result.output


def test_cli_export_says_what_it_did_about_prompts(
    run_cli, project: Project, write_audio, tmp_path: Path
) -> None:
    project = short_segments(project)
    ingest(project, [write_audio("beats/a.wav", 15.0).parent])  # two segments
    first_id = project.catalog.segment_rows()[0]["id"]
    save_prompts(project.catalog, [PromptRow(first_id, "template@1", "A beat.")])
    first = " ".join(run_cli("export", tmp_path / "a", "--project", project.root).output.split())
    assert "1 prompt(s) written for the 1 segment(s) that had none" in first
    again = " ".join(run_cli("export", tmp_path / "b", "--project", project.root).output.split())
    assert "every segment already had a prompt" in again and "prompt(s) written" not in again


def test_exports_lists_nothing_yet(run_cli, project: Project) -> None:
    assert "No exports yet" in run_cli("exports", "--project", project.root).output


def test_a_defaults_change_is_a_new_setting_object(exportable: Project) -> None:
    settings = export_settings(exportable, sample_rate=48000)
    assert settings.sample_rate == 48000 and exportable.settings.export.sample_rate == 44100
    assert dataclasses.replace(settings, sample_rate=44100) == exportable.settings.export


def test_nothing_exportable_is_an_error_unless_the_audio_is_already_exported(
    exportable: Project, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    run(exportable, out)
    for source in {r["source"] for r in exportable.catalog.segment_rows()}:
        Path(source).unlink()
    with pytest.raises(CuratorError, match="nothing to export") as raised:
        run(exportable, tmp_path / "other")
    assert "gone" in str(raised.value) and not (tmp_path / "other").exists()
    # Re-exporting to the same folder needs no source: the segments' audio is there.
    summary = run(exportable, out, seconds="track")
    assert (summary.reused, summary.written, summary.left_out) == (6, 0, [])


# -- what an export may replace ----------------------------------------------------------------


def everything_in(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes: what a refused export must leave as it was."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_cli_never_deletes_a_folder_with_a_foreign_export_json(
    run_cli, exportable: Project, tmp_path: Path
) -> None:
    # The reproduction: any file named export.json used to be taken as proof.
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "thesis.docx").write_text("keep")
    (folder / "export.json").write_text("{}")
    result = run_cli("export", folder, "--project", exportable.root, expect=1)
    assert "Traceback" not in result.output
    (line,) = [line for line in result.output.splitlines() if line.strip()]
    assert str(folder) in line and "not a Curator export" in line
    assert everything_in(folder) == {"thesis.docx": b"keep", "export.json": b"{}"}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".d.")) == []


@pytest.mark.parametrize(
    "marker",
    [
        "{}",
        '{"content_hash": "0000", "files": ["thesis.docx"]}',
        "not json at all",
        '["a list"]',
    ],
)
def test_a_foreign_export_json_proves_nothing(
    exportable: Project, tmp_path: Path, marker: str
) -> None:
    out = tmp_path / "d"
    out.mkdir()
    (out / "export.json").write_text(marker)
    (out / "thesis.docx").write_text("keep")
    with pytest.raises(CuratorError, match="not a Curator export"):
        run(exportable, out)
    assert everything_in(out) == {"export.json": marker.encode(), "thesis.docx": b"keep"}


def test_a_file_at_out_is_refused(exportable: Project, tmp_path: Path) -> None:
    out = tmp_path / "d"
    out.write_text("keep")
    with pytest.raises(CuratorError, match="not a folder"):
        run(exportable, out)
    assert out.read_text() == "keep"


@pytest.mark.parametrize("dropped", ["notes.txt", "train/my-own-take.wav", "stems/kick.wav"])
def test_a_file_dropped_into_an_earlier_export_stops_its_replacement(
    exportable: Project, tmp_path: Path, dropped: str
) -> None:
    out = tmp_path / "export"
    run(exportable, out)
    (out / dropped).parent.mkdir(exist_ok=True)
    (out / dropped).write_text("the curator's own file")
    before = everything_in(out)
    with pytest.raises(
        CuratorError, match=f"Curator did not write: {re.escape(dropped)}"
    ) as raised:
        run(exportable, out, seconds="track")
    assert str(out) in str(raised.value)
    assert everything_in(out) == before
    assert not staging_path(out).exists()


def test_an_export_whose_manifest_was_edited_is_not_replaced(
    exportable: Project, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    run(exportable, out)
    with (out / MANIFEST).open("a") as manifest_file:
        manifest_file.write('{"filepath": "train/mine.wav"}\n')
    (out / "train" / "mine.wav").write_text("a take of my own")
    with pytest.raises(CuratorError, match="content hash"):
        run(exportable, out)
    assert (out / "train" / "mine.wav").read_text() == "a take of my own"


def test_an_export_that_was_trained_on_is_replaced(exportable: Project, tmp_path: Path) -> None:
    out = tmp_path / "export"
    run(exportable, out)
    # Importing custom_metadata.py, as stable-audio-tools does, leaves its bytecode beside it.
    (out / "__pycache__").mkdir()
    (out / "__pycache__" / "custom_metadata.cpython-310.pyc").write_bytes(b"\x00bytecode")
    summary = run(exportable, out, seconds="track")
    assert summary.reused == 6 and not (out / "__pycache__").exists()
    assert not previous_path(out).exists()


@pytest.mark.parametrize("beside", [staging_path, previous_path])
def test_a_folder_beside_out_that_is_not_ours_is_never_deleted(
    exportable: Project, tmp_path: Path, beside
) -> None:
    out = tmp_path / "export"
    run(exportable, out)
    theirs = beside(out)
    theirs.mkdir()
    (theirs / "export.json").write_text("{}")
    (theirs / "thesis.docx").write_text("keep")
    with pytest.raises(CuratorError, match="not a Curator export") as raised:
        run(exportable, out)
    assert str(theirs) in str(raised.value)
    assert everything_in(theirs) == {"export.json": b"{}", "thesis.docx": b"keep"}


def test_a_previous_export_half_deleted_by_a_crash_is_still_cleaned_up(
    exportable: Project, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    run(exportable, out)
    previous = previous_path(out)
    os.rename(out, previous)
    run(exportable, out)  # out is back; now the old one is deleted ...
    os.rename(out, previous)
    for path in sorted(previous.glob("train/*.wav"))[:3]:  # ... and the machine died halfway
        path.unlink()
    summary = run(exportable, out)
    assert summary.segments == 6 and not previous.exists()


def test_exporting_into_a_folder_ingest_scans_is_refused(
    exportable: Project, tmp_path: Path
) -> None:
    sources = Path(exportable.catalog.segment_rows()[0]["source"]).parent
    for out in (sources / "training-set", sources / "sub" / "deeper"):
        with pytest.raises(CuratorError, match="ingest") as raised:
            run(exportable, out)
        assert str(sources) in str(raised.value)
        assert not out.exists() and not staging_path(out).exists()


def test_exporting_over_the_sources_or_into_the_projects_own_folders_is_refused(
    exportable: Project, tmp_path: Path
) -> None:
    for out in (tmp_path, exportable.runs_dir / "set", exportable.root / "cache" / "set"):
        before = everything_in(out) if out.exists() else {}
        with pytest.raises(CuratorError, match=str(out)):
            run(exportable, out)
        assert (everything_in(out) if out.exists() else {}) == before
    with pytest.raises(CuratorError, match="catalogue"):
        run(exportable, exportable.root)
    summary = run(exportable, exportable.root / "exports" / "set")  # beside them is fine
    assert summary.segments == 6


def test_an_export_by_an_earlier_curator_is_named_and_kept(
    exportable: Project, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    run(exportable, out)
    state = json.loads((out / "export.json").read_text())
    del state["curator_export"], state["files_written"]  # as Curator wrote it before issue 11
    (out / "export.json").write_text(json.dumps(state))
    before = everything_in(out)
    with pytest.raises(CuratorError, match="earlier Curator"):
        run(exportable, out)
    assert everything_in(out) == before


class CrashingExporter(sat.StableAudioExporter):
    """Writes files of its own, then dies before returning, as a kill -9 would stop it."""

    name = "crashing"

    def export(self, records, out: Path, final: Path | None = None) -> Path:
        (out / "extras").mkdir(exist_ok=True)
        (out / "extras" / "half-written.bin").write_bytes(b"\x00" * 10)
        raise KeyboardInterrupt


class Crashing:
    @hookimpl
    def register_exporters(self, register) -> None:
        register(CrashingExporter())


def test_an_export_killed_while_its_exporter_writes_resumes(
    exportable: Project, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    run(exportable, out)
    settings = export_settings(exportable, exporter="crashing")
    with pytest.raises(KeyboardInterrupt):
        export(exportable, out, None, settings, registry=registry_of(sat, Crashing()))
    assert (staging_path(out) / "extras" / "half-written.bin").is_file()
    summary = run(exportable, out, seconds="track")  # the staged audio is reused
    assert (summary.reused, summary.written) == (6, 0)
    assert not staging_path(out).exists() and not previous_path(out).exists()
    assert not (out / "extras").exists()
    run(exportable, out)  # and the export it left is replaced in turn


@pytest.fixture
def beats_under_r(project: Project, write_audio, tmp_path: Path) -> tuple[Project, Path]:
    """A project ingested from folder R whose audio sits only in R/beats, none in R itself."""
    project = short_segments(project)
    root = tmp_path / "R"
    for i in range(2):
        write_audio(f"beats/track{i}.wav", 15.0, seed=i, root=root)
    return project, root


def test_cli_refuses_an_export_inside_a_folder_given_to_ingest_with_no_audio_of_its_own(
    run_curator, beats_under_r: tuple[Project, Path]
) -> None:
    # The inferred check saw only R/beats (where the files are), so R/exports was allowed
    # and the next `curator ingest R` took the exported audio as new tracks.
    project, root = beats_under_r
    ingested = run_curator("ingest", root, "--project", project.root)
    assert ingested.returncode == 0, ingested.stderr
    out = root / "exports"
    result = run_curator("export", out, "--project", project.root)
    assert result.returncode == 1, result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: {out}: is inside {root}, a folder given to `curator ingest`")
    assert "new tracks" in line and "Traceback" not in result.stderr
    assert not out.exists() and not staging_path(out).exists()


def test_a_folder_beside_the_ingested_ones_is_still_allowed(
    beats_under_r: tuple[Project, Path], tmp_path: Path
) -> None:
    project, root = beats_under_r
    ingest(project, [root])
    ids = [row["id"] for row in project.catalog.segment_rows()]
    save_prompts(project.catalog, [PromptRow(i, "template@1", "A beat.") for i in ids])
    for out in (tmp_path / "exports", tmp_path / "R-exports"):  # R-exports shares R's prefix
        assert run(project, out).segments == 4
    with pytest.raises(CuratorError, match=f"{tmp_path}: holds {root}"):
        run(project, tmp_path)


def test_without_a_recorded_folder_the_files_folders_are_still_refused(
    beats_under_r: tuple[Project, Path],
) -> None:
    # Files given one by one record no folder, like a catalogue ingested before folders were
    # recorded: their folders, found from the files' paths, are refused all the same.
    project, root = beats_under_r
    ingest(project, sorted((root / "beats").glob("*.wav")))
    assert project.catalog.ingest_sources() == []
    with pytest.raises(CuratorError, match=f"is inside {root / 'beats'}, a folder ingest scans"):
        run(project, root / "beats" / "exports")
