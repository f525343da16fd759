"""`curator duplicates`: find the same recording, and the same loop, more than once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click
from rich.table import Table

from curator.cli.common import console, interruptible, print_json, progress_bar, project_option
from curator.duplicates.evidence import pair_words
from curator.duplicates.finding import Finding, find_duplicates, levels_of, stored_findings
from curator.project import Project


def register(cli: click.Group) -> None:
    """Add this module's commands to `cli`."""
    cli.add_command(duplicates)


@click.command()
@click.option(
    "--level",
    type=click.Choice(["same", "near", "both"]),
    default="both",
    show_default=True,
    help="same: the same recording (fingerprints); near: the same loop or sample under "
    "other beats (spectral landmarks of the segments).",
)
@click.option(
    "--threshold",
    type=click.FloatRange(min=0.0),
    help="For --level same: the highest bit error rate that is the same recording "
    "(default 0.2). For --level near: the least share of a segment's landmarks that must "
    "agree on one offset (default 0.012). See docs/duplicates.md.",
)
@click.option("--stored", is_flag=True, help="List the groups found last; find nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the groups as JSON.")
@project_option
def duplicates(
    project: Project,
    level: str,
    threshold: float | None,
    stored: bool,
    as_json: bool,
) -> None:
    """Find the same music more than once and list the groups with their evidence.

    'same' finds the same recording: a re-encode, a gain or loudness change, an EQ, a
    trimmed intro or shifted start, a slightly faster copy. Tracks are fingerprinted first
    (Chromaprint's fpcalc; only those not fingerprinted yet, so an interrupted run resumes),
    then matched at their best alignment; a group holds every segment of the matched tracks.
    'near' finds segments of different tracks that share a loop or a sample: many of their
    spectral landmarks (pairs of peaks from hits and onsets) agree on one time offset.
    Each run replaces the groups stored for the levels it searched; the rebalance, split,
    export and review features read them. See docs/duplicates.md.
    """
    if threshold is not None and level == "both":
        raise click.UsageError("--threshold needs --level same or --level near")
    if stored:
        findings = stored_findings(project, levels_of(level))
    else:
        findings = _find(project, level, threshold)
    if as_json:
        print_json(_as_json(findings))
        return
    for finding in findings:
        _print_finding(finding)


def _find(project: Project, level: str, threshold: float | None) -> list[Finding]:
    kept = "fingerprints made so far are saved; run the same command again to do the rest."
    with interruptible(kept) as interrupted:
        with progress_bar(f"Finding duplicates ({level})") as update:
            findings = find_duplicates(
                project,
                level,
                same_threshold=threshold if level == "same" else None,
                near_threshold=threshold if level == "near" else None,
                progress=update,
            )
        for finding in findings:
            _print_failures(finding)
        if any(f.fingerprinting and f.fingerprinting.interrupted for f in findings):
            interrupted()
    return findings


def _print_failures(finding: Finding) -> None:
    summary = finding.fingerprinting
    if summary is None:
        return
    console.print(
        f"Fingerprinted {summary.done} track(s), {len(summary.failed)} failed "
        "(tried again next run)."
    )
    for path, reason in summary.failed:
        console.print(f"[yellow]not fingerprinted[/]: {path}: {reason}")


def _print_finding(finding: Finding) -> None:
    console.print(
        f"[bold]{finding.level}[/]: {len(finding.groups)} group(s) from {finding.pairs} "
        f"matched pair(s); {finding.how}"
    )
    for note in finding.notes:
        console.print(f"  {note}")
    if not finding.groups:
        return
    table = Table("group", "segments", "evidence", title=f"Duplicate groups ({finding.level})")
    for group in finding.groups:
        table.add_row(group.group_id, ", ".join(group.members), _evidence_line(group.evidence))
    console.print(table)


def _evidence_line(evidence: Mapping[str, Any]) -> str:
    return "\n".join(pair_words(pair) for pair in evidence.get("pairs", []))


def _as_json(findings: list[Finding]) -> dict[str, Any]:
    return {
        finding.level: {
            "how": finding.how,
            "pairs": finding.pairs,
            "groups": [
                {"group_id": g.group_id, "members": list(g.members), "evidence": g.evidence}
                for g in finding.groups
            ],
            "not_fingerprinted": [
                {"path": path, "reason": reason}
                for path, reason in (
                    finding.fingerprinting.failed if finding.fingerprinting else []
                )
            ],
        }
        for finding in findings
    }
