"""No SQL is built from a value: a guard over the source, and hostile values end to end.

Every value (a path, a tag, a name, a note, a limit) reaches DuckDB as a parameter. SQL text
may only be assembled from fixed fragments the code chooses itself; the scan below holds
the list of those fragments, so a new interpolation has to be added there on purpose.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from curator.catalogue.ingest import ingest
from curator.catalogue.metadata import segment_metadata
from curator.curation.review import ReviewFilter, bulk_relabel, review_page, save_segment, undo
from curator.errors import CuratorError
from curator.export.build import export, export_settings
from curator.export.records import MANIFEST
from curator.project import Project, init_project, open_project
from curator.rebalance.plan import RebalanceRequest, parse_budget, rebalance
from curator.storage import HumanLabel
from curator.storage.exports import exports
from curator.storage.prompts import HUMAN, PromptRow, effective_prompts, save_prompts
from curator.storage.selections import selection, selection_items, selections
from curator.storage.suspects import stored_suspects

REPOSITORY = Path(__file__).resolve().parents[1]
SCANNED = ("curator", "plugins", "app")
SQL_WORDS = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|COPY|ATTACH|PRAGMA|FROM|WHERE|LIMIT|JOIN|VALUES"
    r"|SET|ORDER BY|GROUP BY)\b"
)
# What SQL text may interpolate: module constants (_USABLE, _STATE_SQL[...]) match
# CONSTANT below; these are the local names and expressions that only ever hold SQL the
# code wrote itself (a fragment, a statement built from constants, a table or column name
# of its own). Values never: they go in as ? or $name parameters.
FRAGMENTS = {
    # assembled statements and clauses made of constants and other fragments
    "where", "sql", "source", "score", "join", "order", "page", "present", "ranked",
    "worst", "pool", "rows", "model_ok", "finished", "conflict", "values", "selects",
    # table and column names: the code's own (a table's columns, a temp table's name)
    "table", "name", "column", "', '.join(columns)", "', '.join(selects)",
    # `col = ?` for the jobs columns a job may change (checked in storage/jobs.py)
    "statements[job_id]",
}  # fmt: skip
CONSTANT = re.compile(r"^_?[A-Z][A-Z0-9_]*(\[[\w.]+\]|\.get\([\w, ]+\))?$")
SQL_BUILDERS = re.compile(r"^_?\w*_sql\(")  # helpers that return a fragment from constants

# Values an attacker (or an unlucky curator) might type: quotes, a statement break, a
# comment, and LIKE's wildcard.
HOSTILE = 'it\'s "x"; -- 100%'
TAG = 'o\'clock "hat"; -- 5%'
FACET = "instr'uments\"; --%"
SELECTION = "boom 'bap'; DROP TABLE selections; --%"
NOTE = "kick's too loud\"; DELETE FROM labels; -- 50%"
ACTOR = "o'brien\"; --%"
PROMPT = 'A "dark" trap beat; it\'s 100% -- 808s'
FILE_NAME = "beat 'one'; -- \"5%\".wav"


def interpolations(path: Path) -> list[tuple[int, str]]:
    """(line, expression) of each value put into SQL-looking text by f-string, +, % or format."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.JoinedStr) and SQL_WORDS.search(_literal(node)):
            found += [
                (node.lineno, ast.unparse(v.value))
                for v in node.values
                if isinstance(v, ast.FormattedValue)
            ]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
            parts = (node.left, node.right)
            if any(SQL_WORDS.search(_literal(p)) for p in parts):
                found += [(node.lineno, ast.unparse(p)) for p in parts if not _is_text(p)]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
            and SQL_WORDS.search(_literal(node.func.value))
        ):
            found.append((node.lineno, ast.unparse(node)))
    return found


def _literal(node: ast.AST) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_literal(v) for v in node.values)
    if isinstance(node, ast.BinOp):
        return _literal(node.left) + _literal(node.right)
    return ""


def _is_text(node: ast.AST) -> bool:
    # Literal text, or an f-string/concatenation the walk checks on its own.
    return isinstance(node, ast.Constant | ast.JoinedStr) or (
        isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)
    )


def _allowed(expression: str) -> bool:
    return (
        expression in FRAGMENTS
        or bool(CONSTANT.match(expression))
        or bool(SQL_BUILDERS.match(expression))
    )


def test_sql_text_interpolates_only_the_codes_own_fragments() -> None:
    offenders = [
        f"{path.relative_to(REPOSITORY)}:{line}: {expression}"
        for folder in SCANNED
        for path in sorted((REPOSITORY / folder).rglob("*.py"))
        for line, expression in interpolations(path)
        if not _allowed(expression)
    ]
    assert not offenders, "values pasted into SQL (make them parameters):\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "code",
    [
        "con.execute(f\"SELECT * FROM t WHERE tag = '{tag}'\")",
        'con.execute("COPY t TO \'" + str(path) + "\'")',
        "con.execute(\"DELETE FROM t WHERE name = '%s'\" % name_given)",
        'con.execute("SELECT * FROM t LIMIT {}".format(limit))',
        'con.execute(f"SELECT * FROM t LIMIT {int(limit)}")',
    ],
)
def test_the_guard_catches_a_pasted_value(tmp_path: Path, code: str) -> None:
    source = tmp_path / "module.py"
    source.write_text(code + "\n")
    assert [e for _, e in interpolations(source) if not _allowed(e)]


# -- hostile values through the functions that store and query them ----------------------------


