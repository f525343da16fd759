"""The CLAP tagger on a tiny random-weight model built offline: loading, windows, scores, cache."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from curator.api import PluginContext, SegmentAudio
from curator.catalogue.audio import decode_window
from curator.errors import CuratorError, SettingsError
from curator.plugins.clap import ClapModelError, ClapSettings, ClapTagger, ClapTextEmbedder
from curator.plugins.clap.convert import DERIVED, convert_laion_checkpoint
from curator.plugins.clap.model import ClapBackend, hub_offline, load_backend
from curator.plugins.clap.windows import cut_windows, window_starts
from curator.project import Project
from curator.testing.tiny_clap import build_tiny_clap
from curator.vocabulary import Vocabulary

SR = 48000


@pytest.fixture
def make_tagger(
    tiny_clap: Path, vocabulary: Vocabulary, tmp_path: Path
) -> Callable[..., ClapTagger]:
    """make_tagger(**[plugins.clap] settings) -> a ClapTagger set up offline on the tiny model."""

    def make(cache_dir: Path | None = None, **settings: object) -> ClapTagger:
        tagger = ClapTagger()
        context = PluginContext(
            settings={"model": str(tiny_clap), **settings},
            vocabulary=vocabulary,
            cache_dir=cache_dir or tmp_path / "cache",
            offline=True,
        )
        tagger.setup(context)
        return tagger

    return make


def noise(seconds: float, seed: int) -> SegmentAudio:
    audio = 0.1 * np.random.default_rng(seed).standard_normal((round(seconds * SR), 1))
    return SegmentAudio(f"segment-{seed}", audio.astype(np.float32), SR)


def test_loads_a_local_folder_with_the_hub_offline(
    make_tagger: Callable[..., ClapTagger], vocabulary: Vocabulary, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tagger = make_tagger()
    assert tagger.facets == vocabulary.facet_names
    assert tagger.embedding_model == "clap:tiny-clap"
    assert tagger.tag_matrix.shape == (len(vocabulary.tags()), 32)
    assert np.allclose(np.linalg.norm(tagger.tag_matrix, axis=1), 1.0, atol=1e-5)


def test_a_model_missing_offline_says_how_to_provide_it() -> None:
    settings = ClapSettings(model="curator-tests/no-such-clap")
    with pytest.raises(ClapModelError) as info:
        load_backend(settings, offline=True, device="cpu")
    message = str(info.value)
    assert "curator-tests/no-such-clap" in message
    assert "hf download" in message and "[plugins.clap]" in message


def test_hf_hub_offline_alone_keeps_loading_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_offline(False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert not hub_offline(False) and hub_offline(True)


def test_a_missing_local_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ClapModelError, match="does not exist"):
        load_backend(ClapSettings(model=str(tmp_path / "gone")), offline=True, device="cpu")


def test_a_tokenizer_without_its_vocabulary_is_refused(tiny_clap: Path, tmp_path: Path) -> None:
    from transformers import RobertaTokenizer

    broken = Path(shutil.copytree(tiny_clap, tmp_path / "broken-clap"))
    RobertaTokenizer().save_pretrained(broken)  # what transformers 5 makes with no vocab files
    with pytest.raises(ClapModelError, match=r"only \d tokens"):
        load_backend(ClapSettings(model=str(broken)), offline=True, device="cpu")


@pytest.mark.parametrize(
    ("seconds", "hop", "expected"),
    [
        (25.0, 10.0, [0, 10, 20]),  # the 5 s tail is half a window: padded and kept
        (22.0, 10.0, [0, 10]),  # the 2 s tail is dropped
        (3.0, 10.0, [0]),  # a short segment still gets its one window
        (10.0, 10.0, [0]),
        (22.0, 5.0, [0, 5, 10, 15]),  # overlapping windows stop once one reaches the end
    ],
)
def test_window_starts(seconds: float, hop: float, expected: list[int]) -> None:
    starts = window_starts(round(seconds * SR), SR, 10.0, hop)
    assert starts == [s * SR for s in expected]


def test_a_short_last_window_is_filled_by_repeating_it() -> None:
    audio = np.random.default_rng(0).standard_normal(25 * SR).astype(np.float32)
    windows = cut_windows(audio, SR, 10.0, 10.0)
    assert windows.shape == (3, 10 * SR)
    tail = audio[20 * SR :]
    assert np.array_equal(windows[2][: 5 * SR], tail)
    assert np.array_equal(windows[2][5 * SR :], tail)


def test_an_embedding_does_not_depend_on_its_batch(
    make_tagger: Callable[..., ClapTagger],
) -> None:
    tagger = make_tagger(batch_windows=2)
    alone = tagger.embed_segments([noise(25, seed=1)])[0]
    together = tagger.embed_segments([noise(12, seed=2), noise(25, seed=1), noise(31, seed=3)])
    assert np.allclose(alone, together[1], atol=1e-5)
    assert np.isclose(np.linalg.norm(alone), 1.0, atol=1e-5)
    assert alone.dtype == np.float32


def test_tagging_cached_embeddings_gives_the_same_scores(
    make_tagger: Callable[..., ClapTagger], vocabulary: Vocabulary
) -> None:
    tagger = make_tagger()
    results = tagger.tag([noise(22, seed=4), noise(27, seed=5)])
    embeddings = np.stack([r.embedding for r in results if r.embedding is not None])
    again = tagger.tag_embeddings(embeddings)
    order = tagger.tag_order()
    assert len(order) == len(vocabulary.tags())
    for first, second in zip(results, again, strict=True):
        assert set(first.scores) == set(vocabulary.facet_names)
        for facet in vocabulary.facets:
            assert set(first.scores[facet.name]) == {tag.name for tag in facet.tags}
        for column, (facet, tag) in enumerate(order):
            assert abs(first.scores[facet][tag] - second[column]) < 1e-5


def test_retagging_from_cache_scores_every_row_in_tag_order(
    make_tagger: Callable[..., ClapTagger],
) -> None:
    tagger = make_tagger()
    rng = np.random.default_rng(0)
    tagger.tag_matrix = rng.standard_normal((len(tagger.tag_matrix), 512)).astype(np.float32)
    embeddings = rng.standard_normal((40_000, 512)).astype(np.float32)
    scores = tagger.tag_embeddings(embeddings)
    assert scores.shape == (40_000, len(tagger.tag_order()))
    np.testing.assert_allclose(scores[123], tagger.tag_matrix @ embeddings[123], rtol=1e-5)
    with pytest.raises(CuratorError, match="another model"):
        tagger.tag_embeddings(embeddings[:, :64])


def test_tag_embeddings_are_cached_on_disk_and_reused(
    make_tagger: Callable[..., ClapTagger], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "shared-cache"
    first = make_tagger(cache_dir=cache)
    assert len(list((cache / "clap").glob("*.npy"))) == 1
    calls = count_text_calls(monkeypatch)
    second = make_tagger(cache_dir=cache)
    assert calls == []
    assert np.array_equal(first.tag_matrix, second.tag_matrix)
    make_tagger(cache_dir=cache, phrase_template="{} beat")
    assert calls and len(list((cache / "clap").glob("*.npy"))) == 2


def count_text_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Wrap the text tower; the returned list grows by the batch size on every call."""
    calls: list[int] = []
    original = ClapBackend.embed_text

    def counting(self: ClapBackend, phrases: list[str], batch: int = 64) -> np.ndarray:
        calls.append(len(phrases))
        return original(self, phrases, batch)

    monkeypatch.setattr(ClapBackend, "embed_text", counting)
    return calls


