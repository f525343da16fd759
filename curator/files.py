"""Files written whole or not at all, and JSON objects read back without surprises.

Every marker, state and config file Curator writes (job folders, exports, demo truth, learned
models) is read by another process, possibly while it is being rewritten, or after a kill.
Writing beside the file and renaming it into place means a reader sees the old file or the
new one, never half of one. Standard library only: the job launcher imports this and must
start in milliseconds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def replace_atomically(
    path: Path, write: Callable[[Path], object], temporary: Path | None = None
) -> None:
    """Call `write(temporary)`, then rename the temporary file onto `path`.

    A failed write removes the temporary file, so nothing half-written is left beside `path`.
    `temporary` defaults to `path` + ".partial" in the same folder (a rename is only atomic
    within one filesystem).
    """
    temporary = temporary or path.with_name(path.name + ".partial")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_atomically(path: Path, text: str, temporary: Path | None = None) -> None:
    """`path` holds `text` (UTF-8), whole, or keeps what it held before."""
    replace_atomically(path, lambda t: t.write_text(text, encoding="utf-8"), temporary)


def write_json_atomically(
    path: Path, data: Mapping[str, Any], temporary: Path | None = None, **dumps: Any
) -> None:
    """`path` holds `data` as indented JSON, whole; `dumps` go to json.dumps (sort_keys, ...)."""
    text = json.dumps(data, indent=2, ensure_ascii=False, **dumps) + "\n"
    write_text_atomically(path, text, temporary)


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when it is missing, unreadable or not an object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None
