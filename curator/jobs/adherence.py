"""Per-tag adherence: does generated audio have the tempo, key and tags its prompt asked for?

The project's own analyzer (tempo, key, scale) and taggers are run on each generated clip
and compared with what its prompt requested: BPM within 4 % (or within 4 % of twice or
half of it, an octave error), the key exactly and MIREX-weighted, and each requested tag's
score against the tagger's threshold. Comparing a base model's clips with a fine-tune's
for the same prompts and seeds shows which tags the fine-tune learned.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from curator.api import Analyzer, SegmentAudio, Tagger
from curator.catalogue.audio import decode_window
from curator.errors import CuratorError
from curator.files import read_json_object, write_json_atomically
from curator.jobs.manage import Job
from curator.music import key_mentions, pitch_class, scale_name, tempo_mentions
from curator.project import Project
from curator.registry import Registry, load_registry
from curator.tagging.runs import plugin_context
from curator.vocabulary import Vocabulary

TEMPO_TOLERANCE = 0.04
OCTAVE_FACTORS = (2.0, 0.5)
DEFAULT_ANALYZER = "essentia"
CACHE_FILE = "adherence.json"
# MIREX key weights (as mir_eval.key.weighted_score computes them).
SAME, FIFTH, RELATIVE, PARALLEL = 1.0, 0.5, 0.3, 0.2


@dataclass(frozen=True)
class Request:
    """What one prompt asked for, read from its words."""

    prompt: str
    tags: tuple[tuple[str, str], ...] = ()  # (facet, tag)
    bpm: float | None = None
    key: str | None = None
    scale: str | None = None


@dataclass(frozen=True)
class TagScore:
    """One requested tag on one clip, as one tagger scored it."""

    facet: str
    tag: str
    plugin: str
    score: float
    threshold: float

    @property
    def hit(self) -> bool:
        return self.score >= self.threshold


@dataclass
class ClipAdherence:
    """One generated clip against its prompt."""

    file: str
    request: Request
    tempo: float | None = None
    tempo_match: str | None = None  # exact | octave | miss; None when no BPM was asked for
    key: str | None = None
    scale: str | None = None
    key_score: float | None = None  # MIREX weight; None when no key was asked for
    tags: list[TagScore] = field(default_factory=list)


@dataclass
class JobAdherence:
    """Every clip of one generation job, with the plugins used and what went wrong."""

    job_id: str
    label: str
    clips: list[ClipAdherence]
    plugins: list[str]
    errors: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """One row per measure (each tag, tempo, key): its mean and how many clips asked."""
        return summary_rows(self)


# -- what a prompt asks for --------------------------------------------------------------


def requested(prompt: str, vocabulary: Vocabulary) -> Request:
    """The vocabulary tags (or their synonyms), BPM and key a prompt names."""
    return Request(
        prompt=prompt,
        tags=_named_tags(prompt, vocabulary),
        bpm=_bpm(prompt),
        **_key(prompt),
    )


def _named_tags(prompt: str, vocabulary: Vocabulary) -> tuple[tuple[str, str], ...]:
    # Longest phrases first, each stretch of the prompt used once: "hi-hat rolls" is one
    # tag, not also "hi-hat".
    phrases = sorted(
        ((phrase, tag.facet, tag.name) for tag in vocabulary.tags() for phrase in tag.phrases),
        key=lambda item: -len(item[0]),
    )
    taken: list[tuple[int, int]] = []
    found: dict[tuple[str, str], int] = {}
    for phrase, facet, name in phrases:
        pattern = rf"(?<![\w-]){re.escape(phrase)}(?![\w-])"
        for match in re.finditer(pattern, prompt, re.IGNORECASE):
            span = match.span()
            if any(span[0] < end and start < span[1] for start, end in taken):
                continue
            taken.append(span)
            found.setdefault((facet, name), span[0])
    return tuple(sorted(found, key=found.__getitem__))


def _bpm(prompt: str) -> float | None:
    tempos = tempo_mentions(prompt)
    return tempos[0] if tempos else None


def _key(prompt: str) -> dict[str, str | None]:
    # A key without its scale ("in the key of F") cannot be scored, so it is not a request.
    mention = next((m for m in key_mentions(prompt) if m.scale), None)
    return {"key": mention.key, "scale": mention.scale} if mention else {"key": None, "scale": None}


def build_prompt(
    genre: str | None = None,
    mood: str | None = None,
    instruments: Sequence[str] = (),
    bpm: float | None = None,
    key: str | None = None,
    scale: str = "minor",
) -> str:
    """A prompt in the seed's style from picked tags, which `requested` reads back."""
    head = " ".join(part for part in (mood, genre, "beat") if part)
    text = f"{'An' if head[0].lower() in 'aeiou' else 'A'} {head}"
    if bpm:
        text += f" at {bpm:g} BPM"
    if key:
        text += f" in {key} {scale}"
    if instruments:
        names = list(instruments)
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        text += f", with {listed}"
    return text