def test_tags_real_audio_decoded_from_a_project(
    project: Project, write_audio: Callable[..., Path], tiny_clap: Path
) -> None:
    path = write_audio("beat.wav", seconds=30.0)
    shutil.copytree(tiny_clap, project.root / "models" / "tiny-clap")
    tagger = ClapTagger()
    context = PluginContext(
        settings={"model": "models/tiny-clap"},  # relative to the project, not the cwd
        vocabulary=project.vocabulary(),
        project_root=project.root,
        cache_dir=project.root / "cache",
    )
    tagger.setup(context)
    audio = decode_window(path, 2.0, 26.0, tagger.sample_rate, tagger.channels)
    [result] = tagger.tag([SegmentAudio("beat", audio, tagger.sample_rate)])
    assert tagger.embedding_model == "clap:tiny-clap"
    assert set(result.scores) == set(project.vocabulary().facet_names)
    # Each score is the cosine between the segment's embedding and the tag's phrases averaged,
    # computed here from the text tower directly, not through the tagger's cached tag matrix.
    segment = result.embedding / np.linalg.norm(result.embedding)
    for tag in project.vocabulary().tags():
        phrases = tagger.backend.embed_text(list(tag.phrases), 8).mean(axis=0)
        expected = float(segment @ (phrases / np.linalg.norm(phrases)))
        assert result.scores[tag.facet][tag.name] == pytest.approx(expected, abs=1e-5), tag.name


