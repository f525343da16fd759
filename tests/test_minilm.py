"""The minilm plugin: the bundled all-MiniLM-L6-v2 embeds tag phrases offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from curator.api import PluginContext
from curator.errors import SettingsError
from curator.plugins import minilm
from curator.registry import load_registry
from curator.testing import registry_of


@pytest.fixture(scope="module")
def embedder() -> minilm.MiniLMEmbedder:
    found = registry_of(minilm).embedder("minilm")
    found.setup(PluginContext())
    return found


def cosine(rows: np.ndarray, a: int, b: int) -> float:
    return float(rows[a] @ rows[b])


def test_registers_a_text_embedder_named_minilm() -> None:
    registry = registry_of(minilm)
    assert registry.names("embedders") == ["minilm"]
    assert not registry.errors
    found = registry.embedder("minilm")
    assert (found.name, found.version, found.modalities) == ("minilm", "1", ("text",))


def test_rows_are_unit_length_float32(embedder) -> None:
    rows = embedder.embed_text(["808 bass", "booming 808", "cheerful"])
    assert rows.shape == (3, 384) and rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    assert embedder.embed_text([]).shape == (0, 384)


def test_similar_phrases_are_closer_than_unrelated_ones(embedder) -> None:
    rows = embedder.embed_text(["808 bass", "booming 808", "cheerful"])
    assert cosine(rows, 0, 1) > cosine(rows, 0, 2) + 0.2


def test_padding_does_not_change_a_phrase(embedder) -> None:
    # Mean pooling must ignore pad tokens: a short phrase batched with a long one is the same.
    alone = embedder.embed_text(["hats"])
    batched = embedder.embed_text(["hats", "a very long phrase about distorted sliding 808 bass"])
    np.testing.assert_allclose(alone[0], batched[0], atol=1e-5)


def test_setting_up_again_keeps_the_loaded_model(embedder) -> None:
    backend = embedder.backend
    embedder.setup(PluginContext())
    assert embedder.backend is backend


def test_settings_name_unknown_keys_and_bad_values() -> None:
    with pytest.raises(SettingsError, match=r"unknown key.*modle"):
        minilm.MiniLMSettings.from_mapping({"modle": "x"})
    with pytest.raises(SettingsError, match="batch_size must be at least 1"):
        minilm.MiniLMSettings.from_mapping({"batch_size": 0})
    assert minilm.MiniLMSettings.from_mapping({"batch_size": 8}).batch_size == 8


def test_a_folder_without_a_model_is_refused_with_the_fix(tmp_path: Path) -> None:
    fresh = minilm.MiniLMEmbedder()
    with pytest.raises(minilm.MiniLMModelError, match=r"config\.json missing.*\[plugins\.minilm\]"):
        fresh.setup(PluginContext(settings={"model": str(tmp_path)}))


def test_importing_the_plugin_loads_no_model_library() -> None:
    # Every CLI command loads every plugin, so torch must wait for setup.
    code = (
        "import sys, curator.plugins.minilm; "
        "print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_installed_plugin_is_found_by_the_registry() -> None:
    registry = load_registry()
    found = registry.embedder("minilm")
    found.setup(PluginContext())
    rows = found.embed_text(["808 bass", "booming 808", "cheerful"])
    assert cosine(rows, 0, 1) > cosine(rows, 0, 2)
