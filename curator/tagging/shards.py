"""Parquet shards: how a run's results travel from the process that made them to the catalogue.

A worker never opens the catalogue while it computes (DESIGN.md decision 2). It writes each
group of results as a shard folder of Parquet files, and a manifest last, so a shard without
a manifest is unfinished (its writer was killed) and is removed, never merged. The catalogue
merges finished shards in one short transaction each, and deletes them after. A shard that
cannot be merged at all is moved to `runs/quarantined/` with a file saying why.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curator import storage
from curator.errors import CuratorError

MANIFEST = "manifest.json"
QUARANTINE = "quarantined"
REASON = "reason.txt"


class ShardError(CuratorError):
    """A shard folder that cannot be read as a shard."""


@dataclass(frozen=True)
class Shard:
    folder: Path
    run_id: int
    tables: tuple[str, ...]
    segment_ids: tuple[str, ...]
    plugin: str = ""  # empty in shards written before the manifest named it


def write_shard(
    run_folder: Path,
    number: int,
    run_id: int,
    tables: Mapping[str, Mapping[str, np.ndarray]],
    segment_ids: list[str],
    plugin: str = "",
) -> Shard:
    """Write `tables` (name -> column -> values) as shard `number` of a run, manifest last."""
    folder = run_folder / f"shard-{number:06d}"
    if folder.exists():
        shutil.rmtree(folder)  # an unfinished earlier attempt at the same shard
    folder.mkdir(parents=True)
    written = tuple(
        name
        for name, columns in tables.items()
        if _rows(columns) and storage.write_parquet(folder / f"{name}.parquet", columns)
    )
    manifest = {
        "run_id": run_id,
        "plugin": plugin,
        "tables": list(written),
        "segment_ids": segment_ids,
    }
    (folder / f"{MANIFEST}.tmp").write_text(json.dumps(manifest))
    (folder / f"{MANIFEST}.tmp").rename(folder / MANIFEST)
    return Shard(folder, run_id, written, tuple(segment_ids), plugin)


def _rows(columns: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(columns.values()))) if columns else 0


def read_shard(folder: Path) -> Shard:
    """The finished shard in `folder`, from its manifest."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return Shard(
            folder,
            int(data["run_id"]),
            tuple(data["tables"]),
            tuple(data["segment_ids"]),
            str(data.get("plugin") or ""),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ShardError(f"unreadable manifest ({type(exc).__name__}: {exc})") from exc


def run_folders(runs_dir: Path) -> dict[int, Path]:
    """Each run's shard folder (runs/000042), by run id."""
    if not runs_dir.is_dir():
        return {}
    return {int(p.name): p for p in sorted(runs_dir.iterdir()) if p.name.isdigit() and p.is_dir()}


def finished_shard_folders(run_folder: Path) -> list[Path]:
    return sorted(p.parent for p in run_folder.glob(f"shard-*/{MANIFEST}"))


def unfinished_shard_folders(run_folder: Path) -> list[Path]:
    """Shard folders without a manifest: their writer stopped before it finished them."""
    return sorted(p for p in run_folder.glob("shard-*") if not (p / MANIFEST).exists())


def next_shard_number(run_folder: Path) -> int:
    numbers = [int(p.name.split("-")[1]) for p in run_folder.glob("shard-*")]
    return max(numbers, default=0) + 1


def discard(shard: Shard) -> None:
    remove_folder(shard.folder)


def remove_folder(folder: Path) -> None:
    # The manifest goes first: a removal cut short leaves an unfinished shard, which the
    # next run deletes, never a finished shard with files missing.
    (folder / MANIFEST).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)


def remove_if_empty(folder: Path) -> None:
    # Not empty (another shard is on its way) or already gone: both fine.
    with contextlib.suppress(OSError):
        folder.rmdir()


def quarantine(folder: Path, runs_dir: Path, reason: str) -> Path:
    """Move a shard that cannot be merged out of the way, with `reason.txt`; returns where."""
    target = runs_dir / QUARANTINE / f"{folder.parent.name}-{folder.name}"
    suffix = 1
    while target.exists():
        suffix += 1
        target = target.with_name(f"{folder.parent.name}-{folder.name}-{suffix}")
    target.parent.mkdir(parents=True, exist_ok=True)
    folder.rename(target)
    (target / REASON).write_text(reason + "\n", encoding="utf-8")
    return target


def quarantined(runs_dir: Path) -> list[dict[str, str]]:
    """Each quarantined shard with the reason it could not be merged."""
    found = []
    for reason in sorted((runs_dir / QUARANTINE).glob(f"*/{REASON}")):
        text = reason.read_text(encoding="utf-8", errors="replace").strip()
        found.append({"shard": str(reason.parent), "reason": text})
    return found
