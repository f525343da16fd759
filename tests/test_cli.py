"""The command line as a curator uses it: help everywhere, projects found, clear errors."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
from pathlib import Path

import click
import pytest

from curator.cli import cli
from curator.project import init_project


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found.extend(all_commands(command, (*prefix, name)))
    return found


@pytest.mark.parametrize("command", all_commands(cli), ids=" ".join)
def test_every_command_has_help(run_cli, command: tuple[str, ...]) -> None:
    result = run_cli(*command, "--help")
    assert "Usage: " in result.output
    summary = result.output.split("\n\n")[1].strip()
    assert len(summary) > 20, f"`curator {' '.join(command)}` needs a real help text"


ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def shell_words(line: str) -> list[list[str]]:
    """The commands of one shell line: split on && ; | as the shell would, comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split, lexer.commenters = True, "#"
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in {"&&", ";", "|", "||"}:
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c]


def documented_command_lines() -> list[tuple[str, str]]:
    """Every `curator ...` command in the README's and docs' shell blocks, as a reader would
    copy it, with the file it is in."""
    found = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                for words in shell_words(line):
                    while words and "=" in words[0]:  # VAR=value prefixes
                        words = words[1:]
                    if words and words[0].endswith("curator"):
                        found.append((document.name, shlex.join(words)))
    return found


def command_of(words: list[str]) -> tuple[click.Command, list[str]]:
    """The (sub)command the words name, and the words that name it."""
    command: click.Command = cli
    path: list[str] = []
    for word in words:
        if not isinstance(command, click.Group) or word not in command.commands:
            break
        command, path = command.commands[word], [*path, word]
    return command, path


def test_the_docs_show_commands_and_the_lexer_keeps_quoted_hashes() -> None:
    assert sum(name == "README.md" for name, _ in documented_command_lines()) >= 25
    assert shell_words('curator a --p "F# minor" && curator b # note') == [
        ["curator", "a", "--p", "F# minor"],
        ["curator", "b"],
    ]


@pytest.mark.parametrize(("document", "line"), documented_command_lines())
def test_every_documented_command_runs_its_help_and_takes_the_options_shown(
    run_cli, document: str, line: str
) -> None:
    command, path = command_of(shlex.split(line)[1:])
    assert path, f"{document}: {line!r} names no curator command"
    assert "Usage: " in run_cli(*path, "--help").output
    known = {opt for param in command.params for opt in param.opts + param.secondary_opts}
    shown = {word.split("=")[0] for word in shlex.split(line) if word.startswith("--")}
    assert shown <= known, f"{document}: {line!r}: {sorted(shown - known)} not options"


def test_init_makes_a_project_and_keeps_settings_on_rerun(run_cli, tmp_path: Path) -> None:
    root = tmp_path / "p"
    run_cli("init", root)
    assert (root / "curator.toml").is_file() and (root / "catalog.duckdb").is_file()
    settings = root / "curator.toml"
    settings.write_text(settings.read_text().replace("seed = 0", "seed = 5"))
    run_cli("init", root)
    assert "seed = 5" in settings.read_text()


def test_commands_find_the_project_upward(run_cli, tmp_path: Path, monkeypatch) -> None:
    init_project(tmp_path / "p")
    inside = tmp_path / "p" / "some" / "sub" / "folder"
    inside.mkdir(parents=True)
    monkeypatch.chdir(inside)
    result = run_cli("status", "--json")
    assert json.loads(result.output)["project"] == str((tmp_path / "p").resolve())


def test_outside_a_project_the_error_says_what_to_do(run_cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli("status", expect=1)
    assert "no curator.toml" in result.output and "curator init" in result.output
    result = run_cli("status", "--project", tmp_path, expect=1)
    assert "curator init" in result.output


def test_a_bad_setting_is_named(run_cli, tmp_path: Path) -> None:
    root = tmp_path / "p"
    init_project(root)
    (root / "curator.toml").write_text("[ingest]\nsegment_per_track = 3\n")
    result = run_cli("status", "--project", root, expect=1)
    assert "curator.toml" in result.output and "segment_per_track" in result.output
    (root / "curator.toml").write_text("[ingest]\nseed = 'zero'\n")
    result = run_cli("status", "--project", root, expect=1)
    assert "ingest.seed must be int" in result.output


def test_ingest_prints_counts_and_failures(run_curator, tmp_path: Path, write_audio) -> None:
    folder = write_audio("beats/good.wav", 45).parent
    (folder / "broken.flac").write_bytes(b"not audio at all" * 10)
    assert run_curator("init", tmp_path / "p").returncode == 0
    result = run_curator("ingest", folder, "--project", tmp_path / "p")
    assert result.returncode == 0, result.stderr
    assert "Found 2 audio file(s): 1 added (2 segments" in result.stderr
    assert "1 failed" in result.stderr
    assert "broken.flac" in result.stderr and "not a readable audio file" in result.stderr


def test_ingest_fails_when_nothing_can_be_read(run_curator, tmp_path: Path) -> None:
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "a.wav").write_bytes(b"")
    assert run_curator("init", tmp_path / "p").returncode == 0
    result = run_curator("ingest", folder, "--project", tmp_path / "p")
    assert result.returncode == 1
    assert "no audio could be read" in result.stderr and "empty file" in result.stderr