def test_the_text_embedder_matches_the_tagger_phrases(
    make_tagger: Callable[..., ClapTagger], tiny_clap: Path, vocabulary: Vocabulary
) -> None:
    embedder = ClapTextEmbedder()
    embedder.setup(PluginContext(settings={"model": str(tiny_clap)}, vocabulary=vocabulary))
    tag = vocabulary.tags()[0]
    rows = embedder.embed_text(list(tag.phrases))
    assert rows.shape == (len(tag.phrases), 32)
    mean = rows.mean(axis=0)
    assert np.allclose(mean / np.linalg.norm(mean), make_tagger().tag_matrix[0], atol=1e-5)


def test_settings_reject_unknown_keys_and_bad_values() -> None:
    with pytest.raises(SettingsError, match="windows_seconds"):
        ClapSettings.from_mapping({"windows_seconds": 5})
    with pytest.raises(SettingsError, match="pooling"):
        ClapSettings.from_mapping({"pooling": "median"})
    with pytest.raises(SettingsError, match="hop_seconds must be float"):
        ClapSettings.from_mapping({"hop_seconds": "5"})
    assert ClapSettings.from_mapping({"hop_seconds": 5}).hop_seconds == 5.0


def test_a_window_longer_than_the_model_takes_is_refused(
    make_tagger: Callable[..., ClapTagger],
) -> None:
    with pytest.raises(SettingsError, match="random crop"):
        make_tagger(window_seconds=15.0)


def test_settings_for_run_are_the_ones_that_change_scores(
    make_tagger: Callable[..., ClapTagger], tiny_clap: Path
) -> None:
    tagger = make_tagger(batch_windows=3, pooling="max")
    assert tagger.settings_for_run() == {
        "model": str(tiny_clap),
        "window_seconds": 10.0,
        "hop_seconds": 10.0,
        "pooling": "max",
        "phrase_template": "{}",
    }
    assert tagger.embedding_model == "clap:tiny-clap@w10-h10-max"


def test_the_tiny_model_builds_the_same_twice(tiny_clap: Path, tmp_path: Path) -> None:
    again = build_tiny_clap(tmp_path / "again")
    for name in ("model.safetensors", "tokenizer.json"):
        assert (again / name).read_bytes() == (tiny_clap / name).read_bytes()


def test_registered_through_the_entry_point() -> None:
    from curator.registry import load_registry

    registry = load_registry()
    assert isinstance(registry.tagger("clap"), ClapTagger)
    assert registry.embedder("clap").modalities == ("text",)


