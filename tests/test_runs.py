"""Tag and analyze runs on real audio: shards, merges, resume, failures, cache, human labels."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import curator_command
from tests_support import HatTagger, LevelAnalyzer, Plugin

from curator.catalogue.ingest import ingest
from curator.project import Project, init_project, open_project
from curator.status import project_status
from curator.storage import HumanLabel
from curator.tagging import shards
from curator.tagging.runs import (
    decode_batches,
    decode_threads,
    retag_from_cache,
    run_analyzer,
    run_tagger,
)
from curator.testing import registry_of


@pytest.fixture
def tagged_setup(tmp_path: Path, loud_and_quiet: Path):
    project = init_project(tmp_path / "project")
    ingest(project, [loud_and_quiet])
    tagger = HatTagger()
    return project, tagger, registry_of(Plugin(tagger, LevelAnalyzer()))


def effective(project: Project) -> dict[tuple[str, str, str], tuple[bool, str | None]]:
    return {(s, f, t): (p, v) for s, f, t, p, v, _ in project.catalog.effective_labels()}


def test_tag_run_labels_every_segment_once(tagged_setup) -> None:
    project, _, registry = tagged_setup
    summary = run_tagger(project, "hats", registry=registry)
    assert (summary.pending, summary.done, summary.failed) == (12, 12, 0)
    labels = effective(project)
    by_track = {}
    for row in project.catalog.segment_rows():
        hat = labels.get((row["id"], "instruments", "hi-hat"), (False, None))[0]
        by_track.setdefault(Path(row["source"]).name, set()).add(hat)
    assert all(by_track[f"track{i}.wav"] == {i < 3} for i in range(6))
    (run,) = project.catalog.runs()
    assert (run["plugin"], run["status"], run["done"]) == ("hats", "finished", 12)
    assert run_tagger(project, "hats", registry=registry).pending == 0
    ids, vectors = project.catalog.embeddings("hats:brightness")
    assert len(ids) == 12 and vectors.shape == (12, 1)


def test_limit_leaves_the_rest_for_later(tagged_setup) -> None:
    project, _, registry = tagged_setup
    assert run_tagger(project, "hats", limit=5, registry=registry).done == 5
    assert run_tagger(project, "hats", registry=registry).done == 7


def test_interrupted_run_keeps_merged_shards_and_resumes(tagged_setup) -> None:
    project, tagger, registry = tagged_setup
    settings = (
        (project.root / "curator.toml").read_text().replace("shard_size = 256", "shard_size = 2")
    )
    (project.root / "curator.toml").write_text(settings)
    project = open_project(project.root)
    tagger.interrupt_after = 3
    first = run_tagger(project, "hats", batch_size=1, registry=registry)
    assert first.interrupted and first.done == 3
    assert project.catalog.runs()[0]["status"] == "interrupted"
    tagger.interrupt_after = None
    second = run_tagger(project, "hats", batch_size=1, registry=registry)
    assert second.run_id == first.run_id and second.done == 9
    ids, _ = project.catalog.scores(first.run_id)
    assert len(ids) == len(set(ids)) == 12


def test_a_shard_left_unmerged_is_merged_by_the_next_run(tagged_setup) -> None:
    project, _, registry = tagged_setup
    run_tagger(project, "hats", limit=2, registry=registry)
    run_id = project.catalog.runs()[0]["id"]
    done_before = {i for (i,) in _done_items(project)}
    segment = next(r["id"] for r in project.catalog.segment_rows() if r["id"] not in done_before)
    folder = project.runs_dir / f"{run_id:06d}"
    shards.write_shard(
        folder,
        99,
        run_id,
        {
            "items": {
                "run_id": np.array([run_id]),
                "segment_id": np.array([segment]),
                "status": np.array(["done"]),
                "reason": np.array([None], dtype=object),
            }
        },
        [segment],
    )
    run_tagger(project, "hats", limit=1, registry=registry)  # merges the leftover first
    done = {i for (i,) in _done_items(project)}
    assert segment in done and not list(folder.glob("shard-*"))


def _done_items(project: Project):
    with project.catalog.connect() as con:
        return con.execute("SELECT segment_id FROM run_items WHERE status = 'done'").fetchall()


def test_failures_are_per_segment_with_reasons(tagged_setup, loud_and_quiet: Path) -> None:
    project, tagger, registry = tagged_setup
    rows = project.catalog.segment_rows()
    tagger.fail_on = {rows[0]["id"]}
    summary = run_tagger(project, "hats", batch_size=4, registry=registry)
    assert summary.done == 11 and summary.failed == 1
    assert summary.failures == [(rows[0]["id"], "ValueError: model choked on this one")]
    tagger.fail_on = set()
    assert run_tagger(project, "hats", registry=registry).done == 1  # failed ones retried


def test_unreadable_audio_fails_only_its_segments(tmp_path: Path, loud_and_quiet: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(loud_and_quiet, copy)
    project = init_project(tmp_path / "project")
    ingest(project, [copy])
    (copy / "track0.wav").write_bytes(b"")
    summary = run_tagger(project, "hats", registry=registry_of(Plugin(HatTagger())))
    assert summary.done == 10 and summary.failed == 2
    assert all("cannot decode" in reason for _, reason in summary.failures)


def test_retag_from_cache_reads_no_audio(tagged_setup, monkeypatch) -> None:
    project, _, registry = tagged_setup
    run_tagger(project, "hats", registry=registry)
    before = {k for k, (present, _) in effective(project).items() if present}

    def no_audio(*args, **kwargs):
        raise AssertionError("re-tagging from cache must not decode audio")

    monkeypatch.setattr("curator.tagging.runs.decode_window", no_audio)
    vocabulary = project.vocabulary_dir / "instruments.toml"
    vocabulary.write_text(vocabulary.read_text() + '\n[thresholds]\n"hi-hat" = 0.999\n')
    summary = retag_from_cache(project, "hats", registry=registry)
    assert summary.done == 12
    after = {k for k, (present, _) in effective(project).items() if present}
    assert {k for k in before if k[2] == "hi-hat"} and not {k for k in after if k[2] == "hi-hat"}
    assert {k for k in before if k[2] == "808"} == {k for k in after if k[2] == "808"}


def test_human_labels_win_and_survive_reruns(tagged_setup) -> None:
    project, _, registry = tagged_setup
    run_tagger(project, "hats", registry=registry)
    segment = project.catalog.segment_rows()[0]["id"]
    fixes = [
        HumanLabel(segment, "instruments", "hi-hat", present=False),
        HumanLabel(segment, "instruments", "snare", present=True),
    ]
    assert project.catalog.apply_human_labels(fixes, actor="ana", batch_id="b1") == 2
    retag_from_cache(project, "hats", registry=registry)
    labels = effective(project)
    assert labels[(segment, "instruments", "hi-hat")] == (False, None)
    assert labels[(segment, "instruments", "snare")] == (True, None)
    history = project.catalog.label_history(segment)
    assert [(h["tag"], h["new_present"], h["actor"]) for h in history] == [
        ("hi-hat", False, "ana"),
        ("snare", True, "ana"),
    ]


def test_analyzer_values_become_labels_only_when_confident(tagged_setup) -> None:
    project, _, registry = tagged_setup
    summary = run_analyzer(project, "level", registry=registry)
    assert summary.done == 12
    run_id = summary.run_id
    measured = project.catalog.measurements(run_id)
    assert {m["name"] for m in measured} == {"loudness", "key"}
    keys = {s for (s, f, _), (present, value) in effective(project).items() if f == "key"}
    loud = {m["segment_id"] for m in measured if m["name"] == "loudness" and m["value"] > -20}
    assert keys == loud and loud


def test_killed_tag_process_resumes_without_duplicates(tmp_path: Path, loud_and_quiet) -> None:
    project = init_project(tmp_path / "project")
    settings = (project.root / "curator.toml").read_text()
    (project.root / "curator.toml").write_text(
        settings.replace("shard_size = 256", "shard_size = 1")
    )
    for copy in range(4):  # 48 segments, so the kill lands mid-run
        for path in loud_and_quiet.glob("*.wav"):
            data = path.read_bytes()
            target = tmp_path / "audio" / f"{copy}-{path.name}"
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(data[:-4] + bytes([copy, 0, 0, 0]))
    ingest(open_project(project.root), [tmp_path / "audio"])
    command = curator_command(
        "tag", "--plugin", "brightness", "--batch-size", "1", "--project", project.root
    )
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(_done_items(project)) < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    partial = len(_done_items(project))
    print(f"killed with {partial} of 48 segments tagged")
    assert 0 < partial < 48
    (killed,) = project_status(project)["runs"]
    assert killed["status"] == "interrupted"  # its process is gone, whatever it recorded
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    items = [i for (i,) in _done_items(project)]
    assert len(items) == len(set(items)) == 48
    assert [run["status"] for run in project.catalog.runs()] == ["finished"]
    assert not project.runs_dir.exists() or list(project.runs_dir.iterdir()) == []


def test_several_decode_threads_hand_over_the_same_batches_in_order(
    tmp_path: Path, loud_and_quiet: Path
) -> None:
    import shutil
    import threading

    copy = tmp_path / "copy"
    shutil.copytree(loud_and_quiet, copy)
    project = init_project(tmp_path / "project")
    ingest(project, [copy])
    (copy / "track3.wav").write_bytes(b"")  # its segments fail, in their batch, as before
    rows, tagger = project.catalog.segment_rows(), HatTagger()

    def batches(threads: int) -> list[tuple[list[str], list[str], float]]:
        return [
            (
                [a.segment_id for a in batch.audio],
                [segment_id for segment_id, _ in batch.failures],
                float(sum(np.abs(a.audio).sum() for a in batch.audio)),
            )
            for batch in decode_batches(rows, tagger, 3, threading.Event(), threads)
        ]

    one = batches(1)
    assert [len(ids) + len(failed) for ids, failed, _ in one] == [3, 3, 3, 3]
    assert sum(len(failed) for _, failed, _ in one) == 2
    assert batches(4) == one
    assert (decode_threads(0, cpus=4.0), decode_threads(3), decode_threads(0, cpus=64)) == (4, 3, 8)
