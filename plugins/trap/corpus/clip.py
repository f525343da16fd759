"""One clip: which instruments play, where each sound comes from, rendered, mixed and labelled.

Drums come from a soundfont kit or are synthesised, per drum; melodic parts from a General
MIDI preset or, for the synth tags and plucks, from a synthesiser; 808s and subs are always
synthesised (no soundfont has them), vocal chops and movie samples are espeak-ng's speech.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import mix, patterns, sounds
from .patterns import Arrangement
from .soundfonts import PROGRAMS, Kit, Soundfont, renderer
from .sounds import Note

DRUMS = ("kick", "snare", "clap", "hi-hat", "open hat")
MELODIC = tuple(PROGRAMS)  # includes "plucked bass", which is a bass but played like these
# Level (dB) of each stem's active RMS in the mix before the random spread.
NOMINAL_DB = {"kick": -14.0, "808": -15.0, "deep sub": -17.0, "snare": -16.0, "clap": -16.0}
NOMINAL_DB |= {"hi-hat": -24.0, "hi-hat rolls": -24.0, "open hat": -25.0, "plucked bass": -18.0}
NOMINAL_DB |= {"vocal chop": -19.0, "movie sample": -18.0}
MELODIC_DB = -19.0
BURIED = 0.12  # the share of stems mixed far down: present in the MIDI, not heard


@dataclass(frozen=True)
class Sources:
    """What a split may draw its sounds from."""

    melodic: tuple[Soundfont, ...]  # General MIDI soundfonts
    kits: tuple[tuple[Soundfont, Kit], ...]
    voices: tuple[str, ...]  # espeak-ng voice variants


@dataclass
class Clip:
    """A rendered clip and what it holds."""

    audio: np.ndarray  # mono float, the final mix
    tags: list[str]
    levels_db: dict[str, float]
    soundfonts: list[str]
    tempo: float
    key: str
    encoding: str


def choose_tags(rng: np.random.Generator) -> list[str]:
    """Which parts play: drums, a bass, some melodic parts, perhaps vocals.

    The odds keep each tag in roughly 15-50% of clips once masked stems are dropped.
    """
    tags = {t for t, p in (("kick", 0.62), ("hi-hat", 0.5), ("open hat", 0.3)) if rng.random() < p}
    backbeat = int(rng.choice(4, p=[0.2, 0.3, 0.3, 0.2]))
    tags |= [set(), {"snare"}, {"clap"}, {"snare", "clap"}][backbeat]
    if rng.random() < (0.55 if "hi-hat" in tags else 0.1):
        tags.add("hi-hat rolls")
    bass = int(rng.choice(4, p=[0.25, 0.35, 0.2, 0.2]))
    tags |= [set(), {"808"}, {"deep sub"}, {"plucked bass"}][bass]
    melodic = [t for t in MELODIC if t != "plucked bass"]
    count = int(rng.choice(5, p=[0.08, 0.22, 0.3, 0.22, 0.18]))
    tags |= set(rng.choice(melodic, size=count, replace=False).tolist())
    tags |= {t for t, p in (("vocal chop", 0.2), ("movie sample", 0.18)) if rng.random() < p}
    return sorted(tags or {"kick"})


def render_clip(
    rng: np.random.Generator,
    sources: Sources,
    seconds: float,
    sr: int,
    tags: Sequence[str] | None = None,
    tempo: float | None = None,
) -> Clip:
    """Draw, render, mix and label one clip of `seconds` at `sr`."""
    tags = list(tags) if tags is not None else choose_tags(rng)
    lead_in = float(rng.uniform(0, 1.5))
    beat = patterns.arrangement(rng, lead_in + seconds, tempo)
    stems = stems_for(beat, tags, rng, sources, sr, lead_in, seconds)
    start, frames = int(lead_in * sr), round(seconds * sr)
    for stem in stems:
        mix.produced(stem, rng, sr, stem.name in DRUMS or stem.name == "hi-hat rolls")
        stem.audio = _window(stem.audio, start, frames)
        level = NOMINAL_DB.get(stem.name, MELODIC_DB) + rng.uniform(-6, 4)
        if rng.random() < BURIED:
            level -= rng.uniform(20, 40)
        mix.set_level(stem, level, max(1, sr // 100))
    if rng.random() < 0.6:
        mix.compressed(stems, rng, sr)
    final = mix.peak_normalised(stems, rng.uniform(-6, -0.5))
    heard_tags, levels = mix.labels(stems, mix.heard(stems, sr))
    encoding = str(rng.choice(mix.ENCODINGS, p=[0.4, 0.3, 0.3]))
    final = np.clip(mix.round_trip(final, sr, encoding, rng.uniform(0.1, 0.9)), -1, 1)
    fonts = sorted({s.source for s in stems} - {"synth", "espeak-ng"})
    return Clip(final, heard_tags, levels, fonts, beat.tempo, beat.key_name, encoding)


def _window(audio: np.ndarray, start: int, frames: int) -> np.ndarray:
    out = np.zeros(frames)
    part = audio[start : start + frames]
    out[: len(part)] = part
    return out


def stems_for(
    beat: Arrangement,
    tags: Sequence[str],
    rng: np.random.Generator,
    sources: Sources,
    sr: int,
    lead_in: float,
    seconds: float,
) -> list[mix.Stem]:
    """Every part's stem, over the whole arrangement (lead-in included)."""
    frames = int(np.ceil((beat.seconds + 0.5) * sr))
    kit = sources.kits[int(rng.integers(len(sources.kits)))] if sources.kits else None
    font = sources.melodic[int(rng.integers(len(sources.melodic)))] if sources.melodic else None
    stems: list[mix.Stem] = []
    kicks = patterns.kick(beat, rng)
    stems += _drum_stems(beat, tags, rng, kit, kicks, sr, frames, lead_in, seconds)
    stems += _bass_stems(beat, tags, rng, font, kicks, sr, frames)
    for tag in tags:
        if tag in MELODIC and tag != "plucked bass":
            stems.append(
                _melodic_stem(tag, patterns.melodic(beat, rng, tag), rng, font, sr, frames)
            )
    if "vocal chop" in tags:
        times = patterns.chop_times(beat, rng, 60)
        audio = sounds.vocal_chops(rng, sources.voices, times, frames, sr)
        stems.append(mix.Stem("vocal chop", ("vocal chop",), audio, "espeak-ng"))
    if "movie sample" in tags:
        at = lead_in + rng.uniform(-1.0, seconds * 0.5)
        audio = sounds.movie_sample(rng, sources.voices, max(0.0, at), frames, sr)
        stems.append(mix.Stem("movie sample", ("movie sample",), audio, "espeak-ng"))
    return stems


