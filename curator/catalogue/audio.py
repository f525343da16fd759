"""Reading audio: probe a file, and decode just one segment's window, resampled."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from curator.errors import AudioError

# ITU-R BS.775 downmix of 5.1 (L R C LFE Ls Rs, the WAV channel order) to stereo.
_DOWNMIX_51 = np.array(
    [[1.0, 0.0], [0.0, 1.0], [0.7071, 0.7071], [0.0, 0.0], [0.7071, 0.0], [0.0, 0.7071]],
    dtype=np.float32,
)


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, as its decoder reports it."""

    format: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def probe(path: Path) -> AudioInfo:
    """Check that `path` is readable audio from start to end; raise AudioError saying why not."""
    _check_file(path)
    info = _open_info(path)
    if info.frames == 0:
        raise AudioError(path, "no audio in the file (a header with 0 samples)")
    _check_wav_complete(path, info)
    _check_tail_decodes(path, info)
    return info


def _check_file(path: Path) -> None:
    if path.is_symlink() and not path.exists():
        raise AudioError(
            path, f"broken link: it points to {os.readlink(path)}, which does not exist"
        )
    if not path.is_file():
        raise AudioError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except PermissionError as exc:
        raise AudioError(path, "cannot be read: permission denied") from exc
    except OSError as exc:
        raise AudioError(path, f"cannot be read: {exc.strerror or exc}") from exc


def _open_info(path: Path) -> AudioInfo:
    _check_mp3_start(path)
    try:
        info = sf.info(str(path))
    except sf.LibsndfileError as exc:
        detail = str(exc).split(":", 1)[-1].strip()
        raise AudioError(path, f"not a readable audio file ({detail})") from exc
    except (RuntimeError, OSError) as exc:
        raise AudioError(path, f"not a readable audio file ({exc})") from exc
    return AudioInfo(
        info.format, info.subtype, int(info.samplerate), int(info.channels), int(info.frames)
    )


def _check_mp3_start(path: Path) -> None:
    # Without this, libmpg123 hunts for a frame through the whole of a non-MP3 file and
    # prints its own notes to the terminal; a real MP3 opens with a tag or a frame sync.
    if path.suffix.lower() != ".mp3":
        return
    with path.open("rb") as handle:
        head = handle.read(3)
    if not (
        head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)
    ):
        raise AudioError(path, "not an MP3 file (no ID3 tag or MPEG frame at the start)")


def _check_wav_complete(path: Path, info: AudioInfo) -> None:
    # libsndfile quietly shortens a truncated WAV to the bytes present; the RIFF header
    # still says how much audio there should be, which is what a person wants to know.
    if info.format != "WAV":
        return
    promised = _wav_data_bytes(path)
    if promised is None:
        return
    bytes_per_frame = info.channels * _bytes_per_sample(info.subtype)
    if bytes_per_frame and promised // bytes_per_frame > info.frames + 1:
        expected = promised / bytes_per_frame / info.sample_rate
        raise AudioError(
            path,
            f"truncated: the header promises {expected:.1f} s of audio "
            f"but the data ends at {info.duration:.1f} s",
        )


def _wav_data_bytes(path: Path) -> int | None:
    """Size of the RIFF `data` chunk as the header declares it, or None if not found."""
    with path.open("rb") as handle:
        if handle.read(12)[:4] != b"RIFF":
            return None
        while header := handle.read(8):
            if len(header) < 8:
                return None
            chunk_id, size = header[:4], struct.unpack("<I", header[4:])[0]
            if chunk_id == b"data":
                return int(size) if size != 0xFFFFFFFF else None
            handle.seek(size + (size & 1), os.SEEK_CUR)
    return None


def _bytes_per_sample(subtype: str) -> int:
    return {
        "PCM_U8": 1,
        "PCM_S8": 1,
        "PCM_16": 2,
        "PCM_24": 3,
        "PCM_32": 4,
        "FLOAT": 4,
        "DOUBLE": 8,
    }.get(subtype, 0)


# Vorbis and MP3 files often announce a little more audio than they decode (encoder
# padding and end trimming: Debian's Wesnoth soundtrack has a file 0.13 s short), so only a
# tail missing more than this counts as truncated.
CODEC_SLACK_SECONDS = 0.5
TAIL_SECONDS = 5.0


