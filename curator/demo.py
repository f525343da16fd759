"""Renders trap-like demo beats with known tempo, key and instruments.

The parts are written here (patterns, chords, melodies) and played by the trap corpus's
machinery: sampled instruments and drum kits from MuseScore General through fluidsynth (the
soundfont the trap tagger never trains on), 808s with glides and deep subs synthesised, and
some drums from the corpus's synthesised kits, as producers mix sample packs.
"""

from __future__ import annotations

import dataclasses
import json
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from pathlib import Path

import numpy as np
import soundfile as sf

from curator.files import replace_atomically, write_json_atomically
from curator.music import NOTE_NAMES
from curator.plugins.trap.corpus import soundfonts as corpus_fonts
from curator.plugins.trap.corpus import sounds as corpus_sounds
from curator.plugins.trap.corpus.sounds import Note as CorpusNote

SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
MELODIC = ("synth bells", "piano", "plucked guitar", "strings", "synth pad")
INSTRUMENTS = (
    "808",
    "deep sub",
    "kick",
    "snare",
    "clap",
    "hi-hat",
    "hi-hat rolls",
    "open hat",
    *MELODIC,
)
MOODS = ("dark", "melancholic", "dreamy", "cheerful", "aggressive")
PEAK_DBFS = -1.0
TRUTH_FILE = "truth.json"
# The soundfont the trap tagger never trains on: the demo shows it on unheard sounds.
DEMO_SOUNDFONT = corpus_fonts.DEFAULT_HOLDOUT

Sound = np.ndarray
Hit = tuple[float, float]  # (position in beats, velocity)
Note = tuple[float, float, int, float]  # (start beat, length in beats, MIDI pitch, velocity)


@dataclass(frozen=True)
class BeatSpec:
    """What one beat contains: the ground truth the accuracy tests check against."""

    name: str
    tempo: float
    key: str
    scale: str
    duration: float
    instruments: tuple[str, ...]
    hat_division: int
    genre: str
    mood: str

    @property
    def half_time(self) -> bool:
        """Fast trap tempos are felt in half time: one snare per bar, on beat 3."""
        return self.tempo >= 120

    def truth(self) -> dict[str, object]:
        """The fields written to truth.json for this beat."""
        return {
            "tempo": self.tempo,
            "key": self.key,
            "scale": self.scale,
            "instruments": list(self.instruments),
            "hat_division": self.hat_division,
            "genre": self.genre,
            "mood": self.mood,
            "duration": self.duration,
        }


@dataclass(frozen=True)
class _Style:
    """How a genre is drawn: tempo ranges, moods, favourite instruments and kick patterns."""

    tempos: tuple[tuple[int, int], ...]
    moods: tuple[str, ...]
    melodic: tuple[str, ...]
    kicks: tuple[str, ...]  # one bar of 16ths, used when the beat is not in half time
    p_808: float
    p_rolls: float


_STYLES = {
    "trap": _Style(
        ((130, 150), (70, 80)),
        ("dark", "aggressive", "melancholic"),
        ("synth bells", "piano", "strings", "plucked guitar"),
        ("x..x......x.....", "x.....x...x..x..", "x..x..x.......x."),
        0.9,
        0.8,
    ),
    "drill": _Style(
        ((138, 146),),
        ("dark", "aggressive"),
        ("strings", "piano", "synth bells"),
        ("x.....x...x.....", "x..x......x..x.."),
        0.95,
        0.7,
    ),
    "cloud rap": _Style(
        ((130, 150), (70, 80)),
        ("dreamy", "melancholic"),
        ("synth pad", "synth bells", "plucked guitar"),
        ("x.........x.....", "x......x..x....."),
        0.6,
        0.4,
    ),
    "boom bap": _Style(
        ((84, 96),),
        ("melancholic", "dark", "cheerful"),
        ("piano", "strings", "plucked guitar"),
        ("x......x..x.....", "x.x.......x..x..", "x......xx.x....."),
        0.2,
        0.0,
    ),
    "r&b": _Style(
        ((70, 100),),
        ("dreamy", "melancholic", "cheerful"),
        ("piano", "synth pad", "plucked guitar", "strings"),
        ("x.....x...x.....", "x......x..x..x.."),
        0.5,
        0.3,
    ),
}
GENRES = tuple(_STYLES)

