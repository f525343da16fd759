"""The musicnn tagger: real frozen graphs run by Essentia, its facets, mapping and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import curator.plugins.musicnn as musicnn_plugin
from curator import demo
from curator.api import PluginContext, SegmentAudio
from curator.errors import CuratorError, SettingsError
from curator.plugins.musicnn import MusicnnTagger
from curator.plugins.musicnn.settings import MODELS, default_graph_folder
from curator.plugins.musicnn.tag_map import DEFAULT_MAP, FACETS, PLACEMENT, build_layout
from curator.registry import load_registry
from curator.registry.manager import get_plugin_manager
from curator.vocabulary import Facet, Vocabulary, default_vocabulary_dir, load_vocabulary

SR = 16000
GRAPHS = default_graph_folder()
needs_graphs = pytest.mark.skipif(
    not (GRAPHS / "MSD_musicnn.pb").is_file(),
    reason=f"no frozen musicnn graphs in {GRAPHS}: `make setup` makes them (CI runs it first)",
)


def segment(name: str, audio: np.ndarray) -> SegmentAudio:
    mono = 0.7 * audio / np.abs(audio).max()
    return SegmentAudio(name, mono.astype(np.float32)[:, None], SR)


@pytest.fixture(scope="module")
def clips() -> dict[str, SegmentAudio]:
    """10 s each: a piano part, a string part and a drum kit from the demo synth, and noise."""
    spec = demo.BeatSpec("clip", 90.0, "A", "minor", 10.0, ("kick", "snare", "hi-hat", "piano",
                         "strings"), 8, "boom bap", "dark")  # fmt: skip
    stems = demo.render_stems(spec, SR)
    kit = sum(stems[tag] / np.abs(stems[tag]).max() for tag in ("kick", "snare", "hi-hat"))
    noise = np.random.default_rng(0).standard_normal(10 * SR)
    parts = {"piano": stems["piano"], "strings": stems["strings"], "drums": kit, "noise": noise}
    return {name: segment(name, audio) for name, audio in parts.items()}


@pytest.fixture(scope="module")
def taggers() -> dict[str, MusicnnTagger]:
    """One set-up tagger per model (loading Essentia's TensorFlow takes a few seconds once)."""
    if not (GRAPHS / "MSD_musicnn.pb").is_file():
        pytest.skip(f"no frozen musicnn graphs in {GRAPHS}: `make setup` makes them")
    made = {}
    for model in MODELS:
        made[model] = MusicnnTagger()
        made[model].setup(PluginContext(settings={"model": model}))
    return made


def top(scores: dict[str, dict[str, float]], n: int = 3) -> list[str]:
    flat = sorted(
        ((v, tag) for by_tag in scores.values() for tag, v in by_tag.items()), reverse=True
    )
    return [tag for _, tag in flat[:n]]


def model_tags(model: str) -> list[str]:
    return [tag for facet in FACETS for tag in PLACEMENT[model][facet]]


# ---------------------------------------------------------------- the real model


@needs_graphs
@pytest.mark.parametrize("model", MODELS)
def test_scores_every_tag_in_its_facet_between_0_and_1(taggers, clips, model):
    results = taggers[model].tag([clips["piano"], clips["noise"]])
    assert len(results) == 2
    for result in results:
        assert set(result.scores) == set(FACETS)
        scored = {tag for by_tag in result.scores.values() for tag in by_tag}
        assert set(model_tags(model)) <= scored
        assert all(0.0 <= v <= 1.0 for by_tag in result.scores.values() for v in by_tag.values())
        assert result.embedding is not None and result.embedding.shape == (50,)
        assert result.embedding.dtype == np.float32


@needs_graphs
def test_different_audio_gets_different_tags(taggers, clips):
    # musicnn's own float16 features give every clip the same tags; Essentia's must not.
    tagger = taggers["MTT_musicnn"]
    results = dict(zip(clips, tagger.tag(list(clips.values())), strict=True))
    instruments = {name: r.scores["instruments"] for name, r in results.items()}
    assert top(results["piano"].scores, 1) == ["piano"]
    assert (
        instruments["piano"]["piano"]
        > 0.4
        > max(instruments[n]["piano"] for n in ("drums", "noise"))
    )
    assert {"violin", "strings"} & set(top(results["strings"].scores))
    assert {"beat", "drums", "techno"} & set(top(results["drums"].scores))
    assert {"fast", "loud"} & set(top(results["noise"].scores, 2))
    rows = np.stack([r.embedding for r in results.values()])
    gaps = np.abs(rows[:, None] - rows[None]).max(axis=2)
    assert gaps[~np.eye(len(rows), dtype=bool)].min() > 0.2


@needs_graphs
def test_msd_model_tells_noise_from_piano(taggers, clips):
    piano, noise = taggers["MSD_musicnn"].tag([clips["piano"], clips["noise"]])
    assert noise.scores["genres"]["dance"] > piano.scores["genres"]["dance"] + 0.2
    assert top(noise.scores, 3) != top(piano.scores, 3)


@needs_graphs
def test_short_segment_is_repeated_to_one_patch(taggers, clips):
    one_second = SegmentAudio("short", clips["piano"].audio[:SR], SR)
    (result,) = taggers["MTT_musicnn"].tag([one_second])
    assert result.scores["instruments"]["piano"] > 0.2


@needs_graphs
def test_cached_probabilities_re_tag_to_the_same_scores(taggers, clips):
    tagger = taggers["MSD_musicnn"]
    (tagged,) = tagger.tag([clips["drums"]])
    (again,) = tagger.tag_embeddings(tagged.embedding[None])
    assert again.scores == tagged.scores
    assert tagger.embedding_model == "musicnn-MSD_musicnn"


@needs_graphs
def test_wrong_sample_rate_is_refused(taggers, clips):
    wrong = SegmentAudio("x", clips["piano"].audio, 44100)
    with pytest.raises(ValueError, match="16000 Hz"):
        taggers["MSD_musicnn"].tag([wrong])


@needs_graphs
@pytest.mark.parametrize("model", MODELS)
def test_frozen_tag_list_matches_the_placement(model):
    info = json.loads((GRAPHS / f"{model}.json").read_text())
    assert (info["input"], info["output"]) == ("model/Placeholder", "model/Sigmoid")
    assert sorted(info["tags"]) == sorted(model_tags(model))


@needs_graphs
def test_settings_for_run_name_the_model_and_mapping(taggers):
    recorded = taggers["MTT_musicnn"].settings_for_run()
    assert recorded["model"] == "MTT_musicnn"
    assert recorded["tag_map"]["instruments"]["strings"] == ["strings", "violin", "cello"]


# ---------------------------------------------------------------- mapping (no model needed)


@pytest.mark.parametrize("model", MODELS)
def test_each_musicnn_tag_sits_in_one_facet(model):
    tags = model_tags(model)
    assert len(tags) == len(set(tags)) == 50


@pytest.mark.parametrize("model", MODELS)
def test_mapped_tags_are_in_the_shipped_vocabulary(model):
    vocabulary = load_vocabulary(default_vocabulary_dir())
    for facet, by_tag in DEFAULT_MAP[model].items():
        for tag, sources in by_tag.items():
            assert vocabulary.facet(facet).tag(tag) is not None, (facet, tag)
            assert set(sources) <= set(PLACEMENT[model]["instruments"] + PLACEMENT[model]["genres"]
                                        + PLACEMENT[model]["moods"])  # fmt: skip


def one_hot(tags: list[str], *hot: str) -> np.ndarray:
    return np.array([1.0 if tag in hot else 0.0 for tag in tags], np.float32)


def test_a_curator_tag_takes_the_highest_of_its_sources():
    tags = model_tags("MTT_musicnn")
    layout = build_layout("MTT_musicnn", tags, {}, None)
    scores = layout.scores(one_hot(tags, "violin", "techno"))
    assert scores["instruments"]["strings"] == 1.0
    assert scores["instruments"]["violin"] == 1.0
    assert scores["instruments"]["piano"] == 0.0
    assert scores["genres"]["edm"] == 1.0
    assert "kick" not in scores["instruments"]  # musicnn cannot tell drum parts apart


def test_tag_map_overrides_add_and_remove():
    tags = model_tags("MTT_musicnn")
    overrides = {"instruments": {"synth pad": ["synth"]}, "genres": {"edm": []}}
    scores = build_layout("MTT_musicnn", tags, overrides, None).scores(one_hot(tags, "synth"))
    assert scores["instruments"]["synth pad"] == 1.0
    assert "edm" not in scores["genres"]
    assert scores["instruments"]["strings"] == 0.0  # untouched entries keep their default


def test_mapped_tags_missing_from_the_vocabulary_are_left_out():
    shipped = load_vocabulary(default_vocabulary_dir())
    genres = shipped.facet("genres")
    without_edm = Facet("genres", tuple(t for t in genres.tags if t.name != "edm"), 0.2, 2)
    vocabulary = Vocabulary((without_edm, shipped.facet("moods")))
    tags = model_tags("MSD_musicnn")
    scores = build_layout("MSD_musicnn", tags, {}, vocabulary).scores(one_hot(tags, "rnb"))
    assert scores["genres"]["r&b"] == 1.0 and scores["genres"]["rnb"] == 1.0
    assert "edm" not in scores["genres"]
    assert "plucked guitar" not in scores["instruments"]  # no instruments facet at all


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"instruments": {"piano": ["keys"]}}, "no tag 'keys'"),
        ({"tempo": {"fast": ["fast"]}}, "no facet 'tempo'"),
        ({"moods": {"chill": "soft"}}, "list of musicnn tag names"),
    ],
)
def test_bad_tag_map_is_named(overrides, message):
    with pytest.raises(SettingsError, match=message):
        build_layout("MTT_musicnn", model_tags("MTT_musicnn"), overrides, None)


