"""Trap, rap and R&B arrangements: tempo, swing, key, chords, and what each part plays.

An arrangement is drawn from a random generator and lays out every part of a beat in
seconds: drum hits (kick patterns, snare or clap on the backbeat, hats with rolls, open hats),
the bass (an 808 on the kick with glides, a held sub, a plucked bass line) and the melodic
parts in key (chords held or struck, arpeggios, melodies). Fast tempos are mostly felt in half
time: the backbeat falls once a bar, on beat 3.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .sounds import Note

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
SCALES = {
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "major": (0, 2, 4, 5, 7, 9, 11),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
}
SCALE_WEIGHTS = {"minor": 5, "major": 2, "harmonic minor": 2, "phrygian": 1, "dorian": 1}
# Scale-degree loops, tonic first, as trap and R&B producers loop them.
PROGRESSIONS = (
    (0, 5, 2, 6), (0, 3, 4, 4), (0, 5, 3, 4), (0, 6, 5, 6), (0, 3, 0, 4),
    (0, 0, 5, 5), (0, 2, 5, 4), (0, 4, 5, 3), (0, 1, 0, 1), (0, 5, 6, 4),
)  # fmt: skip

# One bar of 16ths. Half-time kicks leave step 8 (beat 3) to the backbeat.
HALF_TIME_KICKS = (
    "x.........x.....", "x......x..x.....", "x..x......x..x..", "x.........xx...x",
    "x.....x...x.....", "x..x.......x....", "x.......x.x.....", "x.x.......x..x..",
)  # fmt: skip
STRAIGHT_KICKS = (
    "x......x..x.....", "x.x.......x..x..", "x......xx.x.....", "x.....x...x.....",
    "x..x..x...x.....", "x.......x.x.....", "x..x....x..x....",
)  # fmt: skip


@dataclass(frozen=True)
class Chord:
    start: float  # seconds
    length: float
    tones: tuple[int, ...]  # pitch classes, root first


@dataclass
class Arrangement:
    """A beat laid out in seconds; `parts` maps a part name to its notes or hits."""

    tempo: float
    half_time: bool
    swing: float  # how late the off 16ths fall, as a fraction of a 16th
    key: int
    scale: str
    seconds: float
    chords: list[Chord] = field(default_factory=list)
    parts: dict[str, list[Note]] = field(default_factory=dict)

    @property
    def key_name(self) -> str:
        return f"{NOTE_NAMES[self.key]} {self.scale}"

    @property
    def sixteenth(self) -> float:
        return 60.0 / self.tempo / 4

    @property
    def bars(self) -> int:
        return int(np.ceil(self.seconds / (16 * self.sixteenth))) + 1

    def time(self, step: float) -> float:
        """The time of a 16th step (counted from the start), swung."""
        whole = int(np.floor(step))
        late = self.swing if whole % 2 else 0.0
        return (step + late) * self.sixteenth

    def scale_pitch(self, degree: int, low: int) -> int:
        """The MIDI note of a scale degree (any integer) at or above `low`."""
        steps = SCALES[self.scale]
        octave, index = divmod(degree, 7)
        return _above(self.key + steps[index], low) + 12 * octave


def _above(pitch_class: int, low: int) -> int:
    return low + (pitch_class - low) % 12


def arrangement(
    rng: np.random.Generator, seconds: float, tempo: float | None = None
) -> Arrangement:
    """Tempo, feel, swing, key and chords for `seconds` of music; parts are added after."""
    tempo = float(tempo or round(rng.uniform(60, 180)))
    half_time = bool(rng.random() < (0.85 if tempo >= 115 else 0.15))
    swing = float(rng.choice([0.0, 0.0, rng.uniform(0.05, 0.33)]))
    scales = list(SCALE_WEIGHTS)
    weights = np.array([SCALE_WEIGHTS[s] for s in scales], float)
    scale = str(rng.choice(scales, p=weights / weights.sum()))
    beat = Arrangement(tempo, half_time, swing, int(rng.integers(12)), scale, seconds)
    beat.chords = _chords(beat, rng)
    return beat


def _chords(beat: Arrangement, rng: np.random.Generator) -> list[Chord]:
    """Loop a diatonic progression, a chord a bar (two when the tempo is slow or half time)."""
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    bars_each = int(rng.choice([1, 2])) if beat.half_time or beat.tempo > 100 else 1
    steps, chords, bar = SCALES[beat.scale], [], 0
    while bar < beat.bars:
        degree = progression[(bar // bars_each) % len(progression)]
        tones = tuple((beat.key + steps[(degree + i) % 7]) % 12 for i in (0, 2, 4, 6))
        seventh = rng.random() < 0.3
        start = beat.time(16 * bar)
        chords.append(
            Chord(start, 16 * bars_each * beat.sixteenth, tones if seventh else tones[:3])
        )
        bar += bars_each
    return chords


def chord_at(beat: Arrangement, time: float) -> Chord:
    return next((c for c in reversed(beat.chords) if c.start <= time + 1e-6), beat.chords[0])


# ---------------------------------------------------------------------------- drums


def _hit(beat: Arrangement, step: float, velocity: float, length: float = 0.1) -> Note:
    return Note(beat.time(step), length, 0, float(np.clip(velocity, 0.05, 1.0)))


def _steps(pattern: str) -> list[int]:
    return [i for i, mark in enumerate(pattern) if mark == "x"]


def kick(beat: Arrangement, rng: np.random.Generator) -> list[Note]:
    """A two-bar kick phrase, looped, with an extra hit now and then."""
    pool = HALF_TIME_KICKS if beat.half_time else STRAIGHT_KICKS
    pair = [pool[int(i)] for i in rng.choice(len(pool), size=2)]
    hits = []
    for bar in range(beat.bars):
        steps = set(_steps(pair[bar % 2]))
        if rng.random() < 0.25:
            steps.add(int(rng.choice([3, 6, 7, 11, 13, 14, 15])))
        steps -= _backbeat_steps(beat)
        hits += [
            _hit(beat, 16 * bar + s, 1.0 if s == 0 else rng.uniform(0.75, 0.95))
            for s in sorted(steps)
        ]
    return hits


def _backbeat_steps(beat: Arrangement) -> set[int]:
    return {8} if beat.half_time else {4, 12}


def backbeat(beat: Arrangement, rng: np.random.Generator, ghosts: bool) -> list[Note]:
    """Snare or clap on beats 2 and 4, or on beat 3 in half time; ghost notes for snares."""
    hits = [
        _hit(beat, 16 * bar + step, rng.uniform(0.85, 1.0))
        for bar in range(beat.bars)
        for step in sorted(_backbeat_steps(beat))
    ]
    if ghosts:
        for bar in range(beat.bars):
            for step in rng.choice([3, 7, 10, 14, 15], size=int(rng.integers(0, 3)), replace=False):
                hits.append(_hit(beat, 16 * bar + int(step), rng.uniform(0.2, 0.45)))
    return hits


def hats(beat: Arrangement, rng: np.random.Generator, skip: set[float]) -> list[Note]:
    """Closed hats in 8ths, 16ths or triplets with accents, leaving out the rolled beats."""
    per_beat = int(rng.choice([2, 4, 3] if beat.tempo < 150 else [2, 3, 4, 2]))
    accent = rng.uniform(0.5, 0.85)
    hits = []
    for quarter in range(beat.bars * 4):
        if quarter in skip:
            continue
        for i in range(per_beat):
            velocity = 1.0 if i == 0 else accent * rng.uniform(0.85, 1.1)
            hits.append(_hit(beat, 4 * quarter + 4 * i / per_beat, velocity, 0.05))
    return hits


def roll_beats(
    beat: Arrangement, rng: np.random.Generator, lead_in: float, seconds: float
) -> set[float]:
    """Which beats roll: one or two a bar, all inside the clip so the roll is heard."""
    quarter = 4 * beat.sixteenth
    inside = [
        q for q in range(beat.bars * 4) if lead_in <= q * quarter <= lead_in + seconds - quarter
    ]
    if not inside:
        return set()
    count = max(1, round(len(inside) / 4 * rng.uniform(0.7, 1.8)))
    chosen = rng.choice(inside, size=min(count, len(inside)), replace=False)
    return {float(q) for q in chosen}


def rolls(beat: Arrangement, rng: np.random.Generator, beats: set[float]) -> list[Note]:
    """Trap rolls on the chosen beats: 1/32s, 1/16 or 1/8 triplets, with a velocity ramp."""
    hits = []
    for quarter in sorted(beats):
        count = int(rng.choice([6, 8, 8, 12, 3] if beat.tempo < 110 else [6, 8, 3, 4]))
        up = rng.random() < 0.7
        for i in range(count):
            ramp = i / max(1, count - 1)
            velocity = 0.35 + 0.65 * (ramp if up else 1 - ramp)
            hits.append(_hit(beat, 4 * quarter + 4 * i / count, velocity, 0.04))
    return hits


def open_hats(beat: Arrangement, rng: np.random.Generator) -> list[Note]:
    """Open hats on off-beats, a few a bar."""
    hits = []
    choices = [2, 6, 10, 14]
    for bar in range(beat.bars):
        for step in rng.choice(choices, size=int(rng.integers(1, 3)), replace=False):
            hits.append(_hit(beat, 16 * bar + int(step), rng.uniform(0.7, 1.0), 0.4))
    return hits


def without(hits: list[Note], others: list[Note]) -> list[Note]:
    """`hits` less those at the same time as one of `others` (a hat is open or closed)."""
    taken = {round(o.start, 4) for o in others}
    return [h for h in hits if round(h.start, 4) not in taken]


# ---------------------------------------------------------------------------- bass


def eight_o_eight(beat: Arrangement, rng: np.random.Generator, kicks: list[Note]) -> list[Note]:
    """The 808 plays the chord root on each kick, holding to the next; some notes glide."""
    low = int(rng.integers(26, 36))
    starts = [k.start for k in kicks] + [beat.seconds + 4]
    notes = []
    for start, end in itertools.pairwise(starts):
        root = _above(chord_at(beat, start).tones[0], low)
        length = (end - start) * rng.uniform(0.7, 1.0)
        notes.append(Note(start, length, root, 1.0))
        if rng.random() < 0.3 and length > 4 * beat.sixteenth:
            # A slide up an octave or to the fifth, halfway through the held note.
            target = root + int(rng.choice([12, 7, 5, -5]))
            half = length / 2
            notes[-1] = Note(start, half, root, 1.0)
            notes.append(Note(start + half, half, target, 1.0, glide=True))
    return notes


def sub(beat: Arrangement, rng: np.random.Generator) -> list[Note]:
    """The deep sub holds each chord's root, low."""
    low = int(rng.integers(24, 34))
    return [Note(c.start, c.length * 0.98, _above(c.tones[0], low), 0.9) for c in beat.chords]


