"""The `template` PromptWriter: varied natural sentences from tags, tempo and key."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from curator.api import PluginContext, PromptWriter

from .settings import TemplateSettings

# What a prompt calls the piece; a genre phrase already ending in one gets no second one.
NOUNS = ("beat", "instrumental", "track", "beat")
_HEAD_WORDS = {"beat", "beats", "instrumental", "track", "music", "song"}
USING = ("using", "with", "featuring", "built on", "driven by", "layered with")
FEEL = ("mood", "feel", "vibe", "atmosphere")
# Words read with a vowel sound although spelled otherwise, and the reverse.
_AN = {"r&b", "rnb", "edm", "808", "8", "11", "18", "hour", "mc", "lfo", "fm", "sfx"}
_A = {"uk", "one", "european", "unique", "university", "user"}


@dataclass(frozen=True)
class Words:
    """The parts of one prompt, each already worded; an empty string is a missing part."""

    moods: str
    genre: str
    noun: str
    instruments: str
    tempo: str  # "109 BPM"
    key: str  # "G minor", "G", or "a minor key" when only the scale is known


class TemplateWriter(PromptWriter):
    """Writes prompts like the seed's ("A melancholic and love-inspired rap with soul beat
    at 109 BPM in G minor, using plucked guitar, synth bells, and movie sample.") in several
    sentence patterns, naming tags by their name or a vocabulary synonym. The same metadata
    and seed always give the same prompt."""

    name = "template"
    version = "1"

    def setup(self, context: PluginContext) -> None:
        self.context = context
        self.settings = TemplateSettings.from_mapping(context.settings)
        vocabulary = context.vocabulary
        # (facet, tag) -> its name and synonyms, looked up for every tag of every segment.
        self.phrases = (
            {(t.facet, t.name): t.phrases for t in vocabulary.tags()} if vocabulary else {}
        )

    def settings_for_run(self) -> dict[str, Any]:
        return {"synonym_rate": self._settings().synonym_rate}

    def write(self, metadata: Mapping[str, Any], seed: int) -> str:
        rng = random.Random(seed)
        words = self._words(metadata, rng)
        pattern = rng.choice(PATTERNS)
        return _sentence(pattern(words, rng))

    def _settings(self) -> TemplateSettings:
        return getattr(self, "settings", None) or TemplateSettings()

    def _words(self, metadata: Mapping[str, Any], rng: random.Random) -> Words:
        genres = [_without_head_word(g) for g in self._named(metadata, "genres", rng)]
        genre = _and_list([g for g in genres if g])
        return Words(
            moods=_and_list(self._named(metadata, "moods", rng)),
            genre=genre,
            noun=rng.choice(NOUNS),
            instruments=_and_list(self._named(metadata, "instruments", rng), oxford=True),
            tempo=_tempo(metadata.get("tempo")),
            key=_key(metadata.get("key"), metadata.get("scale")),
        )

    def _named(self, metadata: Mapping[str, Any], facet: str, rng: random.Random) -> list[str]:
        """The facet's tags in a shuffled order, each by its name or a synonym."""
        tags = list(metadata.get(f"{facet}_tags") or [])
        rng.shuffle(tags)
        rate = self._settings().synonym_rate
        named = []
        for tag in tags:
            phrases = getattr(self, "phrases", {}).get((facet, tag), (str(tag),))
            use_synonym = len(phrases) > 1 and rng.random() < rate
            named.append(rng.choice(phrases[1:]) if use_synonym else phrases[0])
        return named


# -- wording ------------------------------------------------------------------------------------


def _tempo(tempo: Any) -> str:
    try:
        return f"{round(float(tempo))} BPM" if tempo is not None else ""
    except (TypeError, ValueError):
        return ""  # a tempo that is not a number is better left out than guessed


def _key(key: Any, scale: Any) -> str:
    if key:
        return f"{key} {scale}" if scale else str(key)
    return f"a {scale} key" if scale else ""


def _without_head_word(phrase: str) -> str:
    words = phrase.split()
    return " ".join(words[:-1]) if len(words) > 1 and words[-1] in _HEAD_WORDS else phrase


