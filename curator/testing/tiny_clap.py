"""A tiny random-weight CLAP model with a real BPE tokenizer, built offline for tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curator.vocabulary import default_vocabulary_dir, load_vocabulary

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTa's ids 0-4
MEL_BINS = 16
# A 10 s window at this hop gives 251 mel frames, which must fit the audio tower's
# spec_size * (spec_size // MEL_BINS) = 256 time steps.
HOP_LENGTH = 1920


def build_tiny_clap(folder: Path, seed: int = 0) -> Path:
    """Save a ClapModel, ClapProcessor and tokenizer under `folder`; return the folder.

    Weights are random (seeded, so two builds are identical); the tokenizer is a byte-level
    BPE trained on the default vocabulary's phrases. Builds in about a second on a CPU.
    """
    import torch
    from transformers import ClapModel, ClapProcessor

    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    model = ClapModel(tiny_config(len(tokenizer)))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    ClapProcessor(tiny_feature_extractor(), tokenizer).save_pretrained(folder)
    return folder


def tiny_config(vocab_size: int) -> Any:
    """A ClapConfig with a 2-layer RoBERTa and a 2-stage HTSAT, projecting to 32 dims."""
    from transformers import ClapAudioConfig, ClapConfig, ClapTextConfig

    text = ClapTextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
    )
    audio = ClapAudioConfig(
        num_mel_bins=MEL_BINS,
        spec_size=64,
        window_size=4,
        depths=[1, 1],
        num_attention_heads=[2, 4],
        patch_embeds_hidden_size=16,
        hidden_size=32,  # patch_embeds_hidden_size * 2 ** (stages - 1)
        enable_fusion=False,
    )
    return ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=32)


def tiny_feature_extractor() -> Any:
    """48 kHz, 10 s windows, MEL_BINS mel bands; no random cropping or fusion."""
    from transformers import ClapFeatureExtractor

    return ClapFeatureExtractor(
        feature_size=MEL_BINS,
        sampling_rate=48000,
        hop_length=HOP_LENGTH,
        max_length_s=10,
        frequency_min=50,
        truncation="rand_trunc",
        padding="repeatpad",
    )


def tiny_tokenizer(corpus: list[str] | None = None) -> Any:
    """A RoBERTa tokenizer whose byte-level BPE is trained on `corpus` (default: tag phrases)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus or vocabulary_phrases(),
        vocab_size=400,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
    )
    # The BPE model takes (left, right) pairs, whatever the `list[str]` hint says.
    merges: Any = [tuple(pair) for pair in json.loads(bpe.to_str())["model"]["merges"]]
    return RobertaTokenizer(vocab=bpe.get_vocab(), merges=merges, model_max_length=128)


def vocabulary_phrases() -> list[str]:
    """Every tag and synonym of the default vocabulary: the words tests embed."""
    vocabulary = load_vocabulary(default_vocabulary_dir())
    return [phrase for tag in vocabulary.tags() for phrase in tag.phrases]
