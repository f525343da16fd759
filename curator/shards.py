"""Parquet shards: how a run's results travel from the process that made them to the catalogue.

A worker never opens the catalogue while it computes (DESIGN.md decision 2). It writes each
group of results as a shard folder of Parquet files, and a manifest last, so a shard without
a manifest is unfinished and ignored. The catalogue merges finished shards in one short
transaction each, and deletes them after.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curator import storage

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Shard:
    folder: Path
    run_id: int
    tables: tuple[str, ...]
    segment_ids: tuple[str, ...]


def write_shard(
    run_folder: Path,
    number: int,
    run_id: int,
    tables: Mapping[str, Mapping[str, np.ndarray]],
    segment_ids: list[str],
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
    manifest = {"run_id": run_id, "tables": list(written), "segment_ids": segment_ids}
    (folder / f"{MANIFEST}.tmp").write_text(json.dumps(manifest))
    (folder / f"{MANIFEST}.tmp").rename(folder / MANIFEST)
    return Shard(folder, run_id, written, tuple(segment_ids))


def _rows(columns: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(columns.values()))) if columns else 0


def finished_shards(runs_dir: Path) -> list[Shard]:
    """Every finished, not yet merged shard under the project's run folders, in order."""
    found = []
    for manifest in sorted(runs_dir.glob(f"*/shard-*/{MANIFEST}")):
        data = json.loads(manifest.read_text())
        found.append(
            Shard(
                manifest.parent,
                int(data["run_id"]),
                tuple(data["tables"]),
                tuple(data["segment_ids"]),
            )
        )
    return found


def next_shard_number(run_folder: Path) -> int:
    numbers = [int(p.name.split("-")[1]) for p in run_folder.glob("shard-*")]
    return max(numbers, default=0) + 1


def discard(shard: Shard) -> None:
    shutil.rmtree(shard.folder, ignore_errors=True)
