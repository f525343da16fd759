"""Saved queues: a list of segments chosen elsewhere (a selection on the Explore map, search
results) that the Review and Bulk relabel pages open by a short id in their URL."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from curator.errors import CuratorError
from curator.files import read_json_object, write_json_atomically
from curator.project import Project

QUEUES_FOLDER = "queues"
QUEUE_ID = re.compile(r"[0-9a-f]{12}")


@dataclass(frozen=True)
class SavedQueue:
    """Segments in the order they were chosen, with where they came from, in words."""

    queue_id: str
    segments: tuple[str, ...]
    origin: str
    actor: str
    saved_at: str


def queues_folder(project: Project) -> Path:
    return project.root / QUEUES_FOLDER


def save_queue(project: Project, segments: Sequence[str], origin: str, actor: str) -> SavedQueue:
    """Keep `segments` as a queue; returns it with its id. The id is the hash of the segment
    list, so saving the same choice twice gives the same queue (one file, no duplicates)."""
    chosen = tuple(dict.fromkeys(segments))
    if not chosen:
        raise CuratorError("a queue needs at least one segment")
    queue_id = hashlib.sha256("\n".join(chosen).encode()).hexdigest()[:12]
    path = queues_folder(project) / f"{queue_id}.json"
    saved = SavedQueue(
        queue_id, chosen, origin, actor, datetime.now(UTC).isoformat(timespec="seconds")
    )
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(
            path,
            {
                "segments": list(chosen),
                "origin": origin,
                "actor": actor,
                "saved_at": saved.saved_at,
            },
        )
    return saved


def load_queue(project: Project, queue_id: str) -> SavedQueue:
    """The saved queue `queue_id`; CuratorError when there is none (a mistyped or old link)."""
    path = queues_folder(project) / f"{queue_id}.json"
    found = read_json_object(path) if QUEUE_ID.fullmatch(queue_id) else None
    segments = (found or {}).get("segments")
    if (
        found is None
        or not isinstance(segments, list)
        or not all(isinstance(s, str) for s in segments)
    ):
        raise CuratorError(f"no saved queue {queue_id!r} in {queues_folder(project)}")
    return SavedQueue(
        queue_id,
        tuple(segments),
        str(found.get("origin", "")),
        str(found.get("actor", "")),
        str(found.get("saved_at", "")),
    )
