"""The Ollama writer, through the real `ollama` client, against an Ollama API on loopback."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from curator.api import PluginContext
from curator.catalogue.ingest import ingest
from curator.catalogue.metadata import record_labels, segment_metadata
from curator.errors import CuratorError, SettingsError
from curator.plugins import ollama as ollama_plugin
from curator.plugins.ollama import OllamaModelMissing, OllamaUnavailable, OllamaWriter
from curator.plugins.ollama.fewshot import EXAMPLES, describe
from curator.plugins.ollama.writer import clean
from curator.project import Project, open_project
from curator.prompts.checking import prompt_problems
from curator.prompts.writing import segment_seed, write_prompts
from curator.storage.prompts import effective_prompts
from curator.testing import registry_of
from curator.vocabulary import default_vocabulary_dir, load_vocabulary

VOCABULARY = load_vocabulary(default_vocabulary_dir())
MODEL = "llama3.2:3b"
LABELS = [
    {
        "instruments_tags": ["808", "hi-hat"],
        "genres_tags": ["trap"],
        "moods_tags": ["dark"],
        "tempo": 140.0,
        "key": "F#",
        "scale": "minor",
    },
    {"instruments_tags": ["piano"], "genres_tags": ["boom bap"], "moods_tags": ["nostalgic"]},
]

Reply = Callable[[dict[str, Any]], "tuple[int, dict[str, Any]] | str"]


def faithful(request: dict[str, Any]) -> str:
    """What a good model answers: every tag of the segment it was sent, its tempo and key."""
    asked = request["messages"][-1]["content"]
    tags = [
        re.sub(r" \(or: .*\)", "", tag)
        for line in asked.splitlines()
        if line.split(":")[0] in ("genres", "moods", "instruments")
        for tag in line.split(": ", 1)[1].split("; ")
    ]
    tempo = re.search(r"tempo: (\d+ BPM)", asked)
    key = re.search(r"key: ([A-G]#? (?:major|minor))", asked)
    return (
        " ".join(
            ["A beat with", ", ".join(tags)]
            + ([f"at {tempo[1]}"] if tempo else [])
            + ([f"in {key[1]}"] if key else [])
        )
        + "."
    )


class FakeOllama:
    """The parts of the Ollama HTTP API the client uses to chat, on 127.0.0.1."""

    def __init__(self) -> None:
        self.models = {MODEL}
        self.requests: list[dict[str, Any]] = []
        self.replies: list[Reply] = []  # used in turn, then `default`
        self.default: Reply = faithful
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.host = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, **body})
                status, payload = fake.answer(self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path != "/api/chat":
            return 404, {"error": f"no endpoint {path}"}
        if body["model"] not in self.models:
            return 404, {"error": f'model "{body["model"]}" not found, try pulling it first'}
        reply = (self.replies.pop(0) if self.replies else self.default)(body)
        if isinstance(reply, tuple):
            return reply
        return 200, {
            "model": body["model"],
            "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": reply},
            "done": True,
            "done_reason": "stop",
        }

    def chats(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == "/api/chat"]


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    fake = FakeOllama()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def closed_port_host() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def with_ollama_settings(project: Project, **settings: Any) -> Project:
    values = {"retries": 2, "backoff": 0.01, "timeout": 10.0, **settings}
    lines = [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    path = project.root / "curator.toml"
    kept = path.read_text(encoding="utf-8").split("\n[plugins.ollama]\n")[0]
    path.write_text(kept + "\n[plugins.ollama]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return open_project(project.root)


@pytest.fixture
def labelled(project: Project, write_audio) -> Project:
    """One track, two usable segments, labelled as in LABELS."""
    ingest(project, [write_audio("beats/one.wav", 45, sr=8000).parent])
    ids = sorted(segment_metadata(project))
    labels = [x for sid, r in zip(ids, LABELS, strict=True) for x in record_labels(sid, r)]
    project.catalog.import_model_labels(labels, ids, "seed-tags", {})
    return project


def write(project: Project, **options: Any):
    return write_prompts(project, writer="ollama", registry=registry_of(ollama_plugin), **options)


def test_a_good_answer_is_checked_and_stored(labelled: Project, fake_ollama: FakeOllama) -> None:
    project = with_ollama_settings(labelled, host=fake_ollama.host, temperature=0.3)
    summary = write(project, seed=3)
    assert (summary.written, summary.failed, summary.writer) == (2, 0, "ollama@1")
    ids = sorted(segment_metadata(project))
    prompts = effective_prompts(project.catalog)
    assert prompts[ids[0]] == "A beat with 808, hi-hat, trap, dark at 140 BPM in F# minor."
    assert prompts[ids[1]] == "A beat with piano, boom bap, nostalgic."
    first = fake_ollama.chats()[0]
    assert first["model"] == MODEL and first["stream"] is False
    assert first["options"]["temperature"] == 0.3
    assert first["options"]["seed"] == segment_seed(3, ids[0])
    roles = [m["role"] for m in first["messages"]]
    assert roles == ["system"] + ["user", "assistant"] * len(EXAMPLES) + ["user"]
    assert "808 (or: 808 bass, booming 808, distorted 808 bass)" in first["messages"][-1]["content"]
    assert "tempo: not given" in fake_ollama.chats()[1]["messages"][-1]["content"]


def test_bad_answers_are_retried_with_new_seeds_then_reported(
    labelled: Project, fake_ollama: FakeOllama
) -> None:
    project = with_ollama_settings(labelled, host=fake_ollama.host)
    ids = sorted(segment_metadata(project))
    fake_ollama.replies = [
        lambda r: "A dark trap beat with 808 and hi-hats at 150 BPM in F# minor.",
        lambda r: "A dark trap beat at 140 BPM in F# minor.",  # no 808, no hi-hat
        lambda r: "A dark trap beat with 808 and\x1b hi-hats at 140 BPM in F# minor.",
        lambda r: "A nostalgic boom bap beat with piano in C major.",  # no key in metadata
        faithful,
    ]
    summary = write(project)
    assert (summary.written, summary.failed) == (1, 1)
    segment_id, reason = summary.failures[0]
    assert segment_id == ids[0]
    assert reason.startswith(f"{MODEL} gave 3 unusable answer(s); last: control character")
    chats = fake_ollama.chats()
    assert len(chats) == 5
    seed = segment_seed(0, ids[0])
    assert [c["options"]["seed"] for c in chats[:3]] == [seed, seed + 1, seed + 2]
    assert effective_prompts(project.catalog) == {ids[1]: "A beat with piano, boom bap, nostalgic."}
    writer = OllamaWriter()
    writer.setup(
        PluginContext(settings={"host": fake_ollama.host, "retries": 0}, vocabulary=VOCABULARY)
    )
    fake_ollama.replies = [lambda r: "Trap at 150 BPM."]
    with pytest.raises(CuratorError, match="names 150 BPM, the metadata says 140"):
        writer.write(segment_metadata(project)[ids[0]], 1)


def test_transient_server_errors_are_retried(labelled: Project, fake_ollama: FakeOllama) -> None:
    project = with_ollama_settings(labelled, host=fake_ollama.host)
    fake_ollama.replies = [lambda r: (503, {"error": "server busy"}), faithful, faithful]
    assert write(project).written == 2
    assert len(fake_ollama.chats()) == 3


def test_an_unreachable_server_is_a_clear_error(labelled: Project) -> None:
    host = closed_port_host()
    project = with_ollama_settings(labelled, host=host)
    with pytest.raises(OllamaUnavailable) as caught:
        write(project)
    message = str(caught.value)
    assert host in message and "ollama serve" in message and f"ollama pull {MODEL}" in message
    assert "failed 3 time(s)" in message
    assert effective_prompts(project.catalog) == {}
    assert project.catalog.runs()[-1]["status"] == "failed"


def test_a_missing_model_is_named_with_the_pull_command(
    labelled: Project, fake_ollama: FakeOllama
) -> None:
    project = with_ollama_settings(labelled, host=fake_ollama.host, model="qwen9:1b")
    with pytest.raises(OllamaModelMissing, match=r"has no model 'qwen9:1b'.*ollama pull qwen9:1b"):
        write(project)
    assert len(fake_ollama.chats()) == 1  # no retries: pulling the model is the fix


def test_rerunning_costs_no_requests(labelled: Project, fake_ollama: FakeOllama) -> None:
    project = with_ollama_settings(labelled, host=fake_ollama.host)
    write(project)
    assert len(fake_ollama.chats()) == 2
    again = write(project)
    assert (again.written, again.skipped, len(fake_ollama.chats())) == (0, 2, 2)
    write(project, seed=1)
    assert len(fake_ollama.chats()) == 4
    back = write(project)  # seed 0 again: answered before, so from the cache
    assert (back.from_cache, len(fake_ollama.chats())) == (2, 4)
    # Host, timeout and retries do not change an answer: still nothing to ask.
    moved = with_ollama_settings(project, host=fake_ollama.host + "/", retries=5)
    assert write(moved).skipped == 2 and len(fake_ollama.chats()) == 4


def test_the_cli_reports_an_unreachable_server_in_one_line(
    labelled: Project, run_cli, monkeypatch
) -> None:
    monkeypatch.setenv("CURATOR_LOAD_PLUGINS", "template,ollama")
    host = closed_port_host()
    project = with_ollama_settings(labelled, host=host, retries=0)
    result = run_cli("prompts", "--project", project.root, "--writer", "ollama", expect=1)
    assert f"Error: Ollama at {host} failed 1 time(s)" in result.output
    assert "Traceback" not in result.output


def test_answers_are_cleaned_but_not_repaired() -> None:
    assert clean('  Prompt: "A dark trap beat."\n') == "A dark trap beat."
    assert clean("\u201cA chill beat.\u201d") == "A chill beat."
    assert clean("A beat.\nAnother line.") == "A beat.\nAnother line."


def test_the_few_shot_examples_pass_the_checks_they_teach() -> None:
    for metadata, answer in EXAMPLES:
        assert prompt_problems(answer, metadata, VOCABULARY, 300) == [], answer
        description = describe(metadata, VOCABULARY)
        assert all(tag in description for tag in metadata["instruments_tags"])


def test_settings_are_checked_by_name() -> None:
    writer = OllamaWriter()
    with pytest.raises(SettingsError, match="unknown key"):
        writer.setup(PluginContext(settings={"modle": "x"}))
    with pytest.raises(SettingsError, match="retries"):
        writer.setup(PluginContext(settings={"retries": -1}))
    writer.setup(PluginContext(settings={"model": "llama3.1:8b", "host": "http://gpu:11434"}))
    assert writer.settings_for_run() == {
        "model": "llama3.1:8b",
        "temperature": 0.7,
        "max_chars": 300,
    }