AUDIO_TO_LAION = (
    ("attention.self.relative_position_bias_table", "attn.relative_position_bias_table"),
    ("attention.output.dense", "attn.proj"),
    ("intermediate.dense", "mlp.fc1"),
    ("output.dense", "mlp.fc2"),
    ("layernorm_before", "norm1"),
    ("layernorm_after", "norm2"),
    ("batch_norm", "bn0"),
)


def laion_names(state: dict[str, Any]) -> dict[str, Any]:
    """A ClapModel state dict under laion-clap's names, as its training script saved it."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        if key.endswith(DERIVED):
            continue
        key = re.sub(r"_projection\.linear(\d)\.", laion_projection, key)
        key = key.replace("text_model.", "text_branch.")
        if key.startswith("audio_model.audio_encoder."):
            key = key.replace("audio_model.audio_encoder.", "audio_branch.")
            for hf, laion in AUDIO_TO_LAION:
                key = key.replace(hf, laion)
        out[f"module.{key}"] = value
    return fuse_qkv(out)


def laion_projection(match: re.Match[str]) -> str:
    return f"_projection.{2 * int(match[1]) - 2}."  # linear1, linear2 -> Sequential 0, 2


def fuse_qkv(state: dict[str, Any]) -> dict[str, Any]:
    import torch

    for key in [k for k in state if ".attention.self.query." in k and "audio_branch" in k]:
        parts = [state.pop(key.replace("query", name)) for name in ("query", "key", "value")]
        state[key.replace("attention.self.query", "attn.qkv")] = torch.cat(parts)
    return state


def test_a_laion_checkpoint_converts_to_the_same_model(tiny_clap: Path, tmp_path: Path) -> None:
    import torch
    from transformers import ClapModel

    original = ClapModel.from_pretrained(tiny_clap).state_dict()
    torch.save({"epoch": 3, "state_dict": laion_names(original)}, tmp_path / "laion.pt")
    folder = convert_laion_checkpoint(tmp_path / "laion.pt", tmp_path / "converted", tiny_clap)
    converted = ClapModel.from_pretrained(folder).state_dict()
    assert converted.keys() == original.keys()
    assert all(torch.equal(converted[k], original[k]) for k in original)
    load_backend(ClapSettings(model=str(folder)), offline=True, device="cpu")


def test_a_checkpoint_missing_weights_is_refused(tiny_clap: Path, tmp_path: Path) -> None:
    import torch
    from transformers import ClapModel

    state = laion_names(ClapModel.from_pretrained(tiny_clap).state_dict())
    del state["module.audio_branch.layers.0.blocks.0.norm2.bias"]
    torch.save({"state_dict": state}, tmp_path / "laion.pt")
    with pytest.raises(CuratorError, match=r"1 weights .*layernorm_after\.bias"):
        convert_laion_checkpoint(tmp_path / "laion.pt", tmp_path / "converted")


def test_curator_tag_with_clap_then_retag_from_cache(
    tiny_clap: Path, ingested_project, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole path a curator takes: tag the catalogue, change the vocabulary, re-tag."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    project = ingested_project
    settings = project.root / "curator.toml"
    settings.write_text(settings.read_text() + f'\n[plugins.clap]\nmodel = "{tiny_clap}"\n')
    root = str(project.root)
    assert (
        "segment(s) tagged, 0 failed"
        in run_cli("tag", "--plugin", "clap", "--project", root).output
    )
    ids, vectors = project.catalog.embeddings(f"clap:{tiny_clap.name}")
    assert len(ids) == len(project.catalog.segment_rows()) and vectors.shape[1] == 32
    moods = project.vocabulary_dir / "moods.toml"
    moods.write_text(moods.read_text() + '"hypnotic" = ["trance-like", "looping"]\n')
    result = run_cli("tag", "--plugin", "clap", "--from-cache", "--project", root)
    assert f"{len(ids)} segment(s) tagged" in result.output
    last = project.catalog.runs()[-1]
    assert last["from_cache"]
    assert ("moods", "hypnotic") in project.catalog.run_tags(last["id"])
