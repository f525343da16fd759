"""The app: the home page shows the catalogue; `curator app` serves it on localhost."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import curator_command
from streamlit.testing.v1 import AppTest

from curator import app as app_package
from curator.catalogue.ingest import ingest
from curator.project import Project

HOME = str(Path(app_package.__file__).parent / "Home.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def ingested(project: Project, write_audio) -> Project:
    folder = write_audio("beats/one.wav", 50).parent
    write_audio("beats/two.wav", 50, seed=1)
    (folder / "bad.wav").write_bytes(b"")
    ingest(project, [folder])
    return project


def test_home_page_shows_counts_segments_and_problems(ingested: Project, monkeypatch) -> None:
    monkeypatch.setenv("CURATOR_PROJECT", str(ingested.root))
    page = AppTest.from_file(HOME, default_timeout=30).run()
    assert not page.exception
    metrics = {m.label: m.value for m in page.metric}
    assert metrics["Tracks ingested"] == "2"
    assert metrics["Usable segments"] == "4"
    assert metrics["Files not used"] == "1"
    segments, problems = page.dataframe
    assert len(segments.value) == 4
    assert set(segments.value["id"]) == {r["id"] for r in ingested.catalog.segment_rows()}
    assert problems.value["reason"].tolist() == ["empty file (0 bytes)"]
    disk = next(c.value for c in page.caption if c.value.startswith("Disk:"))
    assert "audio 17.6 MB" in disk and "catalogue" in disk


def test_empty_project_tells_what_to_do(project: Project, monkeypatch) -> None:
    monkeypatch.setenv("CURATOR_PROJECT", str(project.root))
    page = AppTest.from_file(HOME, default_timeout=30).run()
    assert not page.exception
    assert "curator ingest" in page.info[0].value


def test_curator_app_serves_on_localhost(ingested: Project) -> None:
    port = free_port()
    server = subprocess.Popen(
        curator_command("app", "--project", ingested.root, "--port", port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, stopped as a whole below
    )
    try:
        assert wait_for(f"http://127.0.0.1:{port}/_stcore/health") == "ok"
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read().decode()
        assert "<title>" in page.lower() or "streamlit" in page.lower()
    finally:
        # `curator app` runs streamlit as a child: stop the whole process group.
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def wait_for(url: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return urllib.request.urlopen(url, timeout=2).read().decode()
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def test_pages_are_numbered_without_gaps_and_keep_their_addresses() -> None:
    # Streamlit orders pages by the number and makes each page's address from the rest of
    # its file name, so renumbering a page never changes a link to it.
    from streamlit.source_util import page_icon_and_name

    pages = sorted((Path(app_package.__file__).parent / "pages").glob("*.py"))
    numbers = sorted(int(page.name.split("_", 1)[0]) for page in pages)
    assert numbers == list(range(1, len(pages) + 1))
    assert {page_icon_and_name(page)[1] for page in pages} == {
        "Review", "History", "Charts", "Bulk_relabel", "Rebalance", "Prompts",
        "Jobs", "Generate", "Learned_tagger", "Explore",
    }  # fmt: skip