# Half-time kicks leave step 8 free for the one snare of the bar.
_HALF_TIME_KICKS = ("x.........x.....", "x......x..x.....", "x..x......x..x..", "x.........xx...x")

# Scale-degree progressions. The tonic chord comes first and is held longest, and each loop
# has a chord that rules out the neighbouring keys: i-iv-VI-VII was dropped because it fits
# the minor key a fourth up just as well, and Essentia's KeyExtractor often chose that one.
_PROGRESSIONS = {
    "minor": ((0, 5, 2, 6), (0, 3, 4, 5), (0, 5, 3, 4), (0, 6, 5, 6)),
    "major": ((0, 4, 5, 3), (0, 3, 5, 4), (0, 5, 3, 4), (0, 3, 4, 3)),
}
_CHORD_BEATS = (8, 4, 2, 2)


@dataclass(frozen=True)
class Arrangement:
    """Who plays a beat's parts and what its chords loop: the demo's own by default.

    Benchmarks play the same beats from other soundfonts and with loops chosen for music
    rather than for key estimators (no tonic pedal, modal progressions, even chord lengths).
    `progressions` maps a scale to its loops (None: the demo's); melodic soundfonts only.
    """

    soundfont: str = DEMO_SOUNDFONT
    progressions: dict[str, tuple[tuple[int, ...], ...]] | None = None
    chord_beats: tuple[float, ...] = _CHORD_BEATS
    tonic_pedal: bool = True


DEMO_ARRANGEMENT = Arrangement()

_GAINS = {"kick": 0.9, "snare": 0.55, "clap": 0.55, "hi-hat": 0.22, "open hat": 0.18}
_GAINS |= {"808": 0.85, "deep sub": 0.75} | dict.fromkeys(MELODIC, 0.4)


# ---------------------------------------------------------------------------- specs


def random_spec(rng: np.random.Generator, index: int) -> BeatSpec:
    """Draw a plausible beat: genre first, then tempo, mood, key and instruments to match it."""
    genre = str(rng.choice(GENRES))
    style = _STYLES[genre]
    low, high = style.tempos[int(rng.integers(len(style.tempos)))]
    mood = str(rng.choice(style.moods))
    return BeatSpec(
        name=f"beat_{index:04d}",
        tempo=float(rng.integers(low, high + 1)),
        key=NOTE_NAMES[int(rng.integers(12))],
        scale=_scale_for(mood, rng),
        duration=round(float(rng.uniform(45.0, 90.0)), 1),
        instruments=_pick_instruments(style, rng),
        hat_division=int(rng.choice([8, 16])),
        genre=genre,
        mood=mood,
    )


def _scale_for(mood: str, rng: np.random.Generator) -> str:
    """Cheerful beats are major, dark ones minor, the rest mostly minor as in the genre."""
    p_major = {"cheerful": 1.0, "dreamy": 0.5, "melancholic": 0.2}.get(mood, 0.0)
    return "major" if rng.random() < p_major else "minor"


def _pick_instruments(style: _Style, rng: np.random.Generator) -> tuple[str, ...]:
    """One drum kit, one bass and 1-3 melodic parts, listed in vocabulary order."""
    tags = {"kick", "hi-hat", "808" if rng.random() < style.p_808 else "deep sub"}
    tags |= [{"snare"}, {"clap"}, {"snare", "clap"}][int(rng.choice(3, p=[0.45, 0.35, 0.2]))]
    if rng.random() < style.p_rolls:
        tags.add("hi-hat rolls")
    if rng.random() < 0.4:
        tags.add("open hat")
    weights = np.array([3.0 if m in style.melodic else 1.0 for m in MELODIC])
    count = int(rng.integers(1, 4))
    tags |= set(rng.choice(MELODIC, size=count, replace=False, p=weights / weights.sum()))
    return tuple(tag for tag in INSTRUMENTS if tag in tags)


