"""A new plugin package from the template: entry point, a working tagger, and its tests."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from curator.errors import CuratorError

# Template file -> where it goes in the new package ({module} is filled in).
FILES = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "module__init__.py.tmpl": "{module}/__init__.py",
    "test_module.py.tmpl": "tests/test_{module}.py",
}


def template_values(name: str) -> dict[str, str]:
    """Names derived from a plugin name such as `trap-snare`."""
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise CuratorError(f"plugin name {name!r}: use lower-case letters, digits and dashes")
    module = "curator_" + name.replace("-", "_")
    class_name = "".join(part.capitalize() for part in name.split("-")) + "Tagger"
    return {
        "plugin_name": name,
        "module": module,
        "dist_name": module.replace("_", "-"),
        "class_name": class_name,
    }


def create_plugin(folder: Path, name: str) -> list[Path]:
    """Write the package into `folder` (which must not exist yet); returns the files."""
    if folder.exists():
        raise CuratorError(f"{folder}: already exists; choose a new folder")
    values = template_values(name)
    templates = resources.files("curator.registry") / "templates" / "plugin"
    written = []
    for source, target in FILES.items():
        path = folder / target.format(**values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text((templates / source).read_text().format(**values), encoding="utf-8")
        written.append(path)
    return written
