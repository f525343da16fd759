"""The app stays usable while a tagging process writes to the same project; nothing is lost."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from conftest import curator_command
from streamlit.testing.v1 import AppTest

from curator import app as app_package
from curator.catalogue.ingest import ingest
from curator.project import init_project, open_project

REVIEW = str(Path(app_package.__file__).parent / "pages" / "1_Review.py")


def many_segments(tmp_path: Path, loud_and_quiet: Path, copies: int) -> Path:
    for copy in range(copies):
        for path in loud_and_quiet.glob("*.wav"):
            target = tmp_path / "audio" / f"{copy}-{path.name}"
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(path.read_bytes()[:-4] + bytes([copy, 0, 0, 0]))
    return tmp_path / "audio"


def done_items(project) -> int:
    return sum(run["done"] for run in project.catalog.runs())


def test_an_edit_in_the_app_during_a_tagging_run_keeps_both(
    tmp_path, loud_and_quiet, monkeypatch
) -> None:
    project = init_project(tmp_path / "project")
    settings = project.root / "curator.toml"
    settings.write_text(settings.read_text().replace("shard_size = 256", "shard_size = 1"))
    project = open_project(project.root)
    ingest(project, [many_segments(tmp_path, loud_and_quiet, copies=4)])
    command = curator_command(
        "tag", "--plugin", "brightness", "--batch-size", "1", "--project", project.root
    )
    tagging = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while done_items(project) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tagging.poll() is None, "the edit must happen while the run is writing"
        segment = edit_in_app(project.root, monkeypatch)
        _, stderr = tagging.communicate(timeout=300)
        assert tagging.returncode == 0, stderr
    finally:
        tagging.kill()
    labels = project.catalog.labels()
    assert {(x["tag"], x["source"]) for x in labels if x["segment_id"] == segment} >= {
        ("snare", "human")
    }
    tagged = {x["segment_id"] for x in labels if x["source"] == "brightness@1"}
    assert len(tagged) == 48


def edit_in_app(root: Path, monkeypatch) -> str:
    """Add the human tag "snare" to the first segment on the Review page; returns its id."""
    monkeypatch.setenv("CURATOR_PROJECT", str(root))
    page = AppTest.from_file(REVIEW, default_timeout=120).run()
    assert not page.exception, page.exception
    page.sidebar.radio(key="review-view").set_value("List").run()  # the view with multiselects
    tags = next(m for m in page.multiselect if m.key.endswith("-instruments"))
    segment = tags.key.removesuffix("-instruments")
    tags.select("snare")
    page.button[0].click().run()
    assert not page.exception, page.exception
    return segment