# ---------------------------------------------------------------------------- the grid


@dataclass(frozen=True)
class _Grid:
    """Maps positions in beats to sample frames; every onset is rounded from here, never summed."""

    sample_rate: int
    frames: int
    beat_seconds: float

    @property
    def bars(self) -> int:
        return int(np.ceil(self.frames / self.sample_rate / self.beat_seconds / 4))

    def frame(self, beats: float) -> int:
        """The frame at a position in beats, or the number of frames that many beats last."""
        return round(beats * self.beat_seconds * self.sample_rate)


def _grid_for(spec: BeatSpec, sample_rate: int) -> _Grid:
    return _Grid(sample_rate, round(spec.duration * sample_rate), 60.0 / spec.tempo)


def _place(stem: np.ndarray, grid: _Grid, beat: float, sound: Sound, gain: float = 1.0) -> None:
    """Add a sound into the stem at a grid position, cut at the end of the beat."""
    start = grid.frame(beat)
    if start >= len(stem):
        return
    part = sound[: len(stem) - start]
    stem[start : start + len(part)] += gain * part


def _pattern_steps(pattern: str) -> list[int]:
    return [step for step, mark in enumerate(pattern) if mark == "x"]


# ---------------------------------------------------------------------------- drum parts


def _kick_hits(spec: BeatSpec, grid: _Grid, rng: np.random.Generator) -> list[Hit]:
    """Alternate two kick patterns bar by bar, as producers loop a two-bar phrase."""
    pool = _HALF_TIME_KICKS if spec.half_time else _STYLES[spec.genre].kicks
    pair = [pool[int(i)] for i in rng.choice(len(pool), size=2)]
    return [
        (bar * 4 + step / 4, 1.0 if step == 0 else 0.85)
        for bar in range(grid.bars)
        for step in _pattern_steps(pair[bar % 2])
    ]


def _backbeat_hits(spec: BeatSpec, grid: _Grid) -> list[Hit]:
    """Snare or clap on beats 2 and 4, or on beat 3 when the beat is felt in half time."""
    beats = (2.0,) if spec.half_time else (1.0, 3.0)
    return [(bar * 4 + beat, 1.0) for bar in range(grid.bars) for beat in beats]


def _open_hat_hits(spec: BeatSpec, grid: _Grid) -> list[Hit]:
    """Open hats on the off-beat after the backbeat, every other bar."""
    if "open hat" not in spec.instruments:
        return []
    beats = (2.5,) if spec.half_time else (1.5, 3.5)
    return [(bar * 4 + beat, 0.9) for bar in range(1, grid.bars, 2) for beat in beats]


def _hat_hits(spec: BeatSpec, grid: _Grid, rng: np.random.Generator) -> list[Hit]:
    """Closed hats in 8ths or 16ths, with a roll on one beat of every other bar."""
    per_beat = spec.hat_division // 4
    rolls = "hi-hat rolls" in spec.instruments
    opens = {beat for beat, _ in _open_hat_hits(spec, grid)}
    hits: list[Hit] = []
    for beat in range(grid.bars * 4):
        rolled = rolls and beat % 8 in (6, 7) and rng.random() < 0.6
        hits += _roll(beat, rng) if rolled else _straight_hats(beat, per_beat)
    return [hit for hit in hits if hit[0] not in opens]


def _straight_hats(beat: int, per_beat: int) -> list[Hit]:
    """Accent the hat on the beat, as a drummer's hand would."""
    return [(beat + i / per_beat, 1.0 if i == 0 else 0.7) for i in range(per_beat)]


def _roll(beat: int, rng: np.random.Generator) -> list[Hit]:
    """A trap roll: triplets, sextuplets or 32nds over one beat, rising in velocity."""
    count = int(rng.choice([3, 6, 8]))
    return [(beat + i / count, 0.5 + 0.5 * i / count) for i in range(count)]


# ---------------------------------------------------------------------------- drum sounds

