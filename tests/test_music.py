"""curator.music: every spelling of a key, scale and tempo, and the callers that now agree."""

from __future__ import annotations

import math

import pytest

from curator.charts.catalogue import fifths_position
from curator.charts.catalogue import key_name as chart_key_name
from curator.curation.review import current_values, value_changes
from curator.jobs.adherence import key_score, requested
from curator.music import (
    NOTE_NAMES,
    VALUE_FACETS,
    KeyMention,
    key_mentions,
    key_name,
    mentions_tempo,
    pitch_class,
    scale_mentions,
    scale_name,
    tempo_bpm,
    tempo_mentions,
    value_text,
)
from curator.prompts.checking import key_problems, tempo_problems
from curator.validation import VALUE_CHECKS
from curator.vocabulary import default_vocabulary_dir, load_vocabulary

# -- keys as values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelt", "key"),
    [
        ("C", "C"),
        ("c", "C"),
        (" B ", "B"),
        ("F#", "F#"),
        ("F♯", "F#"),
        ("f sharp", "F#"),
        ("F-sharp", "F#"),
        ("Fsharp", "F#"),
        ("F SHARP", "F#"),
        ("Gb", "F#"),
        ("G♭", "F#"),
        ("g flat", "F#"),
        ("G-Flat", "F#"),
        ("Eb", "D#"),  # as Essentia spells it
        ("Db", "C#"),
        ("Ab", "G#"),
        ("Bb", "A#"),
        ("a-flat", "G#"),
        ("Cb", "B"),  # round the octave
        ("B#", "C"),
        ("E#", "F"),
        ("Fb", "E"),
    ],
)
def test_every_spelling_of_a_key_is_read_as_its_sharps_name(spelt: str, key: str) -> None:
    assert key_name(spelt) == key
    assert pitch_class(spelt) == NOTE_NAMES.index(key)


@pytest.mark.parametrize(
    "not_a_key", ["", "H", "G minor", "E b", "F##", "C major", "do", "Ebb", None, 3, ["C"]]
)
def test_what_is_not_a_key_reads_as_none(not_a_key: object) -> None:
    assert key_name(not_a_key) is None and pitch_class(not_a_key) is None


def test_note_names_are_the_twelve_pitch_classes_in_sharps() -> None:
    assert [pitch_class(name) for name in NOTE_NAMES] == list(range(12))
    assert [key_name(name) for name in NOTE_NAMES] == list(NOTE_NAMES)


# -- scales and tempos as values ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelt", "scale"),
    [("major", "major"), ("Minor", "minor"), (" MAJOR ", "major"), ("maj", "major"),
     ("min", "minor"), ("dorian", None), ("", None), (None, None), ("minor key", None)],
)  # fmt: skip
def test_scales(spelt: object, scale: str | None) -> None:
    assert scale_name(spelt) == scale


@pytest.mark.parametrize(
    ("spelt", "bpm"),
    [(109, 109.0), (92.5, 92.5), ("109", 109.0), (" 92.50 ", 92.5), ("140 bpm", 140.0),
     ("140 BPM", 140.0), ("140bpm", 140.0), ("90 beats per minute", 90.0),
     ("90 beats a minute", 90.0), ("1e9", 1e9), ("fast", None), ("", None), ("bpm", None),
     ("1 2", None), (True, None), (None, None), ([109], None)],
)  # fmt: skip
def test_tempos(spelt: object, bpm: float | None) -> None:
    assert tempo_bpm(spelt) == bpm


def test_a_tempo_that_is_no_finite_number_is_still_read_for_the_caller_to_judge() -> None:
    assert math.isnan(tempo_bpm("nan") or 0.0) and tempo_bpm(float("inf")) == math.inf


@pytest.mark.parametrize(
    ("facet", "stored", "shown"),
    [("key", "Eb", "D#"), ("key", "g flat", "F#"), ("key", "unknown", None),
     ("scale", "Minor", "minor"), ("scale", "dorian", None), ("tempo", "109.0", "109"),
     ("tempo", "92.50 BPM", "92.5"), ("tempo", "nan", None), ("tempo", "fast", None),
     ("instruments", "808", None)],
)  # fmt: skip
def test_a_value_in_the_one_spelling_the_catalogue_keeps(facet, stored, shown) -> None:
    assert value_text(facet, stored) == shown


# -- keys, scales and tempos in text ------------------------------------------------------------