def bass_line(beat: Arrangement, rng: np.random.Generator, kicks: list[Note]) -> list[Note]:
    """A plucked bass: roots on the kicks and 8th-note walks between, short and detached."""
    low = int(rng.integers(31, 41))
    times = sorted({k.start for k in kicks} | {beat.time(s) for s in range(0, 16 * beat.bars, 4)})
    notes = []
    for t in times:
        chord = chord_at(beat, t)
        tone = chord.tones[0] if rng.random() < 0.6 else int(rng.choice(chord.tones))
        notes.append(
            Note(
                t, beat.sixteenth * rng.uniform(1.2, 3.0), _above(tone, low), rng.uniform(0.7, 1.0)
            )
        )
    return notes


# ---------------------------------------------------------------------------- melodic


def held_chords(beat: Arrangement, rng: np.random.Generator, low: int) -> list[Note]:
    """Chords held for their length (pads, strings, choirs, organs)."""
    notes = []
    for chord in beat.chords:
        root = _above(chord.tones[0], low)
        voicing = [root + (pc - chord.tones[0]) % 12 for pc in chord.tones]
        if rng.random() < 0.5:
            voicing[0] += 12  # first inversion
        velocity = rng.uniform(0.6, 0.9)
        notes += [Note(chord.start, chord.length, p, velocity) for p in voicing]
    return notes