# The share of drum parts played by a synthesised sound rather than a MuseScore kit.
_SYNTH_DRUMS = 0.35


def _drum_stems(
    spec: BeatSpec, grid: _Grid, kicks: list[Hit], rng: np.random.Generator, font: str
) -> dict[str, np.ndarray]:
    """Render each drum tag of the spec onto its own stem, from one kit or a synthesiser."""
    parts: dict[str, list[Hit]] = {
        "kick": kicks,
        "snare": _backbeat_hits(spec, grid),
        "clap": _backbeat_hits(spec, grid),
        "hi-hat": _hat_hits(spec, grid, rng),
        "open hat": _open_hat_hits(spec, grid),
    }
    kits = corpus_fonts.soundfont(font).kits
    kit = kits[int(rng.integers(len(kits)))]
    stems = {}
    for tag, hits in parts.items():
        synthesised = rng.random() < _SYNTH_DRUMS  # drawn for every tag: the stream stays put
        sound_seed = int(rng.integers(2**31))
        if tag not in spec.instruments:
            continue
        if synthesised:
            sound = _SYNTH_SOUNDS[tag](np.random.default_rng(sound_seed), grid.sample_rate)
            stems[tag] = _hits_stem(grid, sound, hits)
        else:
            note = kit.notes[tag][sound_seed % len(kit.notes[tag])]
            notes = [_note(grid, beat, 0.1, note, velocity) for beat, velocity in hits]
            stems[tag] = _sampled(grid, notes, kit.bank, kit.program, font, drums=True)
    return stems


_SYNTH_SOUNDS: dict[str, Callable[[np.random.Generator, int], Sound]] = {
    "kick": corpus_sounds.kick,
    "snare": corpus_sounds.snare,
    "clap": corpus_sounds.layered_clap,
    "hi-hat": corpus_sounds.hat,
    "open hat": partial(corpus_sounds.hat, open_hat=True),
}


def _hits_stem(grid: _Grid, sound: Sound, hits: Iterable[Hit]) -> np.ndarray:
    """One drum sound played at every hit, scaled by the hit's velocity."""
    stem = np.zeros(grid.frames)
    for beat, velocity in hits:
        _place(stem, grid, beat, sound, velocity)
    return stem


def _note(grid: _Grid, beat: float, beats: float, pitch: int, velocity: float) -> CorpusNote:
    """A note of the corpus renderer: times in seconds, taken from the grid's frames."""
    rate = grid.sample_rate
    return CorpusNote(grid.frame(beat) / rate, grid.frame(beats) / rate, pitch, velocity)


def _sampled(
    grid: _Grid, notes: list[CorpusNote], bank: int, program: int, font: str, drums: bool = False
):
    """Notes played by a preset of the soundfont (the demo's: MuseScore General), mono."""
    renderer = corpus_fonts.renderer(grid.sample_rate)
    stereo = renderer.render(
        corpus_fonts.soundfont(font), bank, program, notes, grid.frames, drums=drums
    )
    return stereo.mean(axis=1).astype(np.float64)


# ---------------------------------------------------------------------------- harmony


@dataclass(frozen=True)
class _Chord:
    start: float  # beats
    length: float  # beats
    root: int  # pitch class
    tones: tuple[int, ...]  # pitch classes, root first
    tonic: int | None  # pitch class of the key, held over every chord as a pedal (or none)


def _chords(
    spec: BeatSpec, grid: _Grid, rng: np.random.Generator, arrangement: Arrangement
) -> list[_Chord]:
    """Loop a diatonic progression over the whole beat, slower when felt in half time."""
    loops = (arrangement.progressions or _PROGRESSIONS)[spec.scale]
    progression = loops[int(rng.integers(len(loops)))]
    stretch = 2 if spec.half_time else 1
    chords, beat = [], 0.0
    while grid.frame(beat) < grid.frames:
        for degree, beats in zip(progression, arrangement.chord_beats, strict=True):
            chords.append(_triad(spec, degree, beat, beats * stretch, arrangement.tonic_pedal))
            beat += beats * stretch
    return chords


