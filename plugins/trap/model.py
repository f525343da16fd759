"""The trap tagger's network, and its weights file: versioned by hash, with its recipe."""

from __future__ import annotations

import hashlib
import io
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from curator.api import autocast
from curator.errors import CuratorError

from .features import LogMel, MelSettings

# plugins/trap/weights/trap-<hash>.pt: the weights that ship, found by this pattern.
WEIGHTS_FOLDER = Path(__file__).resolve().parent / "weights"
WEIGHTS_PATTERN = "trap-*.pt"
FORMAT = 1


class TrapNet(nn.Module):
    """A small CNN over log-mel frames: four conv blocks, then mean and max over time.

    Fully convolutional in time, so one pass tags a window of any length; the pooled
    `embedding` (before the last layer) is what Curator caches per segment.
    """

    def __init__(self, tags: int, mel: MelSettings, width: int = 24, embedding: int = 128):
        super().__init__()
        self.front = LogMel(mel)
        self.norm = nn.BatchNorm1d(mel.mels)
        channels = (1, width, 2 * width, 4 * width, 4 * width)
        layers: list[nn.Module] = []
        for index, (a, b) in enumerate(itertools.pairwise(channels)):
            # Pool time less than frequency in the last block: rolls need the time detail.
            pool = (2, 2) if index < 3 else (2, 1)
            layers += [
                nn.Conv2d(a, b, 3, padding=1, bias=False),
                nn.BatchNorm2d(b),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(pool),
            ]
        self.blocks = nn.Sequential(*layers)
        self.project = nn.Conv1d(channels[-1] * (mel.mels // 16), embedding, 1)
        self.head = nn.Linear(2 * embedding, tags)

    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        """(batch, samples) mono audio -> (batch, 2 * embedding) pooled features."""
        frames = self.norm(self.front(audio))
        maps = self.blocks(frames.unsqueeze(1))  # (batch, channels, mels/16, time/8)
        per_frame = torch.relu(self.project(maps.flatten(1, 2)))
        return torch.cat([per_frame.mean(dim=2), per_frame.amax(dim=2)], dim=1)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """Logits, one per tag."""
        return self.head(self.embed(audio))


@dataclass
class TrapWeights:
    """A trained network with everything needed to use and reproduce it."""

    net: TrapNet
    tags: list[str]
    thresholds: dict[str, float]
    mel: MelSettings
    window_seconds: float
    recipe: dict[str, Any]  # command, seed, corpus settings, training settings
    report: dict[str, Any]  # per-tag figures on validation and held-out data
    version: str = ""  # the file's hash; set when saved or loaded
    path: Path | None = None


def segment_outputs(
    net: TrapNet, windows: np.ndarray, batch: int, device: str, precision: str = "fp32"
) -> tuple[np.ndarray, np.ndarray]:
    """A segment's windows (count, samples) -> (mean pooled embedding, max probability per tag).

    A tag is as present in a segment as in its most telling window: an 808 that enters
    halfway is still in the segment. `precision` is the forward pass's (curator.api.PRECISIONS);
    what comes out is float32 either way.
    """
    pooled_parts, probability_parts = [], []
    with torch.inference_mode(), autocast(precision, device):
        for start in range(0, len(windows), batch):
            chunk = torch.from_numpy(np.ascontiguousarray(windows[start : start + batch]))
            pooled = net.embed(chunk.to(device))
            pooled_parts.append(pooled.float().cpu())
            probability_parts.append(torch.sigmoid(net.head(pooled).float()).cpu())
    pooled_all, probabilities = torch.cat(pooled_parts), torch.cat(probability_parts)
    return pooled_all.mean(0).numpy(), probabilities.amax(0).numpy()


def build_net(tags: int, mel: MelSettings, width: int, embedding: int) -> TrapNet:
    return TrapNet(tags, mel, width, embedding)


def save_weights(weights: TrapWeights, folder: Path) -> Path:
    """Write `trap-<hash>.pt` into `folder` and return it; the hash is the version."""
    payload = {
        "format": FORMAT,
        "state": {k: v.detach().cpu().clone() for k, v in weights.net.state_dict().items()},
        "tags": list(weights.tags),
        "thresholds": dict(weights.thresholds),
        "mel": weights.mel.as_dict(),
        "width": weights.net.blocks[0].out_channels,
        "embedding": weights.net.project.out_channels,
        "window_seconds": weights.window_seconds,
        "recipe": weights.recipe,
        "report": weights.report,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    version = hashlib.sha256(data).hexdigest()[:12]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"trap-{version}.pt"
    partial = path.with_suffix(".pt.partial")
    partial.write_bytes(data)
    partial.replace(path)
    weights.version, weights.path = version, path
    return path


def file_version(path: Path) -> str:
    """The first 12 hex digits of the file's SHA-256: the plugin version it gives."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def shipped_weights() -> Path:
    """The weights file committed with Curator (exactly one under plugins/trap/weights)."""
    found = sorted(WEIGHTS_FOLDER.glob(WEIGHTS_PATTERN))
    if len(found) != 1:
        raise CuratorError(
            f"trap: expected one weights file {WEIGHTS_PATTERN} in {WEIGHTS_FOLDER}, found "
            f"{len(found)}; set [plugins.trap] weights to a file made by `curator trap-train`"
        )
    return found[0]


def load_weights(path: Path, device: str = "cpu") -> TrapWeights:
    """Load a weights file; a clear error names a missing or foreign file."""
    if not path.is_file():
        raise CuratorError(f"trap: weights file {path} does not exist")
    try:
        # weights_only: a weights file is data, never code (docs/security.md).
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise CuratorError(f"trap: {path} is not a trap weights file ({exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CuratorError(f"trap: {path} is not a trap weights file of format {FORMAT}")
    mel = MelSettings(**payload["mel"])
    net = build_net(len(payload["tags"]), mel, payload["width"], payload["embedding"])
    net.load_state_dict(payload["state"])
    net.to(device).eval()
    return TrapWeights(
        net=net,
        tags=list(payload["tags"]),
        thresholds=dict(payload["thresholds"]),
        mel=mel,
        window_seconds=float(payload["window_seconds"]),
        recipe=dict(payload["recipe"]),
        report=dict(payload["report"]),
        version=file_version(path),
        path=path,
    )