# ---------------------------------------------------------------- set-up and registration


def test_missing_graph_names_the_file_and_the_command(tmp_path: Path):
    tagger = MusicnnTagger()
    context = PluginContext(settings={"graph_dir": str(tmp_path)}, project_root=tmp_path)
    with pytest.raises(CuratorError) as caught:
        tagger.setup(context)
    message = str(caught.value)
    assert str(tmp_path / "MSD_musicnn.pb") in message
    assert "make setup" in message and "scripts/setup.sh" in message


@pytest.mark.parametrize(
    ("settings", "message"),
    [({"model": "MSD_vgg"}, "not one of"), ({"modle": "MTT_musicnn"}, "unknown key")],
)
def test_bad_settings_are_named(settings, message):
    with pytest.raises(SettingsError, match=message):
        MusicnnTagger().setup(PluginContext(settings=settings))


def test_graph_dir_defaults_to_curator_models(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("CURATOR_MODELS", str(tmp_path))
    assert default_graph_folder() == tmp_path / "musicnn"
    monkeypatch.delenv("CURATOR_MODELS")
    assert default_graph_folder().parts[-2:] == (".models", "musicnn")


def test_registered_like_any_plugin():
    pm = get_plugin_manager(load_entry_points=False)
    pm.register(musicnn_plugin, name="musicnn")
    tagger = load_registry(pm).tagger("musicnn")
    assert isinstance(tagger, MusicnnTagger)
    assert (tagger.sample_rate, tagger.channels, tagger.version) == (16000, 1, "1")
    assert tagger.facets == ("instruments", "genres", "moods")


def test_installed_entry_point_loads_it():
    registry = load_registry()
    assert isinstance(registry.tagger("musicnn"), MusicnnTagger)
    assert "musicnn" not in registry.errors


# ---------------------------------------------------------------- the penultimate embedding


@needs_graphs
def test_penultimate_embedding_keeps_the_tags_and_adds_the_layer(taggers, clips):
    tagger = MusicnnTagger()
    tagger.setup(PluginContext(settings={"embedding": "penultimate"}))
    assert tagger.embedding_model == "musicnn-MSD_musicnn-penultimate"
    assert tagger.settings_for_run()["embedding"] == "penultimate"
    assert "embedding" not in taggers["MSD_musicnn"].settings_for_run()
    plain = taggers["MSD_musicnn"].tag([clips["piano"], clips["drums"]])
    deep = tagger.tag([clips["piano"], clips["drums"]])
    for before, after in zip(plain, deep, strict=True):
        assert after.embedding is not None and after.embedding.shape == (250,)
        # One graph run gives both outputs: the tag probabilities are exactly the same.
        np.testing.assert_array_equal(after.embedding[:50], before.embedding)
        assert after.scores == before.scores
    (again,) = tagger.tag_embeddings(deep[0].embedding[None])
    assert again.scores == deep[0].scores
    layer = [r.embedding[50:] for r in deep]
    assert np.abs(layer[0] - layer[1]).max() > 0.5, "piano and drums differ in the layer"


def test_unknown_embedding_setting_is_named():
    with pytest.raises(SettingsError, match="embedding = 'last' is not one of tags, penultimate"):
        MusicnnTagger().setup(PluginContext(settings={"embedding": "last"}))
