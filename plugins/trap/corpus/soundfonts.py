"""Debian's soundfonts, which of their presets play each tag, and rendering notes with fluidsynth.

What each soundfont holds (checked with pyfluidsynth's preset names and by playing every note):
- FluidR3_GM, sf_GMbank (csound-soundfont), MuseScore_General_Full: the General MIDI
  instruments in bank 0 and drum kits in bank 128 (Standard 0, Room 8, Power 16,
  Electronic 24, TR-808 25, Jazz 32), with the GM drum map (kick 35/36, snare 38/40, clap 39,
  closed hats 42/44, open hat 46).
- Black_Pearl_4_LV2, Red_Zeppelin_4_LV2 (avldrums.lv2-soundfont): one acoustic kit each, in
  bank 0 program 0; kick 36, snares 38/40, hats 42/44 and open 46 as in GM, but no clap
  (39 is another snare stroke), no instruments.
- FluidR3_GS (fluid-soundfont-gs): only ten sound-effect presets (rain, dog, laughs...): no
  instrument, no kit (its TR-808 kit is FluidR3_GM's bank 128 program 25), so it is unused.
"""

from __future__ import annotations

import ctypes
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from curator.errors import CuratorError

from .sounds import Note


@dataclass(frozen=True)
class Kit:
    """A drum kit: its preset and the notes that play each drum tag (a tag it lacks is absent)."""

    bank: int
    program: int
    notes: Mapping[str, tuple[int, ...]]


GM_DRUMS = {
    "kick": (35, 36),
    "snare": (38, 40),
    "clap": (39,),
    "hi-hat": (42, 44),
    "open hat": (46,),
}
AVL_DRUMS = {"kick": (36,), "snare": (38, 40), "hi-hat": (42, 44), "open hat": (46,)}
GM_KITS = tuple(Kit(128, program, GM_DRUMS) for program in (0, 8, 16, 24, 25, 32))


@dataclass(frozen=True)
class Soundfont:
    name: str
    path: Path
    package: str  # the Debian package that installs it
    melodic: bool  # holds the General MIDI instruments
    kits: tuple[Kit, ...]


SF2, SF3 = Path("/usr/share/sounds/sf2"), Path("/usr/share/sounds/sf3")
SOUNDFONTS = {
    font.name: font
    for font in (
        Soundfont("FluidR3_GM", SF2 / "FluidR3_GM.sf2", "fluid-soundfont-gm", True, GM_KITS),
        Soundfont("sf_GMbank", SF2 / "sf_GMbank.sf2", "csound-soundfont", True, GM_KITS[:5]),
        Soundfont(
            "Black_Pearl_4_LV2",
            SF2 / "Black_Pearl_4_LV2.sf2",
            "avldrums.lv2-soundfont",
            False,
            (Kit(0, 0, AVL_DRUMS),),
        ),
        Soundfont(
            "Red_Zeppelin_4_LV2",
            SF2 / "Red_Zeppelin_4_LV2.sf2",
            "avldrums.lv2-soundfont",
            False,
            (Kit(0, 0, AVL_DRUMS),),
        ),
        Soundfont(
            "MuseScore_General_Full",
            SF3 / "MuseScore_General_Full.sf3",
            "musescore-general-soundfont",
            True,
            GM_KITS,
        ),
    )
}
DEFAULT_HOLDOUT = "MuseScore_General_Full"

# General MIDI programs (bank 0) that play each melodic tag. Left out on purpose: 91 "choir
# pad" (a pad or a choir?), 85 "voice lead", 45 pizzicato strings and 46 harp (plucked, but
# not guitars), marimba and xylophone (not bells).
PROGRAMS: dict[str, tuple[int, ...]] = {
    "piano": (0, 1, 2, 3),
    "rhodes": (4, 5),
    "synth bells": (8, 9, 10, 11, 14, 98, 112),
    "organ": (16, 17, 18, 19),
    "plucked guitar": (24, 25, 26, 27),
    "plucked bass": (32, 33, 34, 38, 39),
    "strings": (40, 42, 44, 48, 49, 50),
    "choir": (52, 53, 54),
    "brass": (56, 57, 61, 62, 63),
    "flute": (72, 73, 74, 75),
    "synth lead": (80, 81, 83, 84, 86, 87),
    "synth pad": (88, 89, 90, 92, 93, 94, 95),
}


