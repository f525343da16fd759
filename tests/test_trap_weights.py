"""The trap tagger's weights files and settings: versioned by hash, loaded safely, checked."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from curator.api import PluginContext, SegmentAudio
from curator.errors import CuratorError, SettingsError
from curator.plugins.trap.features import MelSettings, cut_windows
from curator.plugins.trap.model import (
    TrapWeights,
    build_net,
    file_version,
    load_weights,
    save_weights,
)
from curator.plugins.trap.settings import TrapSettings
from curator.plugins.trap.tagger import TrapTagger
from curator.plugins.trap.tags import TAGS


def random_weights(folder: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    net = build_net(len(TAGS), MelSettings(), width=8, embedding=16)
    weights = TrapWeights(
        net, list(TAGS), dict.fromkeys(TAGS, 0.5), MelSettings(), 2.0, {"seed": seed}, {}
    )
    return save_weights(weights, folder)


def test_a_weights_file_is_named_and_versioned_by_its_hash(tmp_path: Path) -> None:
    path = random_weights(tmp_path)
    version = file_version(path)
    assert path.name == f"trap-{version}.pt"
    loaded = load_weights(path)
    assert loaded.version == version and loaded.tags == list(TAGS)
    tagger = TrapTagger()
    tagger.setup(PluginContext(settings={"weights": str(path)}))
    assert tagger.version == version and tagger.embedding_model == f"trap-{version}"
    other = random_weights(tmp_path / "other", seed=1)
    assert file_version(other) != version


def test_a_loaded_network_gives_the_saved_networks_outputs(tmp_path: Path) -> None:
    torch.manual_seed(3)
    net = build_net(len(TAGS), MelSettings(), width=8, embedding=16).eval()
    audio = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 22050)).astype("f4"))
    weights = TrapWeights(net, list(TAGS), {}, MelSettings(), 1.0, {}, {})
    loaded = load_weights(save_weights(weights, tmp_path))
    with torch.no_grad():
        assert torch.allclose(net(audio), loaded.net(audio), atol=1e-6)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_file_that_is_not_trap_weights_is_refused_by_name(tmp_path: Path) -> None:
    foreign = tmp_path / "trap-foreign.pt"
    torch.save({"something": 1}, foreign)
    with pytest.raises(CuratorError, match="not a trap weights file"):
        load_weights(foreign)
    code = tmp_path / "trap-code.pt"
    code.write_bytes(pickle.dumps(print))  # a pickle that would run code: never unpickled
    with pytest.raises(CuratorError, match=re.escape(str(code))):
        load_weights(code)
    with pytest.raises(CuratorError, match="does not exist"):
        load_weights(tmp_path / "missing.pt")


def test_settings_name_bad_values() -> None:
    with pytest.raises(SettingsError, match=r"thresholds\.snare"):
        TrapSettings.from_mapping({"thresholds": {"snare": 2}})
    with pytest.raises(SettingsError, match="top_k"):
        TrapSettings.from_mapping({"top_k": -1})
    with pytest.raises(SettingsError, match="colour"):
        TrapSettings.from_mapping({"colour": "red"})


def test_thresholds_for_tags_the_model_does_not_know_are_refused(tmp_path: Path) -> None:
    path = random_weights(tmp_path)
    tagger = TrapTagger()
    with pytest.raises(CuratorError, match="kazoo"):
        tagger.setup(PluginContext(settings={"weights": str(path), "thresholds": {"kazoo": 0.3}}))


def test_windows_cover_the_whole_segment() -> None:
    audio = np.arange(10, dtype=np.float32)
    windows = cut_windows(audio, 4)
    assert windows.shape == (3, 4)
    assert windows[-1].tolist() == [6, 7, 8, 9]  # the last window ends at the end
    assert cut_windows(np.arange(3, dtype=np.float32), 4).shape == (1, 4)  # repeated to fill


def test_cached_embeddings_rescore_exactly_as_tagging_audio(tmp_path: Path) -> None:
    path = random_weights(tmp_path)
    tagger = TrapTagger()
    tagger.setup(PluginContext(settings={"weights": str(path), "thresholds": {"808": 0.2}}))
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((22050 * 5, 1))).astype(np.float32)
    [result] = tagger.tag([SegmentAudio("s", audio, 22050)])
    [again] = tagger.tag_embeddings(result.embedding[None])
    assert again.scores == result.scores
    assert set(result.scores["instruments"]) == set(TAGS)
    assert tagger.label_threshold("instruments", "808") == 0.2
    assert tagger.label_threshold("instruments", "snare") == 0.5
    with pytest.raises(ValueError, match="22050 Hz"):
        tagger.tag([SegmentAudio("s", audio, 16000)])