# -- scoring -------------------------------------------------------------------------------


def tempo_match(estimate: float, target: float, tolerance: float = TEMPO_TOLERANCE) -> str:
    """ "exact" within `tolerance` of the target, "octave" within it of twice or half of it,
    else "miss" (MIREX Acc1 and Acc2)."""
    if abs(estimate - target) <= tolerance * target:
        return "exact"
    if any(abs(estimate - target * f) <= tolerance * target * f for f in OCTAVE_FACTORS):
        return "octave"
    return "miss"


def key_score(
    estimate_key: str,
    estimate_scale: str,
    target_key: str,
    target_scale: str,
    descending_fifths: bool = False,
) -> float:
    """MIREX weighted key score: 1 same key, 0.5 a fifth above (same mode), 0.3 relative
    major/minor, 0.2 parallel (same tonic, other mode), else 0.

    As mir_eval.key.weighted_score: only the fifth above counts, unless `descending_fifths`.
    Keys and scales are read as curator.music reads them ("Eb" is "D#"); an estimate that
    is not a key or scale at all scores 0.
    """
    estimate, target = pitch_class(estimate_key), pitch_class(target_key)
    modes = scale_name(estimate_scale), scale_name(target_scale)
    if estimate is None or target is None or modes[0] is None or modes[1] is None:
        return 0.0
    return _mirex_weight(estimate, modes[0], target, modes[1], descending_fifths)


def _mirex_weight(
    estimate: int, estimate_scale: str, target: int, target_scale: str, descending_fifths: bool
) -> float:
    same_mode = estimate_scale == target_scale
    if same_mode and estimate == target:
        return SAME
    fifth_above = (estimate - target) % 12 == 7
    fifth_below = descending_fifths and (target - estimate) % 12 == 7
    if same_mode and (fifth_above or fifth_below):
        return FIFTH
    if not same_mode and target_scale == "major" and (target - estimate) % 12 == 3:
        return RELATIVE
    if not same_mode and target_scale == "minor" and (estimate - target) % 12 == 3:
        return RELATIVE
    if not same_mode and estimate == target:
        return PARALLEL
    return 0.0


# -- running the project's plugins on generated audio ---------------------------------------


@dataclass
class Scorers:
    """The analyzer and taggers, set up for this project, and which could not be."""

    analyzer: Analyzer | None
    taggers: list[Tagger]
    errors: list[str]

    @property
    def names(self) -> list[str]:
        found = [self.analyzer.name] if self.analyzer else []
        return found + [t.name for t in self.taggers]


def project_taggers(project: Project) -> list[str]:
    """The taggers that have tagged this project, in the order they first ran."""
    runs = sorted(project.catalog.runs(), key=lambda run: run["id"])
    return list(dict.fromkeys(r["plugin"] for r in runs if r["kind"] == "tag"))


