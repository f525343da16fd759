"""A tiny Stable Audio Open-shaped model built offline, for tests and smoke runs.

`python -m training tiny OUT_DIR` writes:
- OUT_DIR/t5/: a T5 encoder with tiny layers (its width is t5-small's 512, which the library's
  T5 conditioner requires for that name) and a word-level tokenizer trained on a few words;
- OUT_DIR/model_config.json: a `diffusion_cond` model shaped like Stable Audio Open 1.0 (DiT,
  oobleck VAE, T5 prompt conditioner loaded from that `model_path`, number conditioners for
  seconds_start/seconds_total), with a `training` section;
- OUT_DIR/model.safetensors: its random weights, loadable as a base checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SAMPLE_RATE = 16000
# 4 * 4 * 4: a latent frame per 64 samples keeps the DiT's sequence short on a CPU.
STRIDES = [4, 4, 4]
LATENT_DIM = 8
COND_DIM = 32

WORDS = [
    "a",
    "an",
    "the",
    "and",
    "with",
    "at",
    "in",
    "of",
    "bpm",
    "key",
    "major",
    "minor",
    "trap",
    "rap",
    "soul",
    "beat",
    "drums",
    "808",
    "hi-hats",
    "snare",
    "piano",
    "guitar",
    "synth",
    "bells",
    "pad",
    "bass",
    "melancholic",
    "dark",
    "happy",
    "chill",
    "aggressive",
    "tone",
    "noise",
    "sine",
    "c",
    "d",
    "e",
    "f",
    "g",
    "a",
    "b",
    "sharp",
    "flat",
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
]


def build_t5(folder: Path) -> None:
    """Save a tiny T5 encoder and a word-level tokenizer that AutoTokenizer can load."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=["<pad>", "</s>", "<unk>"])
    tokenizer.train_from_iterator([" ".join(WORDS)], trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    fast.save_pretrained(str(folder))

    config = T5Config(
        vocab_size=tokenizer.get_vocab_size(),
        d_model=512,
        d_kv=16,
        d_ff=64,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        pad_token_id=0,
        eos_token_id=1,
    )
    T5EncoderModel(config).save_pretrained(str(folder))


def tiny_model_config(t5_path: Path) -> dict[str, Any]:
    """A Stable Audio Open 1.0-shaped model config with every dimension made tiny."""
    oobleck = {"channels": 4, "c_mults": [1, 2, 4], "strides": STRIDES, "use_snake": True}
    downsampling = STRIDES[0] * STRIDES[1] * STRIDES[2]
    return {
        "model_type": "diffusion_cond",
        "sample_size": downsampling * 512,
        "sample_rate": SAMPLE_RATE,
        "audio_channels": 2,
        "model": {
            "pretransform": {
                "type": "autoencoder",
                "iterate_batch": True,
                "config": {
                    "encoder": {
                        "type": "oobleck",
                        "requires_grad": False,
                        "config": {"in_channels": 2, "latent_dim": 2 * LATENT_DIM, **oobleck},
                    },
                    "decoder": {
                        "type": "oobleck",
                        "config": {
                            "out_channels": 2,
                            "latent_dim": LATENT_DIM,
                            "final_tanh": False,
                            **oobleck,
                        },
                    },
                    "bottleneck": {"type": "vae"},
                    "latent_dim": LATENT_DIM,
                    "downsampling_ratio": downsampling,
                    "io_channels": 2,
                },
            },
            "conditioning": {
                "configs": [
                    {
                        "id": "prompt",
                        "type": "t5",
                        "config": {
                            "t5_model_name": "t5-small",
                            "model_path": str(t5_path),
                            "max_length": 16,
                        },
                    },
                    {
                        "id": "seconds_start",
                        "type": "number",
                        "config": {"min_val": 0, "max_val": 512},
                    },
                    {
                        "id": "seconds_total",
                        "type": "number",
                        "config": {"min_val": 0, "max_val": 512},
                    },
                ],
                "cond_dim": COND_DIM,
            },
            "diffusion": {
                "cross_attention_cond_ids": ["prompt", "seconds_start", "seconds_total"],
                "global_cond_ids": ["seconds_start", "seconds_total"],
                "type": "dit",
                "config": {
                    "io_channels": LATENT_DIM,
                    "embed_dim": 64,
                    "depth": 2,
                    "num_heads": 2,
                    "cond_token_dim": COND_DIM,
                    "global_cond_dim": 2 * COND_DIM,
                    "project_cond_tokens": False,
                    "timestep_features_dim": 16,
                    "transformer_type": "continuous_transformer",
                },
            },
            "io_channels": LATENT_DIM,
        },
        "training": {
            "use_ema": True,
            "log_loss_info": False,
            "optimizer_configs": {
                "diffusion": {
                    "optimizer": {
                        "type": "AdamW",
                        "config": {"lr": 1e-4, "betas": [0.9, 0.999], "weight_decay": 1e-3},
                    }
                }
            },
        },
    }


def narrow_posterior(model: Any) -> None:
    """Make the VAE encoder's posterior as narrow as a trained one's (std about 1e-4).

    At random init the scale half of its output gives a std near 0.7, so each encoding of the
    same clip draws a different latent and no model can fit a batch below that noise floor;
    a trained VAE encodes a clip to nearly the same latent every time.
    """
    import torch

    last = model.pretransform.model.encoder.layers[-1]
    with torch.no_grad():
        last.weight_g[LATENT_DIM:] = 0.0
        last.bias[LATENT_DIM:] = -10.0  # softplus(-10) is 5e-5


def build_tiny(out_dir: Path) -> dict[str, Any]:
    """Write the tiny model's T5 folder, config and random weights; return the file paths."""
    import torch
    from safetensors.torch import save_file
    from stable_audio_tools.models.factory import create_model_from_config

    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    t5_path = out_dir / "t5"
    build_t5(t5_path)
    config = tiny_model_config(t5_path)
    config_path = out_dir / "model_config.json"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    torch.manual_seed(0)
    model = create_model_from_config(config)
    narrow_posterior(model)
    weights = out_dir / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"tiny model: {n_params} parameters, written to {out_dir}", flush=True)
    return {"model_config": str(config_path), "ckpt": str(weights), "t5": str(t5_path)}