def soundfont(name: str) -> Soundfont:
    """The named soundfont, checked to be installed."""
    if name not in SOUNDFONTS:
        raise CuratorError(f"unknown soundfont {name!r}: choose one of {', '.join(SOUNDFONTS)}")
    font = SOUNDFONTS[name]
    if not font.path.is_file():
        raise CuratorError(
            f"soundfont {font.path} is missing (Debian package {font.package}): "
            "run `bash scripts/system-deps.sh`"
        )
    return font


@cache
def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Renderer:
    """Soundfonts loaded once per process, and a fresh synth for every stem.

    Samples are loaded when a preset is first played (MuseScore's soundfont would take
    seconds to decompress whole), and each preset played is kept selected on a channel of
    the synth that holds the soundfonts, so its samples stay loaded.

    A fluidsynth that has played before starts its next notes slightly differently (its
    voices keep state), so each stem gets a new synth (about 2 ms) that borrows the loaded
    soundfonts: the same notes then give the same samples whatever was rendered before. Its
    reverb and chorus are off, as the mixer adds effects per stem, so a stem's level is what
    it really contributes. Output is float: the int16 path dithers.
    """

    BLOCK = 64  # fluidsynth applies events at the start of a 64-frame block

    def __init__(self, sample_rate: int) -> None:
        import fluidsynth  # here: only rendering needs the C library

        self.sample_rate = sample_rate
        self._fluidsynth = fluidsynth
        self._api = _Api(fluidsynth)
        self._api.quiet()
        self.library = self._synth(channels=256)  # holds the soundfonts and their presets
        self.fonts: dict[str, Any] = {}
        self.kept: set[tuple[str, int, int]] = set()

    def _synth(self, channels: int = 16) -> Any:
        settings = {
            "synth.reverb.active": 0,
            "synth.chorus.active": 0,
            "synth.polyphony": 256,
            "synth.dynamic-sample-loading": 1,
        }
        return self._fluidsynth.Synth(
            gain=0.3, samplerate=self.sample_rate, channels=channels, **settings
        )

    def _keep(self, font: Soundfont, bank: int, program: int) -> None:
        """Select the preset on a channel of its own, once, so its samples stay loaded."""
        key = (font.name, bank, program)
        if key in self.kept or len(self.kept) >= 256:
            return
        path = str(font.path).encode()
        self._api.select(self.library.synth, len(self.kept), path, bank, program)
        self.kept.add(key)

    def font(self, font: Soundfont) -> Any:
        """The loaded soundfont (a C pointer), loading it the first time."""
        if font.name not in self.fonts:
            sfid = self.library.sfload(str(font.path))
            if sfid < 0:
                raise CuratorError(f"fluidsynth cannot load {font.path}")
            # Kept by pointer: lending it to a synth renumbers it, so ids cannot be trusted.
            self.fonts[font.name] = self._api.sfont(self.library.synth, sfid)
            # A synth given the soundfont selects these on every channel: keep them loaded.
            for bank in (0, 128):
                if self.has_preset(font, bank, 0):
                    self._keep(font, bank, 0)
        return self.fonts[font.name]

    def has_preset(self, font: Soundfont, bank: int, program: int) -> bool:
        return bool(self._fluidsynth.fluid_sfont_get_preset(self.font(font), bank, program))

    def render(
        self,
        font: Soundfont,
        bank: int,
        program: int,
        notes: Sequence[Note],
        frames: int,
        drums: bool = False,
    ) -> np.ndarray:
        """The notes played by one preset alone: stereo float (frames, 2), full scale 1."""
        sfont = self.font(font)
        self._keep(font, bank, program)
        synth = self._synth()
        try:
            sfid = self._api.add(synth.synth, sfont)
            if sfid < 0:
                raise CuratorError(f"fluidsynth cannot play {font.path}")
            channel = 9 if drums else 0
            synth.program_select(channel, sfid, bank, program)
            return self._play(synth, channel, notes, frames)
        finally:
            self._api.remove(synth.synth, sfont)  # borrowed: deleting the synth would free it
            synth.delete()

    def _play(self, synth: Any, channel: int, notes: Sequence[Note], frames: int) -> np.ndarray:
        blocks = -(-frames // self.BLOCK) * self.BLOCK
        out = np.zeros((blocks, 2), np.float32)
        done = 0
        for frame, on, pitch, velocity in _events(notes, self.sample_rate, blocks, self.BLOCK):
            if frame > done:
                self._api.write(synth.synth, out, done, frame)
                done = frame
            if on:
                synth.noteon(channel, pitch, velocity)
            else:
                synth.noteoff(channel, pitch)
        self._api.write(synth.synth, out, done, blocks)
        return out[:frames]


class _Api:
    """The few libfluidsynth calls pyfluidsynth does not wrap."""

    def __init__(self, fluidsynth: Any) -> None:
        c, pointer, number = fluidsynth.cfunc, ctypes.c_void_p, ctypes.c_int
        self._get = c("fluid_synth_get_sfont_by_id", pointer, ("s", pointer, 1), ("i", number, 1))
        self.add = c("fluid_synth_add_sfont", number, ("s", pointer, 1), ("f", pointer, 1))
        self.remove = c("fluid_synth_remove_sfont", number, ("s", pointer, 1), ("f", pointer, 1))
        self.select = c(
            "fluid_synth_program_select_by_sfont_name",
            number,
            *[("s", pointer, 1), ("c", number, 1), ("n", ctypes.c_char_p, 1)],
            *[("b", number, 1), ("p", number, 1)],
        )
        self._log = c(
            "fluid_set_log_function",
            pointer,
            ("l", number, 1),
            ("f", pointer, 1),
            ("d", pointer, 1),
        )
        names = ("s", "len", "lout", "loff", "lincr", "rout", "roff", "rincr")
        args = [(n, pointer if n.endswith("out") or n == "s" else number, 1) for n in names]
        self._write = c("fluid_synth_write_float", number, *args)

    def quiet(self) -> None:
        """No warnings on stderr (a borrowed soundfont leaving a synth warns on every channel)."""
        for level in (2, 3, 4):  # FLUID_WARN, FLUID_INFO, FLUID_DBG
            self._log(level, None, None)

    def sfont(self, synth: Any, sfid: int) -> Any:
        return self._get(synth, sfid)

    def write(self, synth: Any, out: np.ndarray, start: int, end: int) -> None:
        """Render frames start..end into `out` (frames, 2), interleaved in place."""
        if end > start:
            at = out.ctypes.data
            self._write(synth, end - start, at, 2 * start, 2, at, 2 * start + 1, 2)


def _events(
    notes: Sequence[Note], sr: int, frames: int, block: int
) -> list[tuple[int, bool, int, int]]:
    """(frame, note on?, pitch, velocity) in time order, each on a block; offs before ons."""
    events = []
    for note in notes:
        start = round(note.start * sr / block) * block
        if not 0 <= start < frames:
            continue
        end = min(
            frames, max(start + block, round((note.start + note.length) * sr / block) * block)
        )
        velocity = int(np.clip(round(1 + 126 * note.velocity), 1, 127))
        events += [(start, True, note.pitch, velocity), (end, False, note.pitch, 0)]
    return sorted(events, key=lambda e: (e[0], e[1]))


_RENDERERS: dict[int, Renderer] = {}


def renderer(sample_rate: int) -> Renderer:
    """This process's renderer at `sample_rate`."""
    if sample_rate not in _RENDERERS:
        _RENDERERS[sample_rate] = Renderer(sample_rate)
    return _RENDERERS[sample_rate]