def _check_tail_decodes(path: Path, info: AudioInfo) -> None:
    # Compressed files report a length from their header; decoding the last seconds
    # proves the data is really there (a cut-off download fails here).
    tail = min(info.frames, round(TAIL_SECONDS * info.sample_rate))
    try:
        with sf.SoundFile(str(path)) as handle:
            handle.seek(info.frames - tail)
            got = len(handle.read(tail, dtype="float32", always_2d=True))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(path, f"damaged: decoding fails near the end ({exc})") from exc
    if tail_missing(tail, got, info.sample_rate):
        raise AudioError(
            path, f"truncated: the data ends before the {info.duration:.1f} s the header announces"
        )


def tail_missing(wanted: int, got: int, sample_rate: int) -> bool:
    """Whether decoding the last `wanted` frames gave so few that the file is cut off,
    beyond what codecs' padding explains."""
    return wanted - got > CODEC_SLACK_SECONDS * sample_rate


def decode_window(
    path: Path,
    start: float,
    duration: float,
    sample_rate: int | None = None,
    channels: int | None = None,
) -> np.ndarray:
    """Decode `duration` seconds from `start` as float32 (frames, channels).

    Seeks to the window instead of decoding the whole file, then resamples with soxr and
    mixes to `channels` when asked (None keeps the file's rate or channel count).
    """
    try:
        with sf.SoundFile(str(path)) as handle:
            native_rate = handle.samplerate
            handle.seek(min(round(start * native_rate), handle.frames))
            audio = handle.read(round(duration * native_rate), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(
            path, f"cannot decode {start:.1f}-{start + duration:.1f} s ({exc})"
        ) from exc
    if channels is not None:
        audio = to_channels(audio, channels)
    if sample_rate is not None and sample_rate != native_rate and len(audio):
        audio = soxr.resample(audio, native_rate, sample_rate, quality="HQ").astype(np.float32)
    return audio


def to_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Mix (frames, n) audio to `channels`: mono is averaged, 5.1 uses the ITU downmix."""
    have = audio.shape[1]
    if have == channels:
        return audio
    if channels == 1:
        return audio.mean(axis=1, keepdims=True, dtype=np.float32)
    if have == 1:
        return np.repeat(audio, channels, axis=1)
    if have == 6 and channels == 2:
        return audio @ _DOWNMIX_51
    if channels == 2:
        return np.stack([audio[:, 0::2].mean(axis=1), audio[:, 1::2].mean(axis=1)], axis=1)
    raise ValueError(f"cannot mix {have} channels to {channels}")


def decode_whole(path: Path) -> tuple[np.ndarray, int]:
    """Decode a whole file (the slow way a naive pipeline does it; used as a baseline)."""
    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return audio, int(rate)


def level_db(audio: np.ndarray) -> tuple[float, float]:
    """RMS and peak level in dBFS (-inf dB for digital silence is reported as -200)."""
    if audio.size == 0:
        return -200.0, -200.0
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    peak = float(np.max(np.abs(audio)))
    return _to_db(rms), _to_db(peak)


def _to_db(value: float) -> float:
    return max(-200.0, 20.0 * float(np.log10(value))) if value > 0 else -200.0


def first_non_finite(audio: np.ndarray) -> int | None:
    """Index of the first frame holding NaN or infinity, or None when all are finite."""
    if np.isfinite(audio).all():  # the common case, 30× faster than locating a bad frame
        return None
    return int(np.argmax(~np.isfinite(audio).all(axis=1)))


def spectrogram_image(
    audio: np.ndarray, rate: int, bands: int = 64, width: int = 480
) -> np.ndarray:
    """A log-frequency spectrogram as an 8-bit image (low notes at the bottom) for review.

    Band edges are spaced logarithmically from 30 Hz, so 808s, kicks and hats each get
    rows of their own, as on a mel scale.
    """
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    hop = max(1, len(mono) // width)
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(mono, (0, 2048)), 2048)[::hop][:width]
    power = np.abs(np.fft.rfft(frames * np.hanning(2048), axis=1)) ** 2
    edges = np.geomspace(30, rate / 2, bands + 1) * 2048 / rate
    bins = np.clip(edges.astype(int), 0, power.shape[1] - 1)
    banded = np.add.reduceat(power, bins[:-1], axis=1)[:, :bands]
    decibels = 10 * np.log10(banded + 1e-10)
    scaled = np.clip((decibels - decibels.max() + 80) / 80, 0, 1)
    return (255 * scaled.T[::-1]).astype(np.uint8)