def with_hostile_tag(project: Project) -> Project:
    """Short segments, and TAG added to the instruments vocabulary on purpose."""
    (project.root / "curator.toml").write_text(
        "[ingest]\nsegment_min_seconds = 4.0\nsegment_max_seconds = 6.0\n"
    )
    vocabulary = project.vocabulary_dir / "instruments.toml"
    text = vocabulary.read_text(encoding="utf-8")
    vocabulary.write_text(text.replace("[tags]\n", f"[tags]\n{json.dumps(TAG)} = []\n", 1))
    return open_project(project.root)


@pytest.fixture
def hostile(tmp_path: Path, write_audio) -> Project:
    """A project whose path and audio file names hold quotes, `;`, `--` and `%`, ingested."""
    project = with_hostile_tag(init_project(tmp_path / HOSTILE / "project"))
    audio = tmp_path / HOSTILE / "audio"
    write_audio(FILE_NAME, 15.0, seed=1, root=audio)
    write_audio("plain.wav", 15.0, seed=2, root=audio)
    ingest(project, [audio])
    return project


def test_a_hostile_file_name_and_project_path_are_stored_as_they_are(hostile: Project) -> None:
    paths = {row[0] for row in hostile.catalog.file_rows()}
    assert str(hostile.root.parent / "audio" / FILE_NAME) in paths
    assert {row["source"] for row in hostile.catalog.segment_rows()} == paths
    assert hostile.catalog.counts()["tracks"] == {"ingested": 2}


def test_hostile_tag_note_and_curator_are_saved_queried_and_undone(hostile: Project) -> None:
    segment = hostile.catalog.segment_rows()[0]["id"]
    batch, changed = save_segment(
        hostile, segment, [HumanLabel(segment, "instruments", TAG)], note=NOTE, actor=ACTOR
    )
    assert changed == 2
    page = review_page(hostile, ReviewFilter(facet="instruments", tag=TAG, source="human"))
    assert [row["id"] for row in page.segments] == [segment]
    assert page.segments[0]["note"] == NOTE
    assert {(x["tag"], x["actor"]) for x in page.segments[0]["labels"]} == {(TAG, ACTOR)}
    assert {x["actor"] for x in hostile.catalog.label_history(segment)} == {ACTOR}

    assert undo(hostile, batch, actor=ACTOR) == 2
    row = review_page(hostile, ReviewFilter()).segments[0]
    assert row["id"] == segment and row["note"] is None and row["labels"] == []


def test_a_hostile_tag_added_in_bulk_reaches_frequencies_and_suspect_queries(
    hostile: Project,
) -> None:
    ids = sorted(row["id"] for row in hostile.catalog.segment_rows())
    _, changed = bulk_relabel(hostile, ReviewFilter(), "add", "instruments", TAG, actor=ACTOR)
    assert changed == len(ids)
    frequencies = hostile.catalog.tag_frequencies("instruments")
    assert frequencies == [{"tag": TAG, "model": 0, "human": len(ids)}]
    assert hostile.catalog.cooccurrence("instruments") == [(TAG, TAG, len(ids))]
    assert stored_suspects(hostile.catalog, "instruments", TAG, limit=3) == []


def test_a_hostile_facet_name_matches_nothing_and_breaks_nothing(hostile: Project) -> None:
    assert hostile.catalog.tag_frequencies(FACET) == []
    assert hostile.catalog.cooccurrence(FACET, FACET) == []
    assert hostile.catalog.effective_values(FACET) == []
    try:
        page = review_page(hostile, ReviewFilter(facet=FACET, tag=TAG))
    except CuratorError:
        return  # refusing an unknown facet is as good as matching nothing
    assert page.total == 0 and page.segments == []


def test_a_hostile_selection_exports_with_hostile_tags_and_prompts(
    hostile: Project, tmp_path: Path
) -> None:
    ids = sorted(row["id"] for row in hostile.catalog.segment_rows())
    bulk_relabel(hostile, ReviewFilter(), "add", "instruments", TAG, actor=ACTOR)
    request = RebalanceRequest(SELECTION, parse_budget(str(len(ids))), method="random")
    rebalance(hostile, request)
    assert selection(hostile.catalog, SELECTION)["name"] == SELECTION
    assert [s["name"] for s in selections(hostile.catalog)] == [SELECTION]
    chosen = sorted({item.segment_id for item in selection_items(hostile.catalog, SELECTION)})
    assert chosen and set(chosen) <= set(ids)
    save_prompts(hostile.catalog, [PromptRow(chosen[0], HUMAN, PROMPT)])
    assert effective_prompts(hostile.catalog, ids)[chosen[0]] == PROMPT
    metadata = segment_metadata(hostile)
    assert all(metadata[i]["instruments_tags"] == [TAG] for i in ids)

    out = tmp_path / HOSTILE / "export"
    summary = export(hostile, out, SELECTION, export_settings(hostile, writer="template"))
    records = [json.loads(line) for line in (out / MANIFEST).read_text().splitlines()]
    assert sorted({r["segment_id"] for r in records}) == chosen
    assert summary.segments == len(chosen)
    assert all(r["instruments_tags"] == [TAG] for r in records)
    assert {r["prompt"] for r in records if r["segment_id"] == chosen[0]} == {PROMPT}
    recorded = exports(hostile.catalog)
    assert [(e["path"], e["selection"]) for e in recorded] == [(str(out), SELECTION)]


def test_metadata_export_command_in_a_hostile_project(hostile: Project, run_curator) -> None:
    segment = hostile.catalog.segment_rows()[0]["id"]
    save_segment(hostile, segment, [HumanLabel(segment, "instruments", TAG)], note=NOTE)
    result = run_curator("metadata", "export", "--project", hostile.root)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[segment]["instruments_tags"] == [TAG]
