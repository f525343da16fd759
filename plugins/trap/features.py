"""Log-mel spectrograms for the trap tagger, the same in training and in tagging."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class MelSettings:
    """The front end a weights file was trained with (recorded in the file).

    22.05 kHz keeps everything below 11 kHz, where hi-hats and claps differ; a 23 ms hop
    still gives four frames per hit of a 1/32 hi-hat roll at 140 BPM.
    """

    sample_rate: int = 22050
    n_fft: int = 1024
    hop: int = 512
    mels: int = 64
    fmin: float = 20.0
    fmax: float = 11025.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def frames(self, seconds: float) -> int:
        return int(seconds * self.sample_rate) // self.hop + 1


def mel_filterbank(settings: MelSettings) -> np.ndarray:
    """Triangular filters on the HTK mel scale, shape (mels, n_fft // 2 + 1)."""
    bins = settings.n_fft // 2 + 1
    freqs = np.linspace(0, settings.sample_rate / 2, bins)
    mel = lambda f: 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)  # noqa: E731
    edges = hz(np.linspace(mel(settings.fmin), mel(settings.fmax), settings.mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None] - lower) / (centre - lower)
    falling = (upper - freqs[None]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


class LogMel(torch.nn.Module):
    """Mono audio (batch, samples) at `sample_rate` -> log-mel (batch, mels, frames)."""

    def __init__(self, settings: MelSettings) -> None:
        super().__init__()
        self.settings = settings
        self.register_buffer("window", torch.hann_window(settings.n_fft), persistent=False)
        self.register_buffer(
            "filters", torch.from_numpy(mel_filterbank(settings)), persistent=False
        )

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        spectrum = torch.stft(
            audio,
            self.settings.n_fft,
            self.settings.hop,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        ).abs()
        power = torch.matmul(self.filters, spectrum.pow(2))
        # dB with a floor 80 dB under full scale: silence and dither look the same.
        return 10.0 * torch.log10(power.clamp_min(1e-8))


def mono(audio: np.ndarray) -> np.ndarray:
    """A float32 mono signal from (frames,) or (frames, channels) audio."""
    audio = np.asarray(audio, dtype=np.float32)
    return np.ascontiguousarray(audio.mean(axis=1) if audio.ndim == 2 else audio)


def cut_windows(audio: np.ndarray, size: int) -> np.ndarray:
    """Non-overlapping windows covering all of `audio`; the last one ends at its end.

    Audio shorter than a window is repeated to fill it, as short training clips never were.
    """
    if audio.size == 0:
        audio = np.zeros(1, np.float32)
    if audio.size < size:
        audio = np.resize(audio, size)
    count = math.ceil(audio.size / size)
    starts = [min(i * size, audio.size - size) for i in range(count)]
    return np.stack([audio[s : s + size] for s in starts]).astype(np.float32)