def struck_chords(beat: Arrangement, rng: np.random.Generator, low: int) -> list[Note]:
    """Chords struck on a rhythm (pianos, keys, brass stabs, guitar strums)."""
    rhythm = [s for s in range(16) if rng.random() < 0.25] or [0, 8]
    length = beat.sixteenth * rng.uniform(1.0, 4.0)
    notes = []
    for bar in range(beat.bars):
        for step in rhythm:
            t = beat.time(16 * bar + step)
            chord = chord_at(beat, t)
            root = _above(chord.tones[0], low)
            velocity = rng.uniform(0.6, 1.0)
            notes += [
                Note(t, length, root + (pc - chord.tones[0]) % 12, velocity) for pc in chord.tones
            ]
    return notes


def arpeggio(beat: Arrangement, rng: np.random.Generator, low: int) -> list[Note]:
    """Chord tones walked in a fixed order, in 8ths, 16ths or triplets."""
    step = float(rng.choice([2, 4, 4 / 3, 2]))
    order = rng.permutation(8)[: int(rng.integers(3, 7))]
    ring = step * beat.sixteenth * rng.uniform(1.0, 3.0)
    notes, i, position = [], 0, 0.0
    while position < 16 * beat.bars:
        t = beat.time(position)
        chord = chord_at(beat, t)
        root = _above(chord.tones[0], low)
        tones = [root + (pc - chord.tones[0]) % 12 for pc in chord.tones]
        tones += [p + 12 for p in tones]
        notes.append(
            Note(
                t, ring, tones[int(order[i % len(order)]) % len(tones)], 0.75 + 0.25 * (i % 4 == 0)
            )
        )
        position += step
        i += 1
    return notes


