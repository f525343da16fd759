"""Turning an original laion-clap `.pt` checkpoint into a ClapModel folder, without laion_clap."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from curator.errors import CuratorError

# Substring renames from laion-clap's names to transformers' ClapModel names, applied in
# order (the same table transformers' own conversion script uses).
RENAMES = (
    ("text_branch", "text_model"),
    ("audio_branch", "audio_model.audio_encoder"),
    ("attn", "attention.self"),
    ("self.proj", "output.dense"),
    ("attention.self_mask", "attn_mask"),
    ("mlp.fc1", "intermediate.dense"),
    ("mlp.fc2", "output.dense"),
    ("norm1", "layernorm_before"),
    ("norm2", "layernorm_after"),
    ("bn0", "batch_norm"),
)
# Buffers ClapModel computes itself; a checkpoint need not carry them.
DERIVED = ("position_ids", "token_type_ids", "relative_position_index", "num_batches_tracked")
AUDIO = "audio_model.audio_encoder."
TEXT = "text_model."


def convert_laion_checkpoint(
    pt_path: Path, out_dir: Path, tokenizer: str | Path | None = None
) -> Path:
    """Write a folder `ClapModel.from_pretrained` loads, from a laion-clap checkpoint.

    The architecture is read from the weights' shapes. `tokenizer` (a folder or hub id
    holding RoBERTa's tokenizer) is copied in when given; without it the folder has no
    tokenizer and the CLAP tagger refuses it until one is added.
    """
    from transformers import ClapModel

    state = rename_laion_keys(read_laion_state(pt_path))
    try:
        config = config_from_state(state)
    except KeyError as exc:
        raise CuratorError(
            f"{pt_path}: no tensor {exc} after renaming; is it a laion-clap HTSAT + RoBERTa "
            "checkpoint?"
        ) from exc
    model = ClapModel(config)
    load_strictly(model, state, pt_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    _save_processor(out_dir, model.config, tokenizer)
    return out_dir


def read_laion_state(pt_path: Path) -> dict[str, Any]:
    """The checkpoint's tensors by name, without DataParallel's `module.` prefix."""
    import torch

    try:
        checkpoint = torch.load(pt_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle of anything but tensors is refused, by design
        raise CuratorError(f"{pt_path}: not a readable laion-clap checkpoint ({exc})") from exc
    state = checkpoint.get("state_dict", checkpoint)
    return {key.removeprefix("module."): value for key, value in state.items()}


def rename_laion_keys(state: Mapping[str, Any]) -> dict[str, Any]:
    """laion-clap names to ClapModel names; fused `qkv` projections split in three."""
    renamed: dict[str, Any] = {}
    for key, value in state.items():
        new = _projection_name(_renamed(key))
        if ".qkv." in new:
            for name, part in zip(("query", "key", "value"), value.chunk(3, dim=0), strict=True):
                renamed[new.replace("qkv", name)] = part
        else:
            renamed[new] = value
    return renamed


def _renamed(key: str) -> str:
    for old, new in RENAMES:
        key = key.replace(old, new)
    return key


def _projection_name(key: str) -> str:
    # laion's projections are Sequential(Linear, ReLU, Linear): indices 0 and 2.
    match = re.match(r"(text|audio)_projection\.(\d+)\.(.*)", key)
    if not match:
        return key
    linear = 1 if match.group(2) == "0" else 2
    return f"{match.group(1)}_projection.linear{linear}.{match.group(3)}"


def config_from_state(state: Mapping[str, Any]) -> Any:
    """A ClapConfig whose sizes match the tensors in `state`."""
    from transformers import ClapConfig

    projection = state["text_projection.linear2.weight"].shape[0]
    return ClapConfig(
        text_config=_text_config(state),
        audio_config=_audio_config(state),
        projection_dim=projection,
    )


def _text_config(state: Mapping[str, Any]) -> dict[str, Any]:
    vocab_size, hidden = state[f"{TEXT}embeddings.word_embeddings.weight"].shape
    return {
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "num_hidden_layers": _count(state, rf"{TEXT}encoder\.layer\.(\d+)\."),
        "num_attention_heads": max(1, hidden // 64),  # RoBERTa's heads are 64 wide
        "intermediate_size": state[f"{TEXT}encoder.layer.0.intermediate.dense.weight"].shape[0],
        "max_position_embeddings": state[f"{TEXT}embeddings.position_embeddings.weight"].shape[0],
    }


def _audio_config(state: Mapping[str, Any]) -> dict[str, Any]:
    stages = _count(state, rf"{AUDIO}layers\.(\d+)\.")
    tables = [
        state[f"{AUDIO}layers.{i}.blocks.0.attention.self.relative_position_bias_table"]
        for i in range(stages)
    ]
    fused = any("fusion_model" in key for key in state)
    return {
        "depths": [_count(state, rf"{AUDIO}layers\.{i}\.blocks\.(\d+)\.") for i in range(stages)],
        "num_attention_heads": [table.shape[1] for table in tables],
        "window_size": (round(tables[0].shape[0] ** 0.5) + 1) // 2,  # table is (2w-1)^2 rows
        "patch_embeds_hidden_size": state[f"{AUDIO}patch_embed.proj.weight"].shape[0],
        "hidden_size": state[f"{AUDIO}norm.weight"].shape[0],
        "num_mel_bins": state[f"{AUDIO}batch_norm.weight"].shape[0],
        "enable_fusion": fused,
        "fusion_type": "aff_2d" if fused else None,
    }


def _count(state: Mapping[str, Any], pattern: str) -> int:
    found = {int(m.group(1)) for key in state if (m := re.match(pattern, key))}
    return len(found)


def load_strictly(model: Any, state: Mapping[str, Any], source: Path) -> None:
    """Load `state`, refusing a checkpoint that leaves any learned weight at random.

    `load_state_dict(strict=False)` reports but does not refuse missing keys, and a
    wrong prefix would load nothing at all.
    """
    known = model.state_dict()
    usable = {k: v for k, v in state.items() if k in known}
    missing = sorted(k for k in known if k not in usable and not k.endswith(DERIVED))
    if missing:
        raise CuratorError(
            f"{source}: {len(missing)} weights of the CLAP model are not in the checkpoint "
            f"(first: {', '.join(missing[:3])}); is it a laion-clap HTSAT + RoBERTa checkpoint?"
        )
    model.load_state_dict(usable, strict=False)


def _save_processor(out_dir: Path, config: Any, tokenizer: str | Path | None) -> None:
    from transformers import AutoTokenizer, ClapFeatureExtractor, ClapProcessor

    # laion's unfused models were trained on random 10 s crops ("rand_trunc", 50 Hz floor).
    extractor = ClapFeatureExtractor(
        feature_size=config.audio_config.num_mel_bins,
        frequency_min=50,
        truncation="fusion" if config.audio_config.enable_fusion else "rand_trunc",
    )
    if tokenizer is None:
        extractor.save_pretrained(out_dir)
        return
    ClapProcessor(extractor, AutoTokenizer.from_pretrained(str(tokenizer))).save_pretrained(out_dir)
