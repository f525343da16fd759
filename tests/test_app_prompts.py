"""The Prompts page, driven with Streamlit's AppTest: filter, listen, edit, revert, write."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from curator import app as app_package
from curator.access.users import add_user, users_file
from curator.api import PluginContext
from curator.catalogue.ingest import ingest
from curator.catalogue.metadata import record_labels, segment_metadata
from curator.plugins import template_writer
from curator.plugins.template_writer import TemplateWriter
from curator.project import Project
from curator.prompts.writing import segment_seed, write_prompts
from curator.storage.prompts import effective_prompts, prompts_in_use
from curator.storage.selections import SelectionItem, save_selection
from curator.testing import registry_of

PAGE = str(Path(app_package.__file__).parent / "pages" / "6_Prompts.py")
LABELS = [
    {"instruments_tags": ["808"], "genres_tags": ["trap"], "moods_tags": ["dark"], "tempo": 140.0},
    {"instruments_tags": ["piano"], "genres_tags": ["boom bap"], "moods_tags": ["nostalgic"]},
    {"instruments_tags": ["synth pad"], "genres_tags": ["cloud rap"], "key": "D", "scale": "major"},
    {"instruments_tags": ["choir", "808"], "genres_tags": ["drill"]},
]


@pytest.fixture
def prompted(project: Project, write_audio, monkeypatch) -> Project:
    """Four labelled segments, three with a template prompt, the fourth without."""
    for i in range(2):
        write_audio(f"beats/b{i}.wav", 45, sr=8000, seed=i)
    ingest(project, [project.root.parent / "audio" / "beats"])
    ids = sorted(segment_metadata(project))
    labels = [x for sid, r in zip(ids, LABELS, strict=True) for x in record_labels(sid, r)]
    project.catalog.import_model_labels(labels, ids, "seed-tags", {})
    write_prompts(project, ids[:3], registry=registry_of(template_writer))
    monkeypatch.setenv("CURATOR_PROJECT", str(project.root))
    monkeypatch.setenv("CURATOR_LOAD_PLUGINS", "template,ollama")
    return project


def open_page() -> AppTest:
    page = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not page.exception, page.exception
    return page


def editor(page: AppTest, segment_id: str):
    return next(t for t in page.text_area if t.key.startswith(f"prompt-{segment_id}-"))


def test_the_page_lists_segments_with_their_prompt_writer_and_player(prompted: Project) -> None:
    page = open_page()
    ids = sorted(segment_metadata(prompted))
    table = page.dataframe[0].value
    assert table["id"].tolist() == ids
    assert table["writer"].tolist()[:3] == ["template@1"] * 3 and table["writer"].isna()[3]
    prompts = effective_prompts(prompted.catalog)
    assert [editor(page, sid).value for sid in ids] == [prompts.get(sid, "") for sid in ids]
    assert len(page.get("audio")) == 4
    captions = [c.value for c in page.caption]
    assert captions.count("In use: written by template@1") == 3
    assert "In use: no prompt yet" in captions


def test_a_curators_edit_is_saved_wins_and_can_be_reverted(prompted: Project) -> None:
    segment_id = sorted(segment_metadata(prompted))[0]
    written = effective_prompts(prompted.catalog)[segment_id]
    page = open_page()
    editor(page, segment_id).input("A menacing trap beat, 808 up front.")
    page.button(key=f"save-{segment_id}").click().run()
    assert not page.exception
    in_use = prompts_in_use(prompted.catalog, [segment_id])[segment_id]
    assert (in_use.writer, in_use.text) == ("human", "A menacing trap beat, 808 up front.")
    assert editor(page, segment_id).value == "A menacing trap beat, 808 up front."
    assert "In use: a curator's edit" in [c.value for c in page.caption]
    page.button(key=f"revert-{segment_id}").click().run()
    assert effective_prompts(prompted.catalog)[segment_id] == written
    assert editor(page, segment_id).value == written
    editor(page, segment_id).input("two\nlines")
    page.button(key=f"save-{segment_id}").click().run()
    assert "more than one line" in page.error[0].value


def test_filters_narrow_the_list(prompted: Project) -> None:
    ids = sorted(segment_metadata(prompted))
    save_selection(prompted.catalog, "pair", "test", [SelectionItem(i) for i in ids[2:]])
    page = open_page()
    page.sidebar.selectbox(key="prompts-tag").select("808").run()
    assert page.dataframe[0].value["id"].tolist() == [ids[0], ids[3]]
    page.sidebar.selectbox(key="prompts-selection").select("pair").run()
    assert page.dataframe[0].value["id"].tolist() == [ids[3]]
    page.sidebar.selectbox(key="prompts-tag").select("any").run()
    page.sidebar.text_input(key="prompts-text").input(ids[2]).run()
    assert page.dataframe[0].value["id"].tolist() == [ids[2]]
    page.sidebar.text_input(key="prompts-text").input("no such words").run()
    assert "No segment matches the filter." in [i.value for i in page.info]


def test_writing_prompts_for_the_filtered_segments(prompted: Project) -> None:
    ids = sorted(segment_metadata(prompted))
    before = effective_prompts(prompted.catalog)
    page = open_page()
    page.sidebar.selectbox(key="prompts-tag").select("808").run()
    page.number_input(key="prompts-seed").set_value(7).run()
    page.checkbox(key="prompts-force").check().run()
    page.button(key="write-prompts").click().run()
    assert not page.exception
    assert "template@1: 2 written, 0 from the cache, 0 already up to date, 0 failed." in [
        s.value for s in page.success
    ]
    after = effective_prompts(prompted.catalog)
    assert set(after) == set(ids)  # the fourth segment got its first prompt
    assert after[ids[1]] == before[ids[1]] and after[ids[2]] == before[ids[2]]
    writer = TemplateWriter()
    writer.setup(PluginContext(vocabulary=prompted.vocabulary()))
    metadata = segment_metadata(prompted)
    assert after[ids[0]] == writer.write(metadata[ids[0]], segment_seed(7, ids[0]))


def test_a_signed_in_curators_prompt_edit_is_stored_and_shown_under_that_name(
    prompted: Project, monkeypatch
) -> None:
    add_user(users_file(prompted), "ana", "correct horse")
    monkeypatch.setenv("CURATOR_USER", "server-login")  # whoever runs the app is not the curator
    segment_id = sorted(segment_metadata(prompted))[0]
    page = AppTest.from_file(PAGE, default_timeout=60).run()
    page.text_input[0].input("ana")
    page.text_input[1].input("correct horse")
    page.button[0].click().run()
    assert not page.exception, page.exception
    editor(page, segment_id).input("Ana's words: a menacing trap beat.")
    page.button(key=f"save-{segment_id}").click().run()
    assert not page.exception, page.exception
    in_use = prompts_in_use(prompted.catalog, [segment_id])[segment_id]
    assert (in_use.writer, in_use.actor) == ("human", "ana")
    table = page.dataframe[0].value
    assert table.set_index("id")["curator"][segment_id] == "ana"
    assert table["curator"].isna().sum() == 3  # writers' prompts name their writer instead
    assert "Edited by ana" in [c.value for c in page.caption]