# ---------------------------------------------------------------------------- drums

SYNTH_DRUMS = {
    "kick": sounds.kick,
    "snare": sounds.snare,
    "clap": lambda rng, sr: (sounds.layered_clap if rng.random() < 0.4 else sounds.clap)(rng, sr),
    "hi-hat": sounds.hat,
    "open hat": lambda rng, sr: sounds.hat(rng, sr, open_hat=True),
}


def _drum_stems(
    beat: Arrangement,
    tags: Sequence[str],
    rng: np.random.Generator,
    kit: tuple[Soundfont, Kit] | None,
    kicks: list[Note],
    sr: int,
    frames: int,
    lead_in: float,
    seconds: float,
) -> list[mix.Stem]:
    hits: dict[str, list[Note]] = {}
    if "kick" in tags:
        hits["kick"] = kicks
    both = "snare" in tags and "clap" in tags
    for tag in ("snare", "clap"):
        if tag in tags:
            hits[tag] = patterns.backbeat(beat, rng, ghosts=tag == "snare" and rng.random() < 0.3)
    if both and rng.random() < 0.5:
        hits["snare"] = [
            Note(n.start + rng.uniform(0, 0.012), n.length, 0, n.velocity) for n in hits["snare"]
        ]
    rolled = patterns.roll_beats(beat, rng, lead_in, seconds) if "hi-hat rolls" in tags else set()
    if "open hat" in tags:
        hits["open hat"] = patterns.open_hats(beat, rng)
    if "hi-hat" in tags:
        hits["hi-hat"] = patterns.without(
            patterns.hats(beat, rng, rolled), hits.get("open hat", [])
        )
    if rolled:
        hits["hi-hat rolls"] = patterns.rolls(beat, rng, rolled)
    stems = []
    hat_source = None  # rolls are played on the same hat as the straight hats
    for name, notes in hits.items():
        drum = "hi-hat" if name == "hi-hat rolls" else name
        tags_given = ("hi-hat rolls", "hi-hat") if name == "hi-hat rolls" else (name,)
        if drum == "hi-hat" and hat_source is not None:
            choice = hat_source
        else:
            choice = _drum_source(drum, rng, kit)
            hat_source = choice if drum == "hi-hat" else hat_source
        audio, source = _render_drum(drum, choice, notes, rng, sr, frames)
        stems.append(mix.Stem(name, tags_given, audio, source))
    return stems