def _and_list(items: Sequence[str], oxford: bool = False) -> str:
    if len(items) < 3:
        return " and ".join(items)
    return ", ".join(items[:-1]) + ("," if oxford else "") + " and " + items[-1]


def article(phrase: str) -> str:
    """ "a" or "an" for the phrase that follows, by how its first word sounds."""
    first = phrase.split()[0].lower() if phrase.split() else ""
    if first in _AN or first.split("-")[0] in _AN:
        return "an"
    if first in _A or first.startswith(("uni", "use", "eu")):
        return "a"
    return "an" if first[:1] in "aeiou8" and first else "a"


def _phrase(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _with_article(*parts: str) -> str:
    body = _phrase(*parts)
    return f"{article(body)} {body}"


def _tail(*parts: str) -> str:
    """Comma-joined clauses, the empty ones left out, with a leading ", " if any."""
    kept = [p for p in parts if p]
    return ", " + ", ".join(kept) if kept else ""


def _at_tempo(words: Words, rng: random.Random) -> str:
    if not words.tempo:
        return ""
    return rng.choice(("at ", "at ", "at a tempo of ")) + words.tempo


def _in_key(words: Words, rng: random.Random) -> str:
    if not words.key:
        return ""
    if words.key.startswith("a "):
        return "in " + words.key
    return rng.choice(("in ", "in ", "in the key of ")) + words.key


def _using(words: Words, rng: random.Random) -> str:
    return f"{rng.choice(USING)} {words.instruments}" if words.instruments else ""


def _feel(words: Words, rng: random.Random) -> str:
    return f"{words.moods} {rng.choice(FEEL)}" if words.moods else ""


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text[:1].upper() + text[1:] + "."


# -- sentence patterns: each copes with any part missing ----------------------------------------


def _like_the_seed(words: Words, rng: random.Random) -> str:
    # "A melancholic rap with soul beat at 109 BPM in G minor, using plucked guitar, ..."
    subject = _with_article(words.moods, words.genre, words.noun)
    return _phrase(subject, _at_tempo(words, rng), _in_key(words, rng)) + _tail(_using(words, rng))


def _genre_first(words: Words, rng: random.Random) -> str:
    # "Trap beat with 808, hi-hats, and piano, dark and hazy vibe, 140 BPM, F minor"
    if not words.genre:
        return _mood_first(words, rng)
    head = _phrase(words.genre, words.noun)
    if words.instruments:
        head += f" {rng.choice(('with', 'featuring'))} {words.instruments}"
    return head + _tail(_feel(words, rng), words.tempo, words.key)


def _mood_first(words: Words, rng: random.Random) -> str:
    # "Dark and dreamy drill track featuring choir and 808, at 142 BPM, in C# minor"
    if not (words.moods or words.genre):
        return _like_the_seed(words, rng)
    head = _phrase(words.moods, words.genre, words.noun)
    if words.instruments:
        head += f" {rng.choice(('featuring', 'with', 'made with'))} {words.instruments}"
    return head + _tail(_at_tempo(words, rng), _in_key(words, rng))


def _instruments_first(words: Words, rng: random.Random) -> str:
    # "Piano, strings, and 808 over a melancholic trap beat at 140 BPM in A minor"
    if not words.instruments:
        return _like_the_seed(words, rng)
    ground = _with_article(words.moods, words.genre, words.noun)
    return _phrase(
        words.instruments,
        rng.choice(("over", "on top of", "carrying")),
        ground,
        _at_tempo(words, rng),
        _in_key(words, rng),
    )


def _tempo_and_key_first(words: Words, rng: random.Random) -> str:
    # "A boom bap instrumental in F minor at 90 BPM with a nostalgic feel, built on piano"
    subject = _with_article(words.genre, words.noun)
    feel = _feel(words, rng)
    return _phrase(
        subject,
        _in_key(words, rng),
        _at_tempo(words, rng),
        f"with {article(feel)} {feel}" if feel else "",
    ) + _tail(_using(words, rng))


PATTERNS: tuple[Callable[[Words, random.Random], str], ...] = (
    _like_the_seed,
    _genre_first,
    _mood_first,
    _instruments_first,
    _tempo_and_key_first,
)
