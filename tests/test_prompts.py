"""Prompt writing: the template writer, the checks, write_prompts, human edits, the CLI."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from typing import Any

import pytest

from curator import hookimpl
from curator.api import PluginContext, PromptWriter
from curator.catalogue.ingest import ingest
from curator.catalogue.metadata import record_labels, segment_metadata
from curator.curation.review import save_segment
from curator.errors import CuratorError, PromptRejected
from curator.music import pitch_class
from curator.plugins import template_writer
from curator.plugins.template_writer import TemplateWriter
from curator.project import Project
from curator.prompts.checking import key_problems, prompt_problems, tempo_problems
from curator.prompts.editing import edit_prompt, prompt_table, revert_prompt
from curator.prompts.writing import segment_seed, write_prompts
from curator.registry import load_registry
from curator.storage.prompts import effective_prompts, prompt_versions, prompts_in_use
from curator.storage.selections import SelectionItem, save_selection
from curator.testing import registry_of
from curator.vocabulary import default_vocabulary_dir, load_vocabulary

VOCABULARY = load_vocabulary(default_vocabulary_dir())
SEED_RECORD: dict[str, Any] = {
    "source": "39118.wav",
    "start": 63.0,
    "duration": 26.0,
    "instruments_tags": ["plucked guitar", "synth bells", "movie sample"],
    "genres_tags": ["rap with soul"],
    "moods_tags": ["melancholic", "love"],
    "key": "G",
    "scale": "minor",
    "tempo": 109.0,
}
# Labels per segment, in segment order: enough variety to see tempo and key come and go.
LABELS = [
    {
        "instruments_tags": ["808", "hi-hat"],
        "genres_tags": ["trap"],
        "moods_tags": ["dark"],
        "tempo": 140.0,
        "key": "F#",
        "scale": "minor",
    },
    {
        "instruments_tags": ["piano", "kick", "snare"],
        "genres_tags": ["boom bap"],
        "moods_tags": ["nostalgic"],
        "tempo": 90.0,
    },
    {
        "instruments_tags": ["synth pad"],
        "genres_tags": ["cloud rap"],
        "moods_tags": ["dreamy"],
        "key": "D",
        "scale": "major",
    },
    {"instruments_tags": ["choir", "808"], "genres_tags": ["drill"], "moods_tags": []},
]


def writer(synonym_rate: float | None = None) -> TemplateWriter:
    settings = {} if synonym_rate is None else {"synonym_rate": synonym_rate}
    plugin = TemplateWriter()
    plugin.setup(PluginContext(settings=settings, vocabulary=VOCABULARY))
    return plugin


def without(record: Mapping[str, Any], *facets: str) -> dict[str, Any]:
    return {
        k: ([] if k in facets and k.endswith("_tags") else None if k in facets else v)
        for k, v in record.items()
    }


@pytest.fixture
def labelled(project: Project, write_audio) -> Project:
    """Four usable segments (two short tracks), labelled as in LABELS by an import."""
    for i in range(2):
        write_audio(f"beats/b{i}.wav", 45, sr=8000, seed=i)
    ingest(project, [project.root.parent / "audio" / "beats"])
    ids = sorted(segment_metadata(project))
    assert len(ids) == 4
    label(project, dict(zip(ids, LABELS, strict=True)))
    return project


def label(project: Project, records: Mapping[str, Mapping[str, Any]]) -> None:
    labels = [x for sid, record in records.items() for x in record_labels(sid, dict(record))]
    project.catalog.import_model_labels(labels, list(records), "seed-tags", {})


def template_only():
    return registry_of(template_writer)


# -- the template writer ------------------------------------------------------------------------


def test_template_is_deterministic_for_a_seed_and_varies_across_seeds() -> None:
    plugin = writer()
    assert plugin.write(SEED_RECORD, 7) == writer().write(SEED_RECORD, 7)
    texts = [plugin.write(SEED_RECORD, seed) for seed in range(40)]
    assert len(set(texts)) >= 30
    assert len({t.split()[0] for t in texts}) >= 5  # several sentence patterns, not one
    assert all(prompt_problems(t, SEED_RECORD, VOCABULARY, 300) == [] for t in texts)


def test_template_draws_synonyms_from_the_vocabulary() -> None:
    record = {"moods_tags": ["dark"], "genres_tags": [], "instruments_tags": ["808"]}
    synonyms = {"sinister", "ominous", "dark and menacing", "808 bass", "booming 808"}
    always = [writer(1.0).write(record, seed).lower() for seed in range(30)]
    never = [writer(0.0).write(record, seed).lower() for seed in range(30)]
    drawn = {s for s in synonyms if any(s in text for text in always)}
    assert len(drawn) >= 3, always
    assert all("sinister" not in t and "ominous" not in t and "dark" in t for t in never)


def test_template_names_tempo_and_key_only_when_the_metadata_has_them() -> None:
    plugin = writer()
    for seed in range(30):
        full = plugin.write(SEED_RECORD, seed)
        assert "109 BPM" in full and "G minor" in full
        bare = plugin.write(without(SEED_RECORD, "tempo", "key", "scale"), seed)
        assert not re.search(r"\d|BPM|major|minor|key", bare), bare
        assert tempo_problems(bare, None) == [] and key_problems(bare, None, None) == []
    rounded = plugin.write({**SEED_RECORD, "tempo": 139.6}, 1)
    assert "140 BPM" in rounded


FACETS = ("instruments_tags", "genres_tags", "moods_tags", "tempo", "key")


@pytest.mark.parametrize("missing", list(itertools.product([False, True], repeat=len(FACETS))))
def test_template_copes_with_any_facet_missing(missing: tuple[bool, ...]) -> None:
    gone = [facet for facet, drop in zip(FACETS, missing, strict=True) if drop]
    record = without(SEED_RECORD, *gone, *(["scale"] if "key" in gone else []))
    for seed in range(12):
        text = writer().write(record, seed)
        assert not re.search(r"  | ,|,,|, \.|\.\.|^[a-z]|\b(?:with|using|at|in|and)\.", text), text
        assert text.endswith(".") and not text.startswith(" ")
        assert prompt_problems(text, record, VOCABULARY, 300) == [], text


def test_template_settings_are_checked() -> None:
    with pytest.raises(CuratorError, match="unknown key"):
        writer_with({"rate": 1})
    with pytest.raises(CuratorError, match="between 0 and 1"):
        writer_with({"synonym_rate": 2.0})


def writer_with(settings: dict[str, Any]) -> None:
    TemplateWriter().setup(PluginContext(settings=settings, vocabulary=VOCABULARY))


# -- checking prompts ---------------------------------------------------------------------------


def test_a_faithful_prompt_passes_and_each_fault_is_named() -> None:
    good = (
        "A wistful and romantic soulful hip hop beat at 109 BPM in G minor, using guitar "
        "plucks, bells and film samples."
    )
    assert prompt_problems(good, SEED_RECORD, VOCABULARY, 300) == []
    faults = {
        "names 120 BPM, the metadata says 109": good.replace("109 BPM", "120 BPM"),
        "names the key A, the metadata says G": good.replace("G minor", "A minor"),
        "names a major scale, the metadata says minor": good.replace("G minor", "G major"),
        "does not mention synth bells": good.replace(", bells", ""),
        "more than one line": good.replace(" at 109", "\nat 109"),
        "control character(s) '\\x07'": good.replace("beat", "beat\x07"),
        "characters, more than 60": good,
        "empty": "  ",
    }
    for reason, text in faults.items():
        problems = prompt_problems(text, SEED_RECORD, VOCABULARY, 60 if "60" in reason else 300)
        assert any(reason in p for p in problems), (reason, problems)


def test_tempo_and_key_the_metadata_lacks_are_contradictions() -> None:
    assert tempo_problems("Trap at 140 bpm", None) == ["names a tempo the metadata does not have"]
    assert tempo_problems("Trap, 140-BPM", 139.6) == []
    assert key_problems("A beat in the key of F", None, None)
    assert key_problems("Dark beat in a minor key", "G", "major")
    assert key_problems("A dreamy beat, Db minor", "C#", "minor") == []  # the same key
    assert key_problems("A dark and moody beat", None, None) == []
    assert pitch_class("F#") == pitch_class("Gb") == 6 and pitch_class("H") is None


def test_tags_match_by_synonym_plural_and_spelling() -> None:
    record = {"instruments_tags": ["hi-hat rolls", "hi-hat", "808"], "moods_tags": ["chill"]}
    text = "Laid-back beat with rolling hihats, crisp hats and 808s."
    assert prompt_problems(text, record, VOCABULARY) == []
    assert prompt_problems("Laid-back beat with 808s.", record, VOCABULARY) == [
        "does not mention hi-hat rolls, hi-hat"
    ]
    # A word inside another is no mention: "clap" is not in "claptrap".
    assert prompt_problems("claptrap", {"instruments_tags": ["clap"]}, VOCABULARY)


# -- write_prompts ------------------------------------------------------------------------------


def test_write_prompts_stores_one_prompt_per_usable_segment(labelled: Project) -> None:
    summary = write_prompts(labelled, registry=template_only())
    assert (summary.written, summary.skipped, summary.failed) == (4, 0, 0)
    assert summary.writer == "template@1" and summary.run_id is not None
    prompts = effective_prompts(labelled.catalog)
    metadata = segment_metadata(labelled)
    assert set(prompts) == set(metadata)
    for segment_id, text in prompts.items():
        assert prompt_problems(text, metadata[segment_id], VOCABULARY, 300) == []
    assert [sid for sid, _ in summary.examples] == sorted(prompts)[:3]
    run = next(r for r in labelled.catalog.runs() if r["id"] == summary.run_id)
    assert (run["kind"], run["status"], run["done"]) == ("prompt", "finished", 4)
    assert run["settings"] and json.loads(run["settings"])["seed"] == 0


def test_current_prompts_are_skipped_until_seed_labels_or_force_change(labelled: Project) -> None:
    registry = template_only()
    write_prompts(labelled, registry=registry)
    first = effective_prompts(labelled.catalog)
    again = write_prompts(labelled, registry=registry)
    assert (again.written, again.from_cache, again.skipped, again.run_id) == (0, 0, 4, None)
    reseeded = write_prompts(labelled, seed=5, registry=registry)
    assert reseeded.written == 4
    assert effective_prompts(labelled.catalog) != first
    one = sorted(segment_metadata(labelled))[1]
    label(labelled, {one: {**LABELS[1], "moods_tags": ["chill"]}})
    relabelled = write_prompts(labelled, seed=5, registry=registry)
    assert (relabelled.written, relabelled.skipped) == (1, 3)
    assert relabelled.examples[0][0] == one
    forced = write_prompts(labelled, seed=5, force=True, registry=registry)
    assert (forced.written, forced.from_cache, forced.skipped) == (4, 0, 0)


def test_a_run_with_every_prompt_current_reads_no_metadata(labelled: Project, monkeypatch) -> None:
    import curator.prompts.writing

    registry = template_only()
    ids = sorted(segment_metadata(labelled))
    write_prompts(labelled, ids[:2], registry=registry)
    write_prompts(labelled, registry=registry)

    def unread(*args: object, **kwargs: object) -> None:
        raise AssertionError("a run with every prompt current read the metadata")

    with monkeypatch.context() as patched:
        patched.setattr(curator.prompts.writing, "segment_metadata", unread)
        again = write_prompts(labelled, registry=registry)
        assert (again.segments, again.written, again.skipped, again.run_id) == (4, 0, 4, None)
        some = write_prompts(labelled, ids[:2], registry=registry)  # its own check
        assert (some.segments, some.written, some.skipped) == (2, 0, 2)
    # A label changed, a segment excluded, a curator's edit: the next run reads and writes
    # what changed, and ends where rewriting everything from scratch would.
    label(labelled, {ids[1]: {**LABELS[1], "moods_tags": ["chill"]}})
    save_segment(labelled, ids[3], [], excluded=True)
    edit_prompt(labelled, ids[0], "A curator's beat.")
    changed = write_prompts(labelled, registry=registry)
    assert (changed.segments, changed.written, changed.skipped) == (3, 1, 2)
    incremental = effective_prompts(labelled.catalog)
    forced = write_prompts(labelled, force=True, registry=registry)
    assert forced.written == 3 and effective_prompts(labelled.catalog) == incremental
    assert write_prompts(labelled, seed=1, registry=registry).written == 3  # a new job


def test_per_segment_seeds_are_stable_and_differ() -> None:
    assert segment_seed(0, "a-0") == segment_seed(0, "a-0")
    seeds = {segment_seed(s, f"track-{i}") for s in range(3) for i in range(50)}
    assert len(seeds) == 150 and all(0 <= s < 2**31 for s in seeds)


def test_a_human_edit_wins_and_survives_rewriting(labelled: Project) -> None:
    registry = template_only()
    write_prompts(labelled, registry=registry)
    segment_id = sorted(segment_metadata(labelled))[0]
    edit_prompt(labelled, segment_id, "  Hand-written: a dark trap beat with a big 808.  ")
    assert effective_prompts(labelled.catalog)[segment_id] == (
        "Hand-written: a dark trap beat with a big 808."
    )
    write_prompts(labelled, seed=9, force=True, registry=registry)
    in_use = prompts_in_use(labelled.catalog, [segment_id])[segment_id]
    assert (in_use.writer, in_use.text) == (
        "human",
        "Hand-written: a dark trap beat with a big 808.",
    )
    assert effective_prompts(labelled.catalog, writer="template")[segment_id].startswith("Hand")
    writers = [v["writer"] for v in prompt_versions(labelled.catalog, segment_id)]
    assert writers == ["human", "template@1"]
    assert revert_prompt(labelled, segment_id) is True
    assert prompts_in_use(labelled.catalog, [segment_id])[segment_id].writer == "template@1"
    assert revert_prompt(labelled, segment_id) is False
    with pytest.raises(CuratorError, match="more than one line"):
        edit_prompt(labelled, segment_id, "two\nlines")


class Scripted(PromptWriter):
    """A writer whose answers a test decides: per segment id, a text or an exception."""

    name = "scripted"
    version = "2"

    def __init__(self, answers: Mapping[str, Any] | None = None) -> None:
        self.answers = dict(answers or {})
        self.calls: list[str] = []

    def write(self, metadata: Mapping[str, Any], seed: int) -> str:
        where = (metadata["source"], metadata["start"])
        segment_id = next(k for k in self.answers if self.answers[k][0] == where)
        self.calls.append(segment_id)
        answer = self.answers[segment_id][1]
        if isinstance(answer, BaseException):
            raise answer
        return answer() if callable(answer) else answer


class Provides:
    def __init__(self, writer: PromptWriter) -> None:
        self.writer = writer

    @hookimpl
    def register_prompt_writers(self, register) -> None:
        register(self.writer)


def scripted(project: Project, answers: dict[str, Any]) -> Scripted:
    """A Scripted writer keyed by segment id (it sees metadata: it matches file and start)."""
    metadata = segment_metadata(project, include_unusable=True)
    return Scripted(
        {sid: ((metadata[sid]["source"], metadata[sid]["start"]), a) for sid, a in answers.items()}
    )


def test_a_failing_segment_is_reported_and_the_rest_go_on(labelled: Project) -> None:
    ids = sorted(segment_metadata(labelled))
    plugin = scripted(
        labelled,
        {
            ids[0]: "Dark trap beat at 150 BPM.",  # the metadata says 140
            ids[1]: PromptRejected("the model kept naming a key"),
            ids[2]: RuntimeError("bug in the writer"),
            ids[3]: "Drill beat with choir and 808.",
        },
    )
    summary = write_prompts(labelled, writer="scripted", registry=registry_of(Provides(plugin)))
    assert (summary.written, summary.failed) == (1, 3)
    reasons = dict(summary.failures)
    assert "names 150 BPM, the metadata says 140" in reasons[ids[0]]
    assert reasons[ids[1]] == "the model kept naming a key"
    assert reasons[ids[2]] == "RuntimeError: bug in the writer"
    assert effective_prompts(labelled.catalog) == {ids[3]: "Drill beat with choir and 808."}
    assert dict(labelled.catalog.run_failures(summary.run_id)) == {
        sid: reasons[sid] for sid in ids[:3]
    }


def test_unknown_ids_are_reported_and_given_ids_only_are_written(labelled: Project) -> None:
    ids = sorted(segment_metadata(labelled))
    summary = write_prompts(labelled, [ids[2], "no-such-id"], registry=template_only())
    assert summary.written == 1 and summary.failures == [
        ("no-such-id", "no segment with this id in the catalogue")
    ]
    assert list(effective_prompts(labelled.catalog)) == [ids[2]]


def test_a_writer_that_cannot_work_stops_the_run_keeping_what_was_written(
    labelled: Project,
) -> None:
    ids = sorted(segment_metadata(labelled))
    plugin = scripted(
        labelled,
        {ids[0]: "Dark trap beat with 808 and hats.", ids[1]: CuratorError("server gone")},
    )
    with pytest.raises(CuratorError, match="server gone"):
        write_prompts(labelled, writer="scripted", registry=registry_of(Provides(plugin)))
    assert list(effective_prompts(labelled.catalog)) == [ids[0]]
    assert labelled.catalog.runs()[-1]["status"] == "failed"


def test_an_interrupted_run_resumes_where_it_stopped(labelled: Project, monkeypatch) -> None:
    import curator.prompts.writing

    monkeypatch.setattr(curator.prompts.writing, "BATCH_SEGMENTS", 1)
    ids = sorted(segment_metadata(labelled))
    answers = {sid: f"Beat number {i} with 808." for i, sid in enumerate(ids)}
    stored_while_writing: list[set[str]] = []

    def second_answer() -> str:
        # The first prompt is in the catalogue already: a crash now would not lose it.
        stored_while_writing.append(set(effective_prompts(labelled.catalog)))
        return answers[ids[1]]

    plugin = scripted(labelled, {**answers, ids[1]: second_answer, ids[2]: KeyboardInterrupt()})
    registry = registry_of(Provides(plugin))
    summary = write_prompts(labelled, writer="scripted", registry=registry)
    assert summary.interrupted and summary.written == 2
    assert stored_while_writing == [{ids[0]}]
    assert set(effective_prompts(labelled.catalog)) == set(ids[:2])
    assert labelled.catalog.runs()[-1]["status"] == "interrupted"
    plugin.answers = scripted(labelled, answers).answers
    plugin.calls.clear()
    resumed = write_prompts(labelled, writer="scripted", registry=registry)
    assert plugin.calls == ids[2:] and resumed.skipped == 2
    assert resumed.run_id == summary.run_id  # the same run, finished now
    assert labelled.catalog.runs()[-1]["status"] == "finished"
    assert effective_prompts(labelled.catalog) == answers


def test_answers_given_before_come_from_the_cache(labelled: Project) -> None:
    ids = sorted(segment_metadata(labelled))
    plugin = scripted(labelled, {sid: f"Beat {sid} with 808." for sid in ids})
    registry = registry_of(Provides(plugin))
    write_prompts(labelled, writer="scripted", registry=registry)
    write_prompts(labelled, writer="scripted", seed=1, registry=registry)
    assert len(plugin.calls) == 8
    back = write_prompts(labelled, writer="scripted", registry=registry)
    assert (back.written, back.from_cache, len(plugin.calls)) == (0, 4, 8)
    forced = write_prompts(labelled, writer="scripted", force=True, registry=registry)
    assert (forced.written, forced.from_cache, len(plugin.calls)) == (4, 0, 12)


def test_prompt_table_filters_by_selection_tag_and_text(labelled: Project) -> None:
    ids = sorted(segment_metadata(labelled))
    write_prompts(labelled, registry=template_only())
    save_selection(labelled.catalog, "pick", "test", [SelectionItem(i) for i in ids[1:3]])
    assert [r["id"] for r in prompt_table(labelled)] == ids
    assert [r["id"] for r in prompt_table(labelled, selection="pick")] == ids[1:3]
    assert [r["id"] for r in prompt_table(labelled, tag="808")] == [ids[0], ids[3]]
    row = prompt_table(labelled, tag="boom bap")[0]
    assert row["writer"] == "template@1" and row["tempo"] == 90.0
    word = row["prompt"].split()[-1].strip(".")
    assert ids[1] in [r["id"] for r in prompt_table(labelled, text=word.upper())]
    assert prompt_table(labelled, text="zzz-not-there") == []


def test_prompt_table_is_rebuilt_only_when_labels_or_prompts_change(
    labelled: Project, monkeypatch
) -> None:
    import curator.prompts.editing

    def afresh(**filters: Any) -> list[dict[str, Any]]:
        with monkeypatch.context() as patched:
            patched.setattr(curator.prompts.editing, "_TABLES", {})
            return prompt_table(labelled, **filters)

    ids = sorted(segment_metadata(labelled))
    write_prompts(labelled, registry=template_only())
    first = prompt_table(labelled)
    assert first == afresh() and prompt_table(labelled)[0] is first[0]  # kept, not rebuilt
    label(labelled, {ids[1]: {**LABELS[1], "moods_tags": ["chill"]}})
    edit_prompt(labelled, ids[0], "A curator's beat.")
    save_segment(labelled, ids[3], [], excluded=True)
    save_selection(labelled.catalog, "pick", "test", [SelectionItem(i) for i in ids[2:]])
    rows = {r["id"]: r for r in prompt_table(labelled)}
    assert list(rows) == ids[:3] and prompt_table(labelled) == afresh()
    assert rows[ids[1]]["stale"] == "+moods/chill, -moods/nostalgic"
    assert (rows[ids[0]]["prompt"], rows[ids[0]]["writer"]) == ("A curator's beat.", "human")
    assert [r["id"] for r in prompt_table(labelled, selection="pick")] == ids[2:]
    assert prompt_table(labelled, selection="pick") == afresh(selection="pick")


def test_both_writers_are_installed_plugins() -> None:
    registry = load_registry()
    assert {"template", "ollama"} <= set(registry.names("prompt_writers"))
    assert registry.contributions["prompt_writers"].owners["template"] == "template"


# -- the command line -----------------------------------------------------------------------


@pytest.fixture
def only_writers(monkeypatch) -> None:
    # Loading every installed plugin (Essentia, CLAP) costs seconds the CLI tests need not.
    monkeypatch.setenv("CURATOR_LOAD_PLUGINS", "template,ollama")


def test_cli_writes_prompts_then_finds_them_current(labelled: Project, run_cli, only_writers):
    result = run_cli("prompts", "--project", labelled.root)
    assert "template@1: 4 prompt(s) written, 0 from the cache, 0 already up to date" in (
        result.output
    )
    prompts = effective_prompts(labelled.catalog)
    for segment_id, text in sorted(prompts.items())[:3]:
        assert f"{segment_id}: {text}" in result.output
    again = run_cli("prompts", "--project", labelled.root, "--json")
    summary = json.loads(again.stdout)
    assert (summary["written"], summary["skipped"]) == (0, 4)


def test_cli_selection_limit_and_seed(labelled: Project, run_cli, only_writers) -> None:
    ids = sorted(segment_metadata(labelled))
    save_selection(labelled.catalog, "few", "test", [SelectionItem(i) for i in ids[:3]])
    result = run_cli(
        "prompts", "--project", labelled.root, "--selection", "few", "--limit", "2", "--seed", "4"
    )
    assert "2 prompt(s) written" in result.output and "1 left for a later run" in result.output
    assert set(effective_prompts(labelled.catalog)) == set(ids[:2])
    run_cli("prompts", "--project", labelled.root, "--selection", "few", "--seed", "4")
    assert set(effective_prompts(labelled.catalog)) == set(ids[:3])
    missing = run_cli("prompts", "--project", labelled.root, "--selection", "nope", expect=1)
    assert "no selection named 'nope' (known: few)" in missing.output
    unknown = run_cli("prompts", "--project", labelled.root, "--writer", "gpt", expect=1)
    assert "no prompt writer named 'gpt'" in unknown.output and "template" in unknown.output


def test_cli_show_lists_a_segments_prompts_in_use_first(labelled: Project, run_cli, only_writers):
    segment_id = sorted(segment_metadata(labelled))[0]
    none_yet = run_cli("prompts", "--project", labelled.root, "--show", segment_id)
    assert "No prompt for" in none_yet.output
    write_prompts(labelled, registry=template_only())
    edit_prompt(labelled, segment_id, "My own words about this trap beat.")
    shown = run_cli("prompts", "--project", labelled.root, "--show", segment_id).stdout
    lines = shown.splitlines()
    assert lines[0].startswith("in use  human") and lines[0].endswith("about this trap beat.")
    assert "template@1" in lines[1] and not lines[1].startswith("in use")
    as_json = json.loads(
        run_cli("prompts", "--project", labelled.root, "--show", segment_id, "--json").stdout
    )
    assert [(v["writer"], v["in_use"]) for v in as_json] == [("human", True), ("template@1", False)]


def test_cli_help_explains_the_command(run_cli) -> None:
    text = run_cli("prompts", "--help").output
    for option in ("--selection", "--writer", "--seed", "--force", "--limit", "--show"):
        assert option in text
    assert "human" in text.lower() or "curator's edit" in text


def test_a_curators_edit_records_who_made_it_and_show_names_them(
    labelled: Project, run_cli, only_writers, monkeypatch
) -> None:
    write_prompts(labelled, registry=template_only())
    first, second = sorted(segment_metadata(labelled))[:2]
    edit_prompt(labelled, first, "Ana's words about this trap beat.", actor="ana")
    monkeypatch.setenv("CURATOR_USER", "ben")
    edit_prompt(labelled, second, "Ben's words about this beat.")  # no name: as the CLI names one
    versions = prompt_versions(labelled.catalog, first)
    assert [(v["writer"], v["actor"]) for v in versions] == [("human", "ana"), ("template@1", None)]
    assert prompts_in_use(labelled.catalog, [second])[second].actor == "ben"
    edit_prompt(labelled, first, "Ben's rewording of Ana's prompt.")  # the latest editor counts
    assert prompts_in_use(labelled.catalog, [first])[first].actor == "ben"
    shown = run_cli("prompts", "--project", labelled.root, "--show", first).stdout.splitlines()
    assert shown[0].startswith("in use  human (ben)") and "template@1" in shown[1]
    as_json = json.loads(
        run_cli("prompts", "--project", labelled.root, "--show", first, "--json").stdout
    )
    assert [v["actor"] for v in as_json] == ["ben", None]