def _drum_source(drum: str, rng: np.random.Generator, kit: tuple[Soundfont, Kit] | None) -> Any:
    """("synth", a seed) or (soundfont, kit, note): a kit without the drum means synth."""
    if kit is None or drum not in kit[1].notes or rng.random() < 0.45:
        return ("synth", int(rng.integers(1 << 31)))
    notes = kit[1].notes[drum]
    return (kit[0], kit[1], int(notes[int(rng.integers(len(notes)))]))


def _render_drum(
    drum: str, choice: Any, hits: list[Note], rng: np.random.Generator, sr: int, frames: int
) -> tuple[np.ndarray, str]:
    if choice[0] == "synth":
        sound = SYNTH_DRUMS[drum](np.random.default_rng(choice[1]), sr)
        return sounds.hits_stem(hits, sound, frames, sr), "synth"
    font, kit, note = choice
    played = [Note(h.start, h.length, note, h.velocity) for h in hits]
    audio = renderer(sr).render(font, kit.bank, kit.program, played, frames, drums=True)
    return audio.mean(axis=1).astype(np.float64), font.name


# ---------------------------------------------------------------------------- bass and keys


def _bass_stems(
    beat: Arrangement,
    tags: Sequence[str],
    rng: np.random.Generator,
    font: Soundfont | None,
    kicks: list[Note],
    sr: int,
    frames: int,
) -> list[mix.Stem]:
    stems = []
    if "808" in tags:
        # Without a kick pattern in the clip, the 808 still plays one.
        notes = patterns.eight_o_eight(beat, rng, kicks)
        audio = sounds.bass_line(sounds.eight_o_eight(rng), notes, frames, sr)
        stems.append(mix.Stem("808", ("808",), audio, "synth"))
    if "deep sub" in tags:
        audio = sounds.bass_line(sounds.deep_sub(rng), patterns.sub(beat, rng), frames, sr)
        stems.append(mix.Stem("deep sub", ("deep sub",), audio, "synth"))
    if "plucked bass" in tags:
        notes = patterns.bass_line(beat, rng, kicks)
        stems.append(_melodic_stem("plucked bass", notes, rng, font, sr, frames))
    return stems


SYNTH_VOICES = {
    "synth bells": (sounds.fm_bell, 0.4),
    "synth pad": (sounds.pad, 0.4),
    "synth lead": (sounds.lead, 0.4),
    "plucked guitar": (sounds.pluck, 0.25),
    "plucked bass": (sounds.pluck, 0.25),
}


def _melodic_stem(
    tag: str,
    notes: list[Note],
    rng: np.random.Generator,
    font: Soundfont | None,
    sr: int,
    frames: int,
) -> mix.Stem:
    """A General MIDI preset for the tag, or for synths and plucks sometimes a synthesiser."""
    synth, share = SYNTH_VOICES.get(tag, (None, 0.0))
    if synth is not None and (font is None or rng.random() < share):
        voice = synth(rng)
        return mix.Stem(tag, (tag,), sounds.notes_stem(notes, voice, frames, sr, 4.0), "synth")
    assert font is not None, f"no soundfont plays {tag}"
    r = renderer(sr)
    programs = [p for p in PROGRAMS[tag] if r.has_preset(font, 0, p)]
    program = int(programs[int(rng.integers(len(programs)))])
    audio = r.render(font, 0, program, notes, frames).mean(axis=1).astype(np.float64)
    return mix.Stem(tag, (tag,), audio, font.name)