def test_status_json_counts_and_problems(run_cli, tmp_path: Path, write_audio) -> None:
    folder = write_audio("beats/good.wav", 45).parent
    (folder / "short.wav").write_bytes(b"")
    root = tmp_path / "p"
    run_cli("init", root)
    run_cli("ingest", folder, "--project", root)
    report = json.loads(run_cli("status", "--project", root, "--json").output)
    assert report["tracks"] == {"ingested": 1}
    assert report["segments"] == {"usable": 2}
    assert report["problems"] == [
        {"path": str(folder / "short.wav"), "status": "failed", "reason": "empty file (0 bytes)"}
    ]
    assert 0 < report["usable_hours"] < 70 / 3600


def test_metadata_export_in_the_seed_format(run_cli, tmp_path: Path, write_audio) -> None:
    folder = write_audio("beats/beat.wav", 80).parent
    root = tmp_path / "p"
    run_cli("init", root)
    run_cli("ingest", folder, "--project", root)
    records = json.loads(
        run_cli("metadata", "export", "--format", "json", "--project", root).output
    )
    assert len(records) == 2
    for segment_id, record in records.items():
        assert segment_id.endswith(("-0", "-1"))
        assert list(record) == [
            "source",
            "start",
            "duration",
            "instruments_tags",
            "genres_tags",
            "moods_tags",
            "key",
            "scale",
            "tempo",
        ]
        assert record["source"] == str(folder / "beat.wav")
        assert 20 <= record["duration"] <= 35
    out = tmp_path / "meta.jsonl"
    run_cli("metadata", "export", "--format", "jsonl", "--out", out, "--project", root)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {line.pop("id") for line in lines} == set(records)


def test_demo_data_renders_beats_with_truth(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "beats"
    result = run_cli("demo-data", out, "--n", "2", "--seed", "3")
    assert "Wrote 2 beats" in result.output
    truth = json.loads((out / "truth.json").read_text())
    assert sorted(truth) == ["beat_0000.wav", "beat_0001.wav"]
    assert all((out / name).is_file() for name in truth)
    assert {"tempo", "key", "scale", "instruments"} <= set(truth["beat_0000.wav"])


def test_analyze_then_export_shows_tempo_and_key(run_cli, ingested_project, beats_truth) -> None:
    root = str(ingested_project.root)
    result = run_cli("analyze", "--plugin", "essentia", "--project", root)
    assert "segment(s) analyzed, 0 failed" in result.output
    records = json.loads(run_cli("metadata", "export", "--project", root).output)
    confident = [r for r in records.values() if r["tempo"] is not None]
    assert confident, "some tempos pass the 0.7 confidence bar"
    for record in confident:
        stated = beats_truth[Path(record["source"]).name]["tempo"]
        assert min(abs(record["tempo"] / stated - f) for f in (0.5, 1, 2)) < 0.04
    assert "Nothing to do" in run_cli("analyze", "--plugin", "essentia", "--project", root).output


def test_tag_with_an_installed_plugin(run_cli, ingested_project) -> None:
    root = str(ingested_project.root)
    assert (
        "segment(s) tagged, 0 failed"
        in run_cli("tag", "--plugin", "brightness", "--project", root).output
    )
    assert "Nothing to do" in run_cli("tag", "--plugin", "brightness", "--project", root).output
    assert (
        "no tagger named 'nope'"
        in run_cli("tag", "--plugin", "nope", "--project", root, expect=1).output
    )


def test_interruptible_turns_kill_into_ctrl_c_and_exit_130(capsys) -> None:
    from curator.cli.common import interruptible

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as ended, interruptible("what was done is kept."):
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause()  # the handler raises before this returns
    assert ended.value.code == 130
    assert "Interrupted: what was done is kept." in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before


def test_interruptible_ends_a_run_its_work_reports_interrupted(capsys) -> None:
    from curator.cli.common import interruptible

    with pytest.raises(SystemExit) as ended:
        with interruptible("finished segments are saved.") as interrupted:
            pass  # a run that caught Ctrl-C itself returns a summary saying so
        interrupted()
    assert ended.value.code == 130
    assert "Interrupted: finished segments are saved." in capsys.readouterr().err
