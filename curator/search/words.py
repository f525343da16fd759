"""Search by words without a text tower: words matched to vocabulary tags and synonyms,
segments ranked by what taggers and people say of those tags."""

from __future__ import annotations

import re
from dataclasses import dataclass

from curator.errors import CuratorError
from curator.project import Project
from curator.storage.search import TagEvidence, tag_evidence
from curator.vocabulary import Vocabulary

Pair = tuple[str, str]  # (facet, tag)


def words(text: str) -> tuple[str, ...]:
    """Lower-case words, hyphens and punctuation as spaces ("Hi-Hats" -> "hi", "hat").

    A trailing "s" is dropped from words over three letters on both sides of a match, so
    "snares" finds "snare" and "808s" finds "808".
    """
    found = re.findall(r"[a-z0-9&]+", text.lower())
    return tuple(w[:-1] if len(w) > 3 and w.endswith("s") else w for w in found)


def phrase_table(vocabulary: Vocabulary) -> dict[tuple[str, ...], list[Pair]]:
    """Each tag's name and synonyms, as words, to the tags they name."""
    table: dict[tuple[str, ...], list[Pair]] = {}
    for tag in vocabulary.tags():
        for phrase in tag.phrases:
            pairs = table.setdefault(words(phrase), [])
            if (tag.facet, tag.name) not in pairs:
                pairs.append((tag.facet, tag.name))
    table.pop((), None)
    return table


def match_tags(text: str, vocabulary: Vocabulary) -> list[Pair]:
    """The tags `text` names, in the order it names them; the longest phrase wins at each
    word ("hi-hat rolls" is one tag, not "hi-hat" and a stray "rolls")."""
    table = phrase_table(vocabulary)
    longest = max((len(p) for p in table), default=0)
    said, found, at = words(text), [], 0
    while at < len(said):
        for size in range(min(longest, len(said) - at), 0, -1):
            pairs = table.get(said[at : at + size])
            if pairs:
                found += [p for p in pairs if p not in found]
                at += size
                break
        else:
            at += 1
    if not found:
        known = ", ".join(sorted({t.name for t in vocabulary.tags()}))
        raise CuratorError(f"no tag matches {text!r}; known tags: {known}")
    return found


@dataclass
class TagRanking:
    """Segments by how strongly the matched tags apply, and what the ranking rested on."""

    pairs: list[Pair]
    scores: dict[str, float]
    taggers: list[str]

    def how(self) -> str:
        names = ", ".join(tag for _, tag in self.pairs)
        by = f"{', '.join(self.taggers)} scores" if self.taggers else "no tagger scores"
        return f"tags {names} ({by}; a person's label wins)"


def rank_by_tags(project: Project, text: str) -> TagRanking:
    """Each usable segment's mean, over the tags `text` names, of 1 (a person labelled the
    tag present), 0 (absent), or its rank among the tag's scores (0 lowest, under 1 highest).

    Ranks rather than raw scores, because taggers score on different scales (CLAP cosines
    near 0.2, probabilities up to 1) and one query may name tags scored by several. A
    segment nothing is known of for any named tag is left out.
    """
    pairs = match_tags(text, project.vocabulary())
    evidence = [tag_evidence(project.catalog, facet, tag) for facet, tag in pairs]
    if not any(e.scores or e.human for e in evidence):
        names = ", ".join(tag for _, tag in pairs)
        raise CuratorError(
            f"no segment has a score or a label for {names} yet: "
            "run `curator tag --plugin trap` first"
        )
    values = [tag_values(e) for e in evidence]
    segments = sorted(set().union(*values))
    totals = {s: sum(v.get(s, 0.0) for v in values) / len(values) for s in segments}
    taggers = sorted({e.plugin for e in evidence if e.plugin and e.scores})
    return TagRanking(pairs, totals, taggers)


def tag_values(evidence: TagEvidence) -> dict[str, float]:
    """Per segment: a person's label as 1 or 0, else the score's rank in [0, 1)."""
    from scipy.stats import rankdata

    ids = list(evidence.scores)
    # Ties share their average rank, so equal scores get equal values.
    ranks = rankdata([evidence.scores[s] for s in ids], method="average") - 1
    values = {s: float(r / len(ids)) for s, r in zip(ids, ranks, strict=True)}
    values.update({s: 1.0 if present else 0.0 for s, present in evidence.human.items()})
    return values
