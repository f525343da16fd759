"""Loading a CLAP model from a hub id or a folder, and running its audio and text towers."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from curator.api import autocast, resolve_device
from curator.errors import CuratorError

from .settings import ClapSettings
from .windows import normalise

if TYPE_CHECKING:  # torch takes seconds to import; every CLI command loads this plugin
    import torch

# A real CLAP (RoBERTa) tokenizer has ~50k tokens. transformers 5 builds a tokenizer with
# only its 5 special tokens when the vocabulary files are missing, and every phrase then
# embeds alike; anything this small is refused.
MIN_TOKENIZER_SIZE = 50


class ClapModelError(CuratorError):
    """The CLAP model could not be loaded; the message says which and how to provide it."""


def hub_offline(context_offline: bool) -> bool:
    """True when no hub may be contacted: the run says so, or HF_HUB_OFFLINE is set."""
    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return context_offline or flag in ("1", "true", "yes", "on")


@dataclass
class ClapBackend:
    """A loaded ClapModel with its processor, on one device, in eval mode."""

    model: Any
    processor: Any
    device: torch.device
    precision: str = "fp32"  # of the audio tower's forward pass (curator.api.PRECISIONS)

    @property
    def sampling_rate(self) -> int:
        return int(self.processor.feature_extractor.sampling_rate)

    @property
    def max_window_seconds(self) -> float:
        extractor = self.processor.feature_extractor
        return float(extractor.nb_max_samples) / extractor.sampling_rate

    def embed_text(self, phrases: Sequence[str], batch: int = 64) -> np.ndarray:
        """One L2-normalised float32 row per phrase."""
        parts = [self._text_batch(phrases[i : i + batch]) for i in range(0, len(phrases), batch)]
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)

    def embed_windows(self, windows: np.ndarray) -> np.ndarray:
        """(n, samples) mono windows -> one L2-normalised float32 row per window."""
        import torch

        extractor = self.processor.feature_extractor
        features = extractor(list(windows), sampling_rate=self.sampling_rate, return_tensors="np")
        inputs = torch.from_numpy(np.asarray(features["input_features"], np.float32))
        # The extractor flags a random clip as "longer" when none is, which changes a fused
        # model's output for that clip alone; every window here is exactly one window long.
        is_longer = torch.zeros((len(windows), 1), dtype=torch.bool)
        with torch.inference_mode(), autocast(self.precision, str(self.device)):
            out = self.model.get_audio_features(
                input_features=inputs.to(self.device), is_longer=is_longer.to(self.device)
            )
        return _rows(out)

    @property
    def dim(self) -> int:
        return int(self.model.config.projection_dim)

    def _text_batch(self, phrases: Sequence[str]) -> np.ndarray:
        import torch

        tokens = self.processor.tokenizer(
            list(phrases), padding=True, truncation=True, return_tensors="pt"
        )
        with torch.inference_mode():
            out = self.model.get_text_features(
                input_ids=tokens["input_ids"].to(self.device),
                attention_mask=tokens["attention_mask"].to(self.device),
            )
        return _rows(out)


def _rows(out: Any) -> np.ndarray:
    # transformers 5 returns an output object whose pooler_output is the projection;
    # 4.x returned the projected tensor itself.
    tensor = getattr(out, "pooler_output", out)
    return normalise(tensor.float().cpu().numpy())


def load_backend(settings: ClapSettings, offline: bool, device: str) -> ClapBackend:
    """Load model and processor from `settings.model`; raise ClapModelError saying how to fix."""
    import torch

    source, local_only = model_source(settings.model, offline)
    model, processor = _from_pretrained(source, local_only, settings.model)
    check_tokenizer(processor.tokenizer, settings.model, model.config)
    target = torch.device(resolve_device(device))
    return ClapBackend(model.to(target).eval(), processor, target, settings.precision)


def model_source(model: str, offline: bool) -> tuple[str, bool]:
    """What to pass to from_pretrained, and whether only local files may be used."""
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path), True
    if path.is_absolute() or model.startswith((".", "~")) or path.exists():
        raise ClapModelError(
            f"CLAP model folder {model} does not exist (or is not a folder); "
            "set [plugins.clap] model to a folder holding config.json and the model weights"
        )
    return model, offline


def _from_pretrained(source: str, local_only: bool, model: str) -> tuple[Any, Any]:
    from transformers import ClapModel, ClapProcessor

    try:
        loaded = ClapModel.from_pretrained(source, local_files_only=local_only)
        processor = ClapProcessor.from_pretrained(source, local_files_only=local_only)
    except (OSError, ValueError) as exc:
        raise ClapModelError(_not_loadable(model, local_only, exc)) from exc
    return loaded, processor


def _not_loadable(model: str, local_only: bool, exc: Exception) -> str:
    where = "is not in the local Hugging Face cache" if local_only else "could not be loaded"
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"CLAP model {model!r} {where} ({first_line}). To provide it: on a machine with "
        f"internet access run `hf download {model}` (or load it once with transformers) and "
        "copy the Hugging Face cache (~/.cache/huggingface/hub) here, or save the model "
        'folder anywhere and set `model = "/path/to/folder"` under [plugins.clap] in '
        "curator.toml."
    )


def check_tokenizer(tokenizer: Any, model: str, config: Any) -> None:
    """Refuse a tokenizer that cannot be the model's: too few tokens, or ids past its vocab."""
    size = len(tokenizer)
    if size < MIN_TOKENIZER_SIZE:
        raise ClapModelError(
            f"the tokenizer loaded for CLAP model {model!r} has only {size} tokens, so its "
            "vocabulary files (vocab.json and merges.txt, or tokenizer.json) are missing or "
            "empty; every tag would embed alike. Re-download the model or copy those files "
            "into its folder."
        )
    if size > config.text_config.vocab_size:
        raise ClapModelError(
            f"the tokenizer of CLAP model {model!r} has {size} tokens but its text model only "
            f"{config.text_config.vocab_size}: the tokenizer belongs to another model"
        )