def scorers(
    project: Project,
    taggers: Sequence[str] | None = None,
    analyzer: str | None = DEFAULT_ANALYZER,
    registry: Registry | None = None,
) -> Scorers:
    """Load and set up the analyzer and taggers; one that fails is reported, not fatal."""
    registry = registry or load_registry()
    errors: list[str] = []
    found_analyzer = _set_up(project, registry, "analyzer", analyzer, errors) if analyzer else None
    names = project_taggers(project) if taggers is None else list(taggers)
    loaded = [_set_up(project, registry, "tagger", name, errors) for name in names]
    return Scorers(found_analyzer, [t for t in loaded if t is not None], errors)


def _set_up(project: Project, registry: Registry, kind: str, name: str, errors: list[str]) -> Any:
    try:
        plugin = getattr(registry, kind)(name)
        plugin.setup(plugin_context(project, name, registry))
    except Exception as exc:  # a plugin that cannot load is reported beside the scores
        errors.append(f"{kind} {name}: {type(exc).__name__}: {exc}")
        return None
    return plugin


def clip_adherence(path: Path, request: Request, scorers: Scorers) -> ClipAdherence:
    """Measure one clip with every scorer and compare with what its prompt asked for."""
    clip = ClipAdherence(file=str(path), request=request)
    if scorers.analyzer is not None:
        _measure(clip, path, scorers.analyzer, scorers.errors)
    for tagger in scorers.taggers:
        _score_tags(clip, path, tagger, scorers.errors)
    return clip


def _audio(path: Path, plugin: Analyzer | Tagger) -> SegmentAudio:
    seconds = sf.info(str(path)).duration
    audio = decode_window(path, 0.0, seconds, plugin.sample_rate, plugin.channels)
    return SegmentAudio(path.stem, audio, plugin.sample_rate)


def _measure(clip: ClipAdherence, path: Path, analyzer: Analyzer, errors: list[str]) -> None:
    try:
        (measured,) = analyzer.analyze([_audio(path, analyzer)])
    except Exception as exc:
        errors.append(f"{analyzer.name} on {path.name}: {type(exc).__name__}: {exc}")
        return
    values = {m.name: m for m in measured}
    request = clip.request
    if "tempo" in values and values["tempo"].value:
        clip.tempo = float(values["tempo"].value)
        if request.bpm:
            clip.tempo_match = tempo_match(clip.tempo, request.bpm)
    elif request.bpm:
        clip.tempo_match = "miss"
    if "key" in values and "scale" in values:
        clip.key, clip.scale = values["key"].text, values["scale"].text
    if request.key and request.scale:
        clip.key_score = (
            key_score(clip.key, clip.scale, request.key, request.scale)
            if clip.key is not None and clip.scale is not None
            else 0.0
        )


def _score_tags(clip: ClipAdherence, path: Path, tagger: Tagger, errors: list[str]) -> None:
    wanted = [pair for pair in clip.request.tags if pair in set(tagger.tag_order())]
    if not wanted:
        return
    try:
        (result,) = tagger.tag([_audio(path, tagger)])
    except Exception as exc:
        errors.append(f"{tagger.name} on {path.name}: {type(exc).__name__}: {exc}")
        return
    for facet, tag in wanted:
        score = result.scores.get(facet, {}).get(tag)
        if score is not None and np.isfinite(score):
            threshold = tagger.label_threshold(facet, tag)
            clip.tags.append(TagScore(facet, tag, tagger.name, float(score), threshold))


# -- jobs -----------------------------------------------------------------------------------


def clip_prompts(job: Job) -> list[tuple[Path, str]]:
    """(audio file, its prompt) of a generation job, from the JSON beside each file."""
    found = []
    for path in job.audio_files():
        record = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        found.append((path, str(record.get("prompt", ""))))
    return found


