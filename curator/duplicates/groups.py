"""Groups from matched pairs, and which segments are linked through any group.

A split or a rebalance must treat linked segments as one: if A is the same recording as B
and B shares a loop with C, A, B and C are one unit, so this joins the levels' groups into
connected components (union-find).
"""

from __future__ import annotations

from collections.abc import Iterable

from curator.storage import Catalog
from curator.storage.duplicates import duplicate_groups


def components(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, ...]]:
    """Connected components (of two or more) of the graph the pairs draw, members sorted,
    components in order of their first member."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving keeps the trees shallow
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    found: dict[str, list[str]] = {}
    for x in parent:
        found.setdefault(root(x), []).append(x)
    return sorted(tuple(sorted(m)) for m in found.values() if len(m) > 1)


def linked_segments(catalog: Catalog) -> dict[str, str]:
    """Each segment in any duplicate group -> its unit: the smallest segment id it is linked
    to through groups of either level. Segments in no group are absent."""
    return unit_of(g.members for g in duplicate_groups(catalog))


def unit_of(groups: Iterable[Iterable[str]]) -> dict[str, str]:
    """segment -> smallest id of its component, for groups given as member lists."""
    pairs = []
    for group in groups:
        members = list(group)
        pairs += [(members[0], m) for m in members[1:]]
    return {m: comp[0] for comp in components(pairs) for m in comp}
