"""Prompt writing and metadata on a synthetic catalogue (40,000 labelled segments, no audio).

Run: .venv/bin/python bench/prompts_bench.py [--segments 40000] [--metadata-only]
Baselines, measured in the same run: the writer alone in a bare loop over the same metadata;
the metadata grouped label by label in Python (how segment_metadata was built before); the
whole JSON document dumped at once (how `metadata export` wrote it before); DuckDB reading
the metadata columns alone (the bound for anything that reads the metadata).
Prints how much reading metadata, checking and storing add, what a re-run costs, a
re-run of the Prompts page, and `metadata export` streamed against the old way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from synthetic import add_segments, model_label_columns

from curator.api import PluginContext
from curator.catalogue.metadata import TAG_FACETS, segment_metadata, write_metadata
from curator.curation.review import save_segment
from curator.music import VALUE_FACETS
from curator.plugins import template_writer
from curator.plugins.template_writer import TemplateWriter
from curator.project import Project, init_project
from curator.prompts.editing import prompt_table
from curator.prompts.writing import segment_seed, write_prompts
from curator.storage import HumanLabel, RunRecord
from curator.testing import metadata_label_by_label, registry_of

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


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def metadata_figures(project: Project, folder: Path) -> None:
    """segment_metadata and `metadata export --format json` against the old ways."""
    bound, _ = timed(lambda: project.catalog.metadata_table(TAG_FACETS, VALUE_FACETS))
    old_s, old = timed(lambda: metadata_label_by_label(project))
    new_s, new = timed(lambda: segment_metadata(project))
    assert new == old, "segment_metadata differs from the Python rebuild"
    print(f"  DuckDB reads the metadata       {bound:7.2f} s   (bound)")
    print(f"  metadata, grouped in Python     {old_s:7.2f} s   (baseline, the old way)")
    print(f"  segment_metadata (one query)    {new_s:7.2f} s   {old_s / new_s:5.1f}x faster")
    whole = folder / "whole.json"
    dump_s, _ = timed(
        lambda: whole.write_text(json.dumps(metadata_label_by_label(project), indent=2) + "\n")
    )
    streamed = folder / "streamed.json"

    def stream() -> None:
        with streamed.open("w", encoding="utf-8") as out:
            write_metadata(project, out)

    stream_s, _ = timed(stream)
    assert streamed.read_bytes() == whole.read_bytes(), "streamed export differs"
    print(f"  export json, whole document     {dump_s:7.2f} s   (baseline, the old way)")
    print(f"  export json, streamed           {stream_s:7.2f} s   {dump_s / stream_s:5.1f}x faster")


def page_figures(project: Project) -> None:
    """The Prompts page's data, then the page itself in Streamlit's AppTest: a rerun (what
    every click costs) with nothing changed, against one after a label changed (which
    rebuilds the table, as every rerun did before)."""
    cold, _ = timed(lambda: prompt_table(project))
    warm, _ = timed(lambda: prompt_table(project))
    print(f"  prompt_table, first call        {cold:7.2f} s   (baseline, a full rebuild)")
    print(f"  prompt_table, nothing changed   {warm:7.2f} s   {cold / warm:5.1f}x faster")
    from streamlit.testing.v1 import AppTest

    import curator.app

    os.environ["CURATOR_PROJECT"] = str(project.root)
    page_file = Path(curator.app.__file__).parent / "pages" / "6_Prompts.py"
    page = AppTest.from_file(str(page_file), default_timeout=600)
    page.run()  # imports, plugins: paid once per app process
    segment_id = next(iter(segment_metadata(project)))
    save_segment(project, segment_id, [HumanLabel(segment_id, "moods", "dark", present=False)])
    rebuilt, _ = timed(page.run)
    again, _ = timed(page.run)
    assert not page.exception, page.exception
    print(f"  Prompts page, a label changed   {rebuilt:7.2f} s   (baseline, a rebuild)")
    print(f"  Prompts page, nothing changed   {again:7.2f} s   {rebuilt / again:5.1f}x faster")


def writing_figures(project: Project) -> None:
    registry = registry_of(template_writer)
    baseline = bare_loop(project)
    every_id = list(segment_metadata(project))
    runs: list[tuple[str, Callable[[], Any]]] = [
        ("first run", lambda: write_prompts(project, registry=registry)),
        # The same segments named one by one are another job: checked in full, none written.
        ("re-run, full check", lambda: write_prompts(project, every_id, registry=registry)),
        ("re-run, no-op", lambda: write_prompts(project, registry=registry)),
        ("--force", lambda: write_prompts(project, force=True, registry=registry)),
    ]
    print(f"  bare writer loop                {baseline:7.2f} s   (baseline)")
    for label, run in runs:
        seconds, summary = timed(run)
        print(
            f"  write_prompts {label:<18}{seconds:7.2f} s   {seconds / baseline:5.2f}x "
            f"baseline; written {summary.written}, skipped {summary.skipped}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--segments", type=int, default=40_000)
    parser.add_argument(
        "--metadata-only", action="store_true", help="Only segment_metadata and the export."
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="prompts-bench-"))
    try:
        project = init_project(folder / "project")
        build(project, args.segments, np.random.default_rng(0))
        print(f"{args.segments} segments (synthetic), template writer")
        metadata_figures(project, folder)
        if not args.metadata_only:
            writing_figures(project)
            page_figures(project)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
