"""Helpers the tests share to read what ingest decided, by file name."""

from __future__ import annotations

from pathlib import Path

from curator.project import Project


def status_by_name(project: Project) -> dict[str, str]:
    return {Path(p).name: status for p, status, _ in project.catalog.file_rows()}


def reasons_by_name(project: Project) -> dict[str, str]:
    return {Path(p).name: reason or "" for p, _, reason in project.catalog.file_rows()}