def melody(beat: Arrangement, rng: np.random.Generator, low: int) -> list[Note]:
    """A two-bar phrase in the scale, looped: a random walk that leans on chord tones."""
    phrase: list[tuple[int, int, int]] = []  # (step, length in steps, degree)
    degree, step = int(rng.integers(0, 5)), 0
    while step < 32:
        length = int(rng.choice([1, 2, 2, 3, 4, 6, 8]))
        if rng.random() > 0.2:
            phrase.append((step, length, degree))
        degree = int(np.clip(degree + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]), -2, 9))
        step += length
    notes = []
    for repeat in range(0, beat.bars, 2):
        for start, length, deg in phrase:
            t = beat.time(16 * repeat + start)
            notes.append(
                Note(
                    t,
                    length * beat.sixteenth * 0.9,
                    beat.scale_pitch(deg, low),
                    rng.uniform(0.7, 1.0),
                )
            )
    return notes


def chop_times(beat: Arrangement, rng: np.random.Generator, low: int) -> list[Note]:
    """Where vocal chops fall: a one-bar rhythm of 8ths and 16ths, pitched in the scale."""
    rhythm = sorted(set(rng.choice(16, size=int(rng.integers(3, 8)), replace=False).tolist()))
    degrees = rng.integers(0, 7, size=len(rhythm))
    notes = []
    for bar in range(beat.bars):
        for step, deg in zip(rhythm, degrees, strict=True):
            notes.append(
                Note(
                    beat.time(16 * bar + step),
                    beat.sixteenth * rng.uniform(1, 3),
                    beat.scale_pitch(int(deg), low),
                    rng.uniform(0.7, 1.0),
                )
            )
    return notes


Style = Callable[[Arrangement, np.random.Generator, int], list[Note]]
# What each melodic tag plays, and from which MIDI note its register starts.
MELODIC_STYLES: dict[str, tuple[tuple[Style, ...], tuple[int, int]]] = {
    "piano": ((struck_chords, arpeggio, melody), (48, 64)),
    "rhodes": ((struck_chords, held_chords, arpeggio), (48, 60)),
    "synth bells": ((arpeggio, melody), (67, 84)),
    "organ": ((held_chords, struck_chords), (48, 60)),
    "plucked guitar": ((arpeggio, struck_chords), (45, 57)),
    "strings": ((held_chords, melody), (52, 67)),
    "choir": ((held_chords,), (55, 65)),
    "brass": ((struck_chords, melody, held_chords), (50, 62)),
    "flute": ((melody,), (67, 79)),
    "synth lead": ((melody, arpeggio), (60, 74)),
    "synth pad": ((held_chords,), (48, 62)),
}


def melodic(beat: Arrangement, rng: np.random.Generator, tag: str) -> list[Note]:
    styles, (low, high) = MELODIC_STYLES[tag]
    style = styles[int(rng.integers(len(styles)))]
    return style(beat, rng, int(rng.integers(low, high + 1)))
