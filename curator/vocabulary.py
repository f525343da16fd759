"""Vocabularies: per facet, the tags a curator uses, their synonyms and thresholds."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from curator.errors import InvalidInput, SettingsError
from curator.settings import read_toml
from curator.validation import VALUE_CHECKS, TagName, parsed, read_input_text, tag_name

# A tag applies when its score reaches the threshold: a cosine similarity (CLAP) or a
# probability (learned, musicnn), so the useful range is 0 to 1.
Threshold = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class FacetFile(BaseModel):
    """What one vocabulary file may hold; any other key is refused, as in curator.toml."""

    model_config = ConfigDict(strict=True, extra="forbid")

    facet: TagName
    threshold: Threshold = 0.2
    top_k: Annotated[int, Field(ge=1)] = 3
    tags: dict[TagName, list[TagName]]
    thresholds: dict[str, Threshold] = {}


@dataclass(frozen=True)
class Tag:
    facet: str
    name: str
    synonyms: tuple[str, ...]
    threshold: float

    @property
    def phrases(self) -> tuple[str, ...]:
        """The tag and its synonyms: what a text encoder embeds for it."""
        return (self.name, *self.synonyms)


@dataclass(frozen=True)
class Facet:
    name: str
    tags: tuple[Tag, ...]
    threshold: float
    top_k: int

    def tag(self, name: str) -> Tag | None:
        return next((t for t in self.tags if t.name == name), None)


@dataclass(frozen=True)
class Vocabulary:
    """All facets of a project; `fingerprint` changes with any tag, synonym or threshold."""

    facets: tuple[Facet, ...]

    def facet(self, name: str) -> Facet:
        for facet in self.facets:
            if facet.name == name:
                return facet
        raise KeyError(f"no facet named {name!r}")

    @property
    def facet_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.facets)

    def tags(self) -> list[Tag]:
        return [tag for facet in self.facets for tag in facet.tags]

    def fingerprint(self) -> str:
        canonical = json.dumps([asdict(f) for f in self.facets], sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def default_vocabulary_dir() -> Path:
    """The trap/rap/R&B vocabulary shipped with Curator."""
    return Path(str(resources.files("curator") / "vocabularies"))


def copy_default_vocabulary(target: Path) -> None:
    """Give a new project its own editable copy of the default vocabulary."""
    target.mkdir(parents=True, exist_ok=True)
    for source in sorted(default_vocabulary_dir().glob("*.toml")):
        if not (target / source.name).exists():
            shutil.copyfile(source, target / source.name)


def load_vocabulary(folder: Path) -> Vocabulary:
    """Read every `*.toml` in `folder`, one facet each; errors name the file and the key."""
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise SettingsError(f"{folder}: no vocabulary files (*.toml) here")
    facets = tuple(_load_facet(path) for path in files)
    names = [f.name for f in facets]
    if len(set(names)) != len(names):
        raise SettingsError(f"{folder}: two files define the same facet ({', '.join(names)})")
    return Vocabulary(facets)


def _load_facet(path: Path) -> Facet:
    try:
        data = parsed(FacetFile, read_toml(path), str(path))
    except InvalidInput as exc:
        raise SettingsError(str(exc)) from exc
    if data.facet in VALUE_CHECKS:
        raise SettingsError(f"{path}: facet {data.facet!r} is taken by the tempo/key/scale values")
    unknown = sorted(set(data.thresholds) - set(data.tags))
    if unknown:
        raise SettingsError(f"{path}: [thresholds] names unknown tag(s) {', '.join(unknown)}")
    tags = tuple(
        Tag(data.facet, name, tuple(synonyms), data.thresholds.get(name, data.threshold))
        for name, synonyms in data.tags.items()
    )
    return Facet(data.facet, tags, data.threshold, data.top_k)


def add_tag(folder: Path, facet: str, tag: str) -> str:
    """Add `tag` (no synonyms yet) to `facet`'s file, keeping the file's comments and order.

    The tag is checked like any other (one line, at most 64 characters) and returned as
    stored; the file is written only once its new text parses as a vocabulary.
    """
    try:
        tag = tag_name(tag)
        known = load_vocabulary(folder).facet(facet)
    except (ValueError, KeyError) as exc:
        reason = exc.args[0]
        raise InvalidInput(f"{folder}: cannot add a tag to {facet!r}: {reason}") from None
    if known.tag(tag):
        return tag
    path = next(p for p in sorted(folder.glob("*.toml")) if _load_facet(p).name == facet)
    text = _with_tag_line(path, read_input_text(path), tag)
    checked = path.with_name(f".{path.name}.new")
    checked.write_text(text, encoding="utf-8")
    try:
        _load_facet(checked)
    finally:
        checked.unlink()
    path.write_text(text, encoding="utf-8")
    return tag


def _with_tag_line(path: Path, text: str, tag: str) -> str:
    lines = text.splitlines()
    if "[tags]" not in lines:
        raise SettingsError(f"{path}: no `[tags]` line to add {tag!r} under; add it by hand")
    start = lines.index("[tags]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1  # after the last tag, before the blank line ahead of the next table
    # Not ASCII-escaped: JSON escapes a character outside the BMP as a surrogate pair,
    # which TOML refuses.
    lines.insert(end, f"{json.dumps(tag, ensure_ascii=False)} = []")
    return "\n".join(lines) + "\n"
