"""One validation layer: every value entering the catalogue or a settings file is checked here."""

from __future__ import annotations

import dataclasses
import math
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from dataclasses import replace as replaced
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError

from curator import music
from curator.errors import InvalidInput, SettingsError
from curator.storage import HumanLabel

if TYPE_CHECKING:
    from curator.vocabulary import Vocabulary

# Long enough for "distorted 808 bass with slides", short enough for a prompt and a chart label.
TAG_MAX_CHARS = 64
# Half-time trap sits near 70 BPM and the fastest footwork near 170; outside 20-400 a
# number is a typo or a unit mix-up, not a tempo.
TEMPO_MIN, TEMPO_MAX = 20.0, 400.0
NOTE_MAX_CHARS = 2000
# A metadata file of 40k segments is a few tens of MB; anything far larger is not one.
MAX_INPUT_BYTES = 256 * 1024 * 1024

_DEVICE = re.compile(r"cpu|cuda(:\d+)?|auto")


# -- files -------------------------------------------------------------------------------------


def read_input_text(path: Path) -> str:
    """The UTF-8 text of a file a user named, or an error that says why it cannot be read.

    Only regular files are read (not /dev/zero, a FIFO or a folder), and at most
    MAX_INPUT_BYTES, so a wrong path can neither hang a command nor fill its memory.
    """
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput(f"{path}: not a regular file")
        with path.open("rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if len(data) > MAX_INPUT_BYTES:
        raise InvalidInput(f"{path}: larger than {MAX_INPUT_BYTES // 2**20} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text (byte {exc.start})") from exc


# -- catalogue values: each raises ValueError with the reason, callers add where -------------


def tag_name(value: Any, what: str = "a tag") -> str:
    """A tag (or facet, or synonym): one line of printable text, 1 to TAG_MAX_CHARS long."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text, got {_shown(value)}")
    name = value.strip()
    if not name:
        raise ValueError(f"{what} cannot be empty")
    if len(name) > TAG_MAX_CHARS:
        raise ValueError(f"{what} has at most {TAG_MAX_CHARS} characters, got {len(name)}")
    if not name.isprintable():
        raise ValueError(f"{what} must be one line of printable characters, got {_shown(name)}")
    return name


# Tempo, key and scale are read as curator.music reads them (its docstring has the spellings);
# these checks add the range and the refusal.


def tempo_text(value: Any) -> str:
    """A tempo in BPM as the catalogue stores it ("109", "92.5"): a finite number in range."""
    bpm = music.tempo_bpm(value)
    if bpm is None:
        raise ValueError(f"must be a number of BPM, got {_shown(value)}")
    if not (math.isfinite(bpm) and TEMPO_MIN <= bpm <= TEMPO_MAX):
        raise ValueError(f"must be {TEMPO_MIN:g}-{TEMPO_MAX:g} BPM, got {_shown(value)}")
    return f"{bpm:g}"


def key_name(value: Any) -> str:
    """One of the twelve pitch classes, spelt as music.NOTE_NAMES ("Gb", "f sharp" -> "F#")."""
    name = music.key_name(value)
    if name is None:
        raise ValueError(f"must be a pitch class such as C, F# or Bb, got {_shown(value)}")
    return name


def scale_name(value: Any) -> str:
    """One of music.SCALES, in lower case ("Minor", "min" -> "minor")."""
    name = music.scale_name(value)
    if name is None:
        raise ValueError(f"must be one of {', '.join(music.SCALES)}, got {_shown(value)}")
    return name


_CHECKS = {"tempo": tempo_text, "key": key_name, "scale": scale_name}
# One check for each of music.VALUE_FACETS, in its order.
VALUE_CHECKS: dict[str, Callable[[Any], str]] = {f: _CHECKS[f] for f in music.VALUE_FACETS}


def note_text(value: Any) -> str:
    """A curator's note on a segment: text of at most NOTE_MAX_CHARS characters."""
    if not isinstance(value, str):
        raise ValueError(f"a note must be text, got {_shown(value)}")
    if len(value) > NOTE_MAX_CHARS:
        raise ValueError(f"a note has at most {NOTE_MAX_CHARS} characters, got {len(value)}")
    return value.strip()


def _shown(value: Any) -> str:
    """`value` for an error line: its repr, cut short (a 10,000-character tag is one line)."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


# The same checks as types, for records read with pydantic (metadata files).
TagName = Annotated[str, PlainValidator(tag_name)]
Tempo = Annotated[str, PlainValidator(tempo_text)]
Key = Annotated[str, PlainValidator(key_name)]
Scale = Annotated[str, PlainValidator(scale_name)]


def pydantic_problem(exc: ValidationError) -> str:
    """The first error of `exc` as "field[0]: reason", one line."""
    error = exc.errors(include_url=False)[0]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] not in ("value_error", "missing", "extra_forbidden"):
        message += f", got {_shown(error['input'])}"
    return f"{where.lstrip('.') or 'record'}: {message}"


STRICT_RECORD = ConfigDict(strict=True, extra="allow", frozen=True)


def parsed[M: BaseModel](model: type[M], data: Any, where: str) -> M:
    """`data` read as `model`, or InvalidInput naming `where` (file and record) and the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        if error["type"] == "extra_forbidden" and len(error["loc"]) == 1:
            known = ", ".join(model.model_fields)
            raise InvalidInput(f"{where}: unknown key {error['loc'][0]} (known: {known})") from exc
        raise InvalidInput(f"{where}: {pydantic_problem(exc)}") from exc


# -- labels ------------------------------------------------------------------------------------


def checked_labels(vocabulary: Vocabulary, labels: Iterable[HumanLabel]) -> list[HumanLabel]:
    """`labels` with their names and values checked against the vocabulary and normalised.

    A tag must be in its facet's vocabulary (a curator adds a new one with
    `curator.vocabulary.add_tag` first); a tempo, key or scale label carries a valid value
    when present. Raises InvalidInput naming the segment, the facet and the reason.
    """
    return [_checked_label(vocabulary, label) for label in labels]


def _checked_label(vocabulary: Vocabulary, label: HumanLabel) -> HumanLabel:
    where = f"segment {_shown(label.segment_id)}, {_shown(label.facet)}"
    try:
        if not isinstance(label.segment_id, str) or not isinstance(label.present, bool):
            raise ValueError("a label needs a segment id (text) and present (true or false)")
        if label.facet in VALUE_CHECKS:
            return _checked_value_label(label)
        if label.value is not None:
            raise ValueError(f"a tag label carries no value, got {_shown(label.value)}")
        return replaced(label, tag=vocabulary_tag(vocabulary, label.facet, label.tag))
    except ValueError as exc:
        raise InvalidInput(f"{where}: {exc}") from exc


def _checked_value_label(label: HumanLabel) -> HumanLabel:
    if label.tag != label.facet:
        raise ValueError(f"a {label.facet} label's tag is {label.facet!r}, got {_shown(label.tag)}")
    if not label.present:
        if label.value is not None:
            raise ValueError("a rejected value carries no value")
        return label
    return replaced(label, value=VALUE_CHECKS[label.facet](label.value))


def known_facet(vocabulary: Vocabulary, facet: Any) -> None:
    """Raise ValueError unless `facet` is one of the vocabulary's facets."""
    if facet not in vocabulary.facet_names:
        known = ", ".join(vocabulary.facet_names)
        raise ValueError(f"no facet {_shown(facet)} in the vocabulary (known: {known})")


def vocabulary_tag(vocabulary: Vocabulary, facet: Any, tag: Any) -> str:
    """`tag` checked as a name and as a tag of `facet` in the vocabulary."""
    known_facet(vocabulary, facet)
    name = tag_name(tag)
    if vocabulary.facet(facet).tag(name) is None:
        raise ValueError(
            f"no tag {name!r} in the {facet} vocabulary (add it to the vocabulary first)"
        )
    return name


# -- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bounds:
    """What a setting's value may be beyond its type: a range for a number, choices for text.

    minimum / maximum are inclusive, `above` is exclusive; `pattern` is a regular
    expression the whole text must match, described by `choices` in the error.
    """

    minimum: float | None = None
    above: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None

    def problem(self, value: Any) -> str | None:
        """Why `value` is out of bounds, or None."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            return self._range_problem(value)
        if isinstance(value, str) and self.pattern is not None:
            return None if self.pattern.fullmatch(value) else self._choice_problem(value)
        if isinstance(value, str) and self.choices and value not in self.choices:
            return self._choice_problem(value)
        return None

    def _range_problem(self, value: float) -> str | None:
        low, high = self.minimum, self.maximum
        if low is not None and high is not None and not low <= value <= high:
            return f"must be between {low:g} and {high:g}, got {value!r}"
        if self.minimum is not None and value < self.minimum:
            return f"must be at least {self.minimum:g}, got {value!r}"
        if self.above is not None and value <= self.above:
            return f"must be more than {self.above:g}, got {value!r}"
        if self.maximum is not None and value > self.maximum:
            return f"must be at most {self.maximum:g}, got {value!r}"
        return None

    def _choice_problem(self, value: str) -> str:
        return f"must be one of {', '.join(self.choices)}, got {_shown(value)}"


def setting(default: Any, **bounds: Any) -> Any:
    """A settings dataclass field with bounds, e.g. `batch_size: int = setting(8, minimum=1)`.

    `settings_from_table` and `curator.toml`'s loader check them with the field's type.
    """
    return field(default=default, metadata={"bounds": Bounds(**bounds)})


def device_setting(default: str, *, empty: bool = False) -> Any:
    """A `device` field: cpu, cuda, cuda:N or auto (or empty, meaning the run's device)."""
    choices = ("cpu", "cuda", "cuda:N", "auto", *(("",) if empty else ()))
    pattern = re.compile(f"{_DEVICE.pattern}{'|' if empty else ''}")
    return setting(default, choices=choices, pattern=pattern)


def bounds_problem(settings_field: Any, value: Any) -> str | None:
    """Why `value` is outside the bounds declared on a dataclass field, or None."""
    bounds = settings_field.metadata.get("bounds")
    return bounds.problem(value) if bounds is not None else None


def check_bounds(settings: Any, label: Callable[[str], str]) -> None:
    """Raise SettingsError naming the first field of a settings dataclass out of its bounds.

    `label(key)` names the setting as its file does, e.g. "[plugins.clap] batch_windows".
    """
    for settings_field in dataclasses.fields(settings):
        problem = bounds_problem(settings_field, getattr(settings, settings_field.name))
        if problem:
            raise SettingsError(f"{label(settings_field.name)} {problem}")
