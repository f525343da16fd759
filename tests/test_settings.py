"""Settings defaults are written twice, as the settings dataclasses and as the curator.toml that
`curator init` writes (with a comment per key): these tests keep the two in step."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest

from curator.settings import DEFAULT_TOML, Settings, load_settings

TABLES = [f.name for f in dataclasses.fields(Settings) if f.name != "plugins"]
WRITTEN = tomllib.loads(DEFAULT_TOML)


def typed(values: dict[str, Any]) -> dict[str, tuple[type, Any]]:
    """Each value with its type, so that 120 written for a float default is caught; TOML
    has lists where the dataclasses have tuples."""
    listed = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
    return {k: (type(v), v) for k, v in listed.items()}


def test_the_init_file_has_every_table_and_no_other() -> None:
    assert sorted(WRITTEN) == sorted(TABLES)


@pytest.mark.parametrize("table", TABLES)
def test_the_init_file_has_every_key_of_a_table_with_its_default(table: str) -> None:
    defaults = getattr(Settings(), table)
    expected = {f.name: getattr(defaults, f.name) for f in dataclasses.fields(defaults)}
    assert typed(WRITTEN[table]) == typed(expected)


def test_the_init_file_loads_as_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "curator.toml"
    path.write_text(DEFAULT_TOML, encoding="utf-8")
    assert load_settings(path) == Settings()


def test_an_unknown_key_with_a_newline_is_named_on_one_line(tmp_path: Path) -> None:
    from curator.errors import CuratorError

    path = tmp_path / "curator.toml"
    path.write_text('[tagging]\n"batch\\nsize" = 3\n', encoding="utf-8")
    with pytest.raises(CuratorError) as refused:
        load_settings(path)
    message = str(refused.value)
    assert "\n" not in message and "unknown key(s) 'batch\\nsize'" in message