def job_adherence(
    project: Project,
    job: Job,
    taggers: Sequence[str] | None = None,
    analyzer: str | None = DEFAULT_ANALYZER,
    registry: Registry | None = None,
    ready: Scorers | None = None,
) -> JobAdherence:
    """Adherence of every clip a succeeded generation job wrote (kept in its folder)."""
    if job.kind != "generate" or job.status != "succeeded":
        raise CuratorError(
            f"job {job.id} is a {job.status} {job.kind} job; adherence needs a succeeded "
            "generate job"
        )
    ready = ready or scorers(project, taggers, analyzer, registry)
    vocabulary = project.vocabulary()
    clips = [
        clip_adherence(path, requested(prompt, vocabulary), ready)
        for path, prompt in clip_prompts(job)
    ]
    found = JobAdherence(job.id, job.label, clips, ready.names, list(ready.errors))
    save(found, job.folder / CACHE_FILE)
    return found


def save(adherence: JobAdherence, path: Path) -> None:
    write_json_atomically(path, asdict(adherence))


def load(path: Path) -> JobAdherence | None:
    """A job's adherence as last computed, or None."""
    raw = read_json_object(path)
    if raw is None:
        return None
    clips = [
        ClipAdherence(
            **{
                **clip,
                "request": Request(
                    **{**clip["request"], "tags": tuple(map(tuple, clip["request"]["tags"]))}
                ),
                "tags": [TagScore(**tag) for tag in clip["tags"]],
            }
        )
        for clip in raw["clips"]
    ]
    return JobAdherence(raw["job_id"], raw["label"], clips, raw["plugins"], raw["errors"])


# -- summaries and charts -----------------------------------------------------------------------


def summary_rows(adherence: JobAdherence) -> list[dict[str, Any]]:
    """Per measure: tempo (share within 4 %, octave errors allowed), key (mean MIREX score)
    and every requested tag (mean score and share of clips reaching the threshold)."""
    rows = [*_tempo_rows(adherence), *_key_rows(adherence), *_tag_rows(adherence)]
    for row in rows:
        row.update(job=adherence.job_id, label=adherence.label)
    return rows


def _tempo_rows(adherence: JobAdherence) -> list[dict[str, Any]]:
    matches = [c.tempo_match for c in adherence.clips if c.tempo_match is not None]
    if not matches:
        return []
    exact = sum(m == "exact" for m in matches) / len(matches)
    within = sum(m != "miss" for m in matches) / len(matches)
    return [
        {
            "measure": "tempo",
            "facet": "tempo",
            "value": within,
            "exact": exact,
            "clips": len(matches),
        }
    ]


def _key_rows(adherence: JobAdherence) -> list[dict[str, Any]]:
    scores = [c.key_score for c in adherence.clips if c.key_score is not None]
    if not scores:
        return []
    exact = sum(s == SAME for s in scores) / len(scores)
    return [
        {
            "measure": "key",
            "facet": "key",
            "value": float(np.mean(scores)),
            "exact": exact,
            "clips": len(scores),
        }
    ]


def _tag_rows(adherence: JobAdherence) -> list[dict[str, Any]]:
    grouped: dict[tuple[str, str, str], list[TagScore]] = {}
    for clip in adherence.clips:
        for score in clip.tags:
            grouped.setdefault((score.facet, score.tag, score.plugin), []).append(score)
    return [
        {
            "measure": f"{tag} ({plugin})",
            "facet": facet,
            "value": sum(s.hit for s in scores) / len(scores),
            "mean_score": float(np.mean([s.score for s in scores])),
            "clips": len(scores),
        }
        for (facet, tag, plugin), scores in grouped.items()
    ]


def comparison_rows(adherences: Iterable[JobAdherence]) -> list[dict[str, Any]]:
    """Every job's summary rows, for a table or chart of base against fine-tuned."""
    return [row for adherence in adherences for row in adherence.rows()]


def as_json(adherence: JobAdherence) -> dict[str, Any]:
    """The whole result, clips and summary, as plain JSON values."""
    return {**asdict(adherence), "summary": adherence.rows()}


def describe_request(request: Request) -> str:
    parts = [f"{facet}: {tag}" for facet, tag in request.tags]
    if request.bpm:
        parts.append(f"{request.bpm:g} BPM")
    if request.key:
        parts.append(f"{request.key} {request.scale}")
    return ", ".join(parts) or "nothing the project measures"