def _triad(spec: BeatSpec, degree: int, start: float, length: float, pedal: bool) -> _Chord:
    """Stack scale thirds on a degree, so every chord stays inside the key."""
    tonic, steps = NOTE_NAMES.index(spec.key), SCALES[spec.scale]
    tones = tuple((tonic + steps[(degree + i) % 7]) % 12 for i in (0, 2, 4))
    return _Chord(start, length, tones[0], tones, tonic if pedal else None)


def _voice(pitch_class: int, low: int) -> int:
    """The MIDI note of a pitch class in the octave starting at `low`."""
    return low + (pitch_class - low) % 12


def _root_position(chord: _Chord, low: int) -> list[int]:
    """MIDI notes of a chord with its root lowest, then the key's tonic above it as a pedal.

    The lowest note is heard as the bass, and a tonic pedal over every chord (always
    diatonic) is what lets listeners and key estimators tell the key from its neighbours.
    """
    root = _voice(chord.root, low)
    above = root + (chord.tonic - chord.root) % 12 if chord.tonic is not None else root + 12
    return [root + (pc - chord.root) % 12 for pc in chord.tones] + [above]


# ---------------------------------------------------------------------------- melodic parts


def _pad_notes(chords: list[_Chord], low: int) -> list[Note]:
    """Sustained chords under a softer tonic pedal, with the root doubled an octave down.

    The pedal is only a little softer: sampled strings and pads fall off steeply with
    velocity, and a faint tonic let the relative major win the key.
    """
    notes = [
        (c.start, c.length, pitch, 1.0 if i < 3 else 0.8)
        for c in chords
        for i, pitch in enumerate(_root_position(c, low))
    ]
    return notes + [(c.start, c.length, _voice(c.root, low - 12), 0.8) for c in chords]


def _piano_notes(chords: list[_Chord]) -> list[Note]:
    """Block chords on every other beat over a left-hand root."""
    notes: list[Note] = []
    for c in chords:
        for beat in np.arange(c.start, c.start + c.length, 2.0):
            notes += [(float(beat), 2.0, pitch, 0.8) for pitch in _root_position(c, 55)[:3]]
            notes.append((float(beat), 2.0, _voice(c.root, 45), 1.0))
    return notes


def _arpeggio(chords: list[_Chord], low: int, order: tuple[int, ...], step: float) -> list[Note]:
    """Walk the chord tones in a fixed order, one note per step, each ringing two steps."""
    notes: list[Note] = []
    for c in chords:
        for i, beat in enumerate(np.arange(c.start, c.start + c.length, step)):
            tone = order[i % len(order)]  # 0-2 the triad, 3 the tonic pedal
            pitch = _root_position(c, low)[tone]
            notes.append((float(beat), 2 * step, pitch, 1.0 if i % 4 == 0 else 0.75))
    return notes


# Each melodic instrument: what it plays (register and rhythm) and its longest note (s).
_PARTS: dict[str, tuple[Callable[[list[_Chord]], list[Note]], float]] = {
    "synth bells": (partial(_arpeggio, low=72, order=(0, 1, 2, 1, 3, 2, 1, 2), step=0.5), 1.5),
    "piano": (_piano_notes, 2.5),
    "plucked guitar": (partial(_arpeggio, low=52, order=(0, 2, 1, 3, 2, 1), step=0.5), 1.5),
    "strings": (partial(_pad_notes, low=60), 30.0),
    "synth pad": (partial(_pad_notes, low=55), 30.0),
}


# The General MIDI presets each part may be played by: the plainest of the corpus's
# (plugins/trap/corpus/soundfonts.py), as the demo should sound like its truth to anyone.
# The electric grand (2) is a piano, but musicnn and many listeners hear a guitar in it.
_PROGRAMS = {
    "synth bells": (8, 9, 10, 11, 14),
    "piano": (0, 1),
    "plucked guitar": (24, 25),
    "strings": (48, 49),
    "synth pad": (88, 89, 90, 94, 95),
}