def test_keys_in_text_in_every_spelling() -> None:
    text = "Db minor, F sharp Major, Bb maj, A min, E♭-minor and then in the key of g flat"
    assert key_mentions(text) == [
        KeyMention("Db", "C#", "minor"),
        KeyMention("F sharp", "F#", "major"),
        KeyMention("Bb", "A#", "major"),
        KeyMention("A", "A", "minor"),
        KeyMention("E♭", "D#", "minor"),
        KeyMention("G flat", "F#", None),
    ]


def test_an_article_or_a_word_is_not_a_key() -> None:
    assert key_mentions("a minor key, a major-scale groove, Cmaj7 chords, A minute long") == []
    assert scale_mentions("a minor key, a major-scale groove") == ["minor", "major"]


def test_tempos_in_text() -> None:
    text = "at 140 BPM, 70-bpm half time, 90 beats per minute, bpm: 100, tempo of 85.5"
    assert tempo_mentions(text) == [140.0, 70.0, 90.0, 100.0, 85.5]
    assert mentions_tempo("a fast BPM") and not mentions_tempo("a dark beat at 140")


# -- the callers agree (each read these differently before music.py) ------------------------------

VOCABULARY = load_vocabulary(default_vocabulary_dir())


def test_adherence_reads_every_tempo_spelling_prompt_checking_reads() -> None:
    for prompt in ("Trap at 140 beats per minute", "Trap, tempo of 140", "Trap, 140-BPM"):
        assert requested(prompt, VOCABULARY).bpm == 140.0, prompt
        assert tempo_problems(prompt, 140.0) == [], prompt


def test_adherence_reads_every_key_spelling_prompt_checking_reads() -> None:
    for prompt in ("Trap in F sharp minor", "Trap in G-flat minor", "Trap in Gb Minor"):
        found = requested(prompt, VOCABULARY)
        assert (found.key, found.scale) == ("F#", "minor"), prompt
        assert key_problems(prompt, "F#", "minor") == [], prompt


def test_prompt_checking_reads_the_short_scale_names_adherence_reads() -> None:
    assert key_problems("Trap in Eb maj", "D#", "major") == []
    assert key_problems("Trap in Eb min", "D#", "major") == [
        "names a minor scale, the metadata says major"
    ]
    assert requested("Trap in Eb min", VOCABULARY).scale == "minor"


def test_an_estimate_that_is_not_a_key_scores_zero_instead_of_raising() -> None:
    # adherence's own pitch_class raised ValueError here, and the whole job's scoring with it.
    assert key_score("", "minor", "C", "minor") == 0.0
    assert key_score("unknown", "minor", "C", "minor") == 0.0
    assert key_score("C", "dorian", "C", "minor") == 0.0
    assert key_score("Eb", "Minor", "D#", "minor") == 1.0


def test_validation_reads_keys_as_music_does_and_refuses_the_rest() -> None:
    check = VALUE_CHECKS["key"]
    assert [check(k) for k in ("Eb", "F sharp", "g♭")] == ["D#", "F#", "F#"]
    with pytest.raises(ValueError, match="must be a pitch class"):
        check("H")
    assert VALUE_CHECKS["scale"]("min") == "minor"
    assert VALUE_CHECKS["tempo"]("109 BPM") == "109"


def test_one_list_of_value_facets_is_the_one_validation_checks() -> None:
    assert set(VALUE_CHECKS) == set(VALUE_FACETS) == {"tempo", "key", "scale"}


def test_review_shows_stored_values_in_the_one_spelling_and_showing_is_no_correction() -> None:
    def label(facet: str, value: str) -> dict[str, object]:
        return {"facet": facet, "tag": facet, "value": value, "present": True}

    labels = [label("key", "Eb"), label("scale", "Minor"), label("tempo", "109.0")]
    row = {"labels": [{**x, "source_kind": "model"} for x in labels]}
    shown = current_values(row)
    assert shown == {"key": "D#", "scale": "minor", "tempo": "109"}
    assert value_changes("s", shown, dict(shown)) == []
    unreadable = {"labels": [{**label("key", "unknown"), "source_kind": "model"}]}
    assert current_values(unreadable) == {"key": None}


def test_the_key_chart_gives_one_bar_to_a_key_however_it_is_spelt() -> None:
    assert chart_key_name("Eb", "minor") == chart_key_name("D#", "minor") == "D# minor"
    assert chart_key_name("G minor", "minor") == "G minor"
    assert fifths_position("G♭ major")[:2] == fifths_position("F# major")[:2] == (6, 0)
