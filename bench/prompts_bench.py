"""Prompt writing on a synthetic catalogue: 40,000 labelled segments, the template writer.

Run: .venv/bin/python bench/prompts_bench.py [--segments 40000]
Baseline, measured in the same run: the writer alone in a bare loop over the same metadata.
Prints how much reading metadata, checking and storing add, and what a re-run costs.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from synthetic import add_segments, model_label_columns

from curator.api import PluginContext
from curator.catalogue.metadata import segment_metadata
from curator.plugins import template_writer
from curator.plugins.template_writer import TemplateWriter
from curator.project import Project, init_project
from curator.prompts.writing import segment_seed, write_prompts
from curator.storage import RunRecord
from curator.testing import registry_of

TAGS_PER_SEGMENT = 6


def build(project: Project, segments: int, rng: np.random.Generator) -> None:
    """Segments with six model tags each (a long tail) and a tempo and key on most."""
    rows = add_segments(project, segments, 90.0, 30.0)
    tags = [(t.facet, t.name) for t in project.vocabulary().tags()]
    run_id = project.catalog.start_run(
        RunRecord("import", "bench", "1", {}, "bench", None, [], False, "bench")
    )
    ids = np.array([r.id for r in rows], dtype=object)
    weights = 1 / np.arange(1, len(tags) + 1) ** 1.1
    chosen = np.array(
        [
            rng.choice(len(tags), TAGS_PER_SEGMENT, replace=False, p=weights / weights.sum())
            for _ in ids
        ]
    )
    facets = [tags[c][0] for c in chosen.ravel()]
    names = [tags[c][1] for c in chosen.ravel()]
    values: list[str | None] = [None] * len(facets)
    segment_of = list(np.repeat(ids, TAGS_PER_SEGMENT))
    for segment_id in ids:
        if rng.random() < 0.8:  # most segments have a confident tempo and key
            for facet, value in (
                ("tempo", f"{rng.integers(70, 170)}"),
                ("key", "CDEFGAB"[rng.integers(7)]),
                ("scale", ("major", "minor")[rng.integers(2)]),
            ):
                segment_of.append(segment_id)
                facets.append(facet)
                names.append(facet)
                values.append(value)
    labels = model_label_columns(
        segment_of, facets, names, "bench@1", run_id, np.ones(len(facets)), values
    )
    project.catalog.merge_columns(run_id, "bench", {"labels": labels}, list(ids))


def bare_loop(project: Project) -> float:
    """The baseline: the writer alone over metadata already in memory."""
    records = segment_metadata(project)
    writer = TemplateWriter()
    writer.setup(PluginContext(vocabulary=project.vocabulary()))
    start = time.perf_counter()
    for segment_id, record in records.items():
        writer.write(record, segment_seed(0, segment_id))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--segments", type=int, default=40_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="prompts-bench-"))
    try:
        project = init_project(folder / "project")
        build(project, args.segments, np.random.default_rng(0))
        registry = registry_of(template_writer)
        start = time.perf_counter()
        segment_metadata(project)
        metadata_s = time.perf_counter() - start
        baseline = bare_loop(project)
        timings = {}
        for label, options in (("first run", {}), ("re-run", {}), ("--force", {"force": True})):
            start = time.perf_counter()
            summary = write_prompts(project, registry=registry, **options)
            timings[label] = (time.perf_counter() - start, summary)
        print(f"{args.segments} segments, template writer")
        print(f"  read metadata           {metadata_s:7.2f} s")
        print(f"  bare writer loop        {baseline:7.2f} s   (baseline)")
        for label, (seconds, summary) in timings.items():
            print(
                f"  write_prompts {label:<9} {seconds:7.2f} s   {seconds / baseline:5.1f}x "
                f"baseline; written {summary.written}, skipped {summary.skipped}"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