def _melodic_stem(tag: str, chords: list[_Chord], grid: _Grid, rng: np.random.Generator, font: str):
    """The part played by one of the General MIDI presets that make the tag."""
    play, longest = _PARTS[tag]
    programs = _PROGRAMS[tag]
    program = programs[int(rng.integers(len(programs)))]
    notes = [
        _note(grid, start, min(beats, longest / grid.beat_seconds), midi, velocity)
        for start, beats, midi, velocity in play(chords)
    ]
    return _sampled(grid, notes, 0, program, font)


def _bass_stem(
    spec: BeatSpec, chords: list[_Chord], kicks: list[Hit], grid: _Grid, rng: np.random.Generator
) -> np.ndarray:
    """808 follows the kick on the chord root, sliding up now and then; the deep sub holds
    the root for the whole chord."""
    rate = grid.sample_rate
    if "deep sub" in spec.instruments:
        notes = [_note(grid, c.start, c.length, _voice(c.root, 28), 1.0) for c in chords]
        return corpus_sounds.bass_line(corpus_sounds.deep_sub(rng), notes, grid.frames, rate)
    starts = [beat for beat, _ in kicks] + [grid.bars * 4.0]
    notes = []
    for start, end in pairwise(starts):
        root = _voice(_chord_at(chords, start).root, 28)
        if end - start >= 1.5 and rng.random() < 0.3:
            # A glide up an 8th before the next note: on the grid, so the pulse stays clear
            # (a slide halfway through a dotted note made Essentia hear 4/3 of the tempo).
            slide_at = end - 0.5
            notes.append(_note(grid, start, slide_at - start, root, 1.0))
            slide = _note(grid, slide_at, 0.5, root + int(rng.choice([12, 7])), 1.0)
            notes.append(dataclasses.replace(slide, glide=True))
        else:
            notes.append(_note(grid, start, end - start, root, 1.0))
    return corpus_sounds.bass_line(corpus_sounds.eight_o_eight(rng), notes, grid.frames, rate)


def _chord_at(chords: list[_Chord], beat: float) -> _Chord:
    return next(c for c in reversed(chords) if c.start <= beat)


# ---------------------------------------------------------------------------- mixing


def render_stems(
    spec: BeatSpec,
    sample_rate: int = 44100,
    seed: int = 0,
    arrangement: Arrangement = DEMO_ARRANGEMENT,
) -> dict[str, np.ndarray]:
    """Each tag of the spec rendered alone, mono float64, keyed by tag (rolls live in hi-hat)."""
    rng = _beat_rng(spec, seed)
    grid = _grid_for(spec, sample_rate)
    kicks = _kick_hits(spec, grid, rng)  # drawn once: the 808 plays along with the kick
    chords = _chords(spec, grid, rng, arrangement)
    font = arrangement.soundfont
    stems = _drum_stems(spec, grid, kicks, rng, font)
    for tag in spec.instruments:
        if tag in MELODIC:
            stems[tag] = _melodic_stem(tag, chords, grid, rng, font)
    bass = "808" if "808" in spec.instruments else "deep sub"
    stems[bass] = _bass_stem(spec, chords, kicks, grid, rng)
    return stems


def render_beat(
    spec: BeatSpec,
    sample_rate: int = 44100,
    seed: int = 0,
    arrangement: Arrangement = DEMO_ARRANGEMENT,
) -> np.ndarray:
    """The stereo mix of a beat: float32, shape (frames, 2), peak at about -1 dBFS."""
    stems = render_stems(spec, sample_rate, seed, arrangement)
    pans = _pans(spec, _beat_rng(spec, seed, stream=1))
    mix = np.zeros((2, _grid_for(spec, sample_rate).frames))
    for tag, stem in stems.items():
        # Stems are levelled by peak first, so the gains alone set the balance.
        left, right = _GAINS[tag] * _pan_gains(pans[tag]) / max(_peak(stem), 1e-12)
        mix[0] += left * stem
        mix[1] += right * stem
    mix *= corpus_sounds.fades(mix.shape[1], sample_rate, 0.005, 0.03)
    return (_normalised(mix) * 10 ** (PEAK_DBFS / 20)).astype(np.float32).T


