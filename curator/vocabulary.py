"""Vocabularies: per facet, the tags a curator uses, their synonyms and thresholds."""

from __future__ import annotations

import hashlib
import json
import shutil
import tomllib
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from curator.errors import SettingsError


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
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML ({exc})") from exc
    name = _required(path, data, "facet", str)
    threshold = float(data.get("threshold", 0.2))
    overrides = data.get("thresholds", {})
    tags = tuple(
        _tag(path, name, tag, synonyms, float(overrides.get(tag, threshold)))
        for tag, synonyms in _required(path, data, "tags", dict).items()
    )
    unknown = sorted(set(overrides) - {t.name for t in tags})
    if unknown:
        raise SettingsError(f"{path}: [thresholds] names unknown tag(s) {', '.join(unknown)}")
    return Facet(name, tags, threshold, int(data.get("top_k", 3)))


def _tag(path: Path, facet: str, name: str, synonyms: Any, threshold: float) -> Tag:
    if not isinstance(synonyms, list) or not all(isinstance(s, str) for s in synonyms):
        raise SettingsError(f"{path}: tag {name!r} must map to a list of synonyms (strings)")
    return Tag(facet, name, tuple(synonyms), threshold)


def _required(path: Path, data: dict[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise SettingsError(f"{path}: `{key}` is missing or not a {kind.__name__}")
    return value


def add_tag(folder: Path, facet: str, tag: str) -> None:
    """Add `tag` (no synonyms yet) to `facet`'s file, keeping the file's comments and order."""
    vocabulary = load_vocabulary(folder)
    known = vocabulary.facet(facet)
    if known.tag(tag):
        return
    path = next(p for p in sorted(folder.glob("*.toml")) if _load_facet(p).name == facet)
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index("[tags]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1  # after the last tag, before the blank line ahead of the next table
    lines.insert(end, f"{json.dumps(tag)} = []")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load_vocabulary(folder)  # the file must still parse
