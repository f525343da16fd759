"""Fingerprints and duplicate groups round-trip through a real catalogue file."""

from __future__ import annotations

import numpy as np
import pytest

from curator.duplicates.groups import components, linked_segments, unit_of
from curator.project import Project
from curator.storage.duplicates import (
    DuplicateGroup,
    duplicate_groups,
    fingerprints,
    groups_of,
    replace_duplicate_groups,
    save_fingerprints,
)


def test_fingerprints_round_trip_and_replace(project: Project) -> None:
    catalog = project.catalog
    codes = np.array([0, 1, 2**32 - 1], dtype=np.uint32)
    save_fingerprints(catalog, "chromaprint-1", ["t1", "t2"], [3.0, 4.5], [codes, codes[:2]])
    save_fingerprints(catalog, "chromaprint-1", ["t2"], [5.0], [codes[::-1]])
    found = fingerprints(catalog, "chromaprint-1")
    assert found["t1"][0] == 3.0 and found["t1"][1].tolist() == [0, 1, 2**32 - 1]
    assert found["t2"][0] == 5.0 and found["t2"][1].tolist() == [2**32 - 1, 1, 0]
    assert fingerprints(catalog, "other-2") == {}


def test_groups_replace_per_level_and_read_back(project: Project) -> None:
    catalog = project.catalog
    same = DuplicateGroup("same", "a-0", ("a-0", "b-0"), {"score": 0.9})
    near = DuplicateGroup("near", "b-0", ("b-0", "c-1", "d-0"), {"pairs": [["b-0", "c-1"]]})
    replace_duplicate_groups(catalog, "same", [same])
    replace_duplicate_groups(catalog, "near", [near])
    assert duplicate_groups(catalog) == [near, same]  # largest first
    assert duplicate_groups(catalog, "same") == [same]
    assert groups_of(catalog, "b-0") == [near, same]
    assert groups_of(catalog, "z-0") == []
    # b-0 links both groups into one unit, named by its smallest member.
    assert linked_segments(catalog) == {s: "a-0" for s in ("a-0", "b-0", "c-1", "d-0")}
    replace_duplicate_groups(catalog, "near", [])
    assert duplicate_groups(catalog) == [same]
    with pytest.raises(ValueError, match="unknown duplicate level"):
        duplicate_groups(catalog, "similar")
    with pytest.raises(ValueError, match="at level 'same'"):
        replace_duplicate_groups(catalog, "same", [near])


def test_components_join_chains_and_drop_singletons() -> None:
    assert components([("b", "a"), ("c", "b"), ("x", "y"), ("q", "q")]) == [
        ("a", "b", "c"),
        ("x", "y"),
    ]
    assert unit_of([["d", "e"], ["e", "f"], ["g"]]) == {"d": "d", "e": "d", "f": "d"}