def _pans(spec: BeatSpec, rng: np.random.Generator) -> dict[str, float]:
    """Low end and backbeat in the middle, hats and melodic parts spread a little."""
    pans = {"808": 0.0, "deep sub": 0.0, "kick": 0.0, "snare": 0.0, "clap": 0.05}
    pans |= {"hi-hat": 0.25 * rng.choice([-1, 1]), "open hat": -0.2}
    spread = rng.uniform(0.15, 0.45, size=len(MELODIC)) * rng.choice([-1, 1], size=len(MELODIC))
    return pans | dict(zip(MELODIC, spread.tolist(), strict=True))


def _pan_gains(pan: float) -> np.ndarray:
    """Constant-power panning, -1 is hard left and +1 hard right."""
    angle = (pan + 1) * np.pi / 4
    return np.array([np.cos(angle), np.sin(angle)])


def _peak(signal: np.ndarray) -> float:
    return float(max(signal.max(initial=0.0), -signal.min(initial=0.0)))


def _normalised(signal: np.ndarray) -> np.ndarray:
    peak = _peak(signal)
    return signal / peak if peak > 0 else signal


def _beat_rng(spec: BeatSpec, seed: int, stream: int = 0) -> np.random.Generator:
    """Keyed by the beat's name, so a beat sounds the same whatever else is rendered."""
    return np.random.default_rng([_entropy(seed), zlib.crc32(spec.name.encode()), stream])


def _entropy(seed: int) -> int:
    """SeedSequence wants non-negative entropy; fold negative seeds onto distinct values."""
    return int(seed) & (2**64 - 1)


# ---------------------------------------------------------------------------- datasets


def render_demo_dataset(
    out: Path,
    n: int,
    seed: int = 0,
    sample_rate: int = 44100,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Write beat_0000.wav... and truth.json to `out`; the same n and seed give the same bytes.

    `progress(done, n)` is called after each file. Beats from an earlier, larger run are
    removed so the folder always matches truth.json.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    truth: dict[str, object] = {}
    for index in range(n):
        # Seeded by (seed, index), so beat k is the same whatever n is.
        spec = random_spec(np.random.default_rng([_entropy(seed), index]), index)
        _write_wav(out / f"{spec.name}.wav", render_beat(spec, sample_rate, seed), sample_rate)
        truth[f"{spec.name}.wav"] = spec.truth()
        if progress is not None:
            progress(index + 1, n)
    _remove_stale(out, set(truth))
    _write_truth(out / TRUTH_FILE, truth)
    return [out / name for name in truth]


def _write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM: what training pipelines expect, and libsndfile writes it byte-for-byte alike.

    Written whole: an interrupted run leaves no half beat for `curator ingest` to choke on.
    """
    write = partial(sf.write, data=audio, samplerate=sample_rate, subtype="PCM_16", format="WAV")
    replace_atomically(path, lambda temporary: write(temporary))


def _remove_stale(out: Path, keep: set[str]) -> None:
    """Delete beats a previous, larger run left behind; other files are not ours to touch."""
    for old in out.glob("beat_*.wav"):
        if re.fullmatch(r"beat_\d{4,}\.wav", old.name) and old.name not in keep:
            old.unlink()


def _write_truth(path: Path, truth: dict[str, object]) -> None:
    """Write truth.json whole: a reader never sees half of it."""
    write_json_atomically(path, truth, sort_keys=True)


def load_truth(folder: Path) -> dict[str, BeatSpec]:
    """Read truth.json back into specs, keyed by file name."""
    raw = json.loads((Path(folder) / TRUTH_FILE).read_text())
    return {name: _spec_from_truth(name, fields) for name, fields in raw.items()}


def _spec_from_truth(file_name: str, fields: dict) -> BeatSpec:
    """JSON has no tuples, so the instruments come back as a list."""
    fields = dict(fields, instruments=tuple(fields["instruments"]))
    return BeatSpec(name=Path(file_name).stem, **fields)
