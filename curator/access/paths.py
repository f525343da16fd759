"""Which server-side files the app's pages may name: those under the project's path roots.

Anyone who can reach the app can type a path into the Jobs or Generate page, and a job reads
what it is given, so a typed path is accepted only inside the folders the project's owner
chose: the project itself, `[app] path_roots`, the folders of the base model in `[training]`
and the exports `curator export` recorded.
"""

from __future__ import annotations

from pathlib import Path

from curator.errors import CuratorError
from curator.project import Project
from curator.storage.exports import exports


def path_roots(project: Project) -> list[Path]:
    """The folders whose files the app's pages accept, resolved (symbolic links followed)."""
    training = project.settings.training
    named = [*project.settings.app.path_roots]
    named += [str(Path(path).parent) for path in (training.model_config, training.ckpt) if path]
    roots = [project.root, *(project.root / Path(folder).expanduser() for folder in named)]
    roots += [Path(row["path"]) for row in exports(project.catalog)]
    return [root.resolve() for root in roots]


def allowed_path(project: Project, value: str | Path, what: str) -> Path:
    """`value` resolved, if it lies under one of the project's path roots; else CuratorError.

    what: names the field in the message, e.g. "model config".
    """
    text = str(value).strip()
    if not text:
        raise CuratorError(f"give a {what} path")
    path = (project.root / Path(text).expanduser()).resolve()
    roots = path_roots(project)
    if any(path.is_relative_to(root) for root in roots):
        return path
    raise CuratorError(
        f"{what} {path} is outside the folders this app may use "
        f"({', '.join(str(r) for r in dict.fromkeys(roots))}); "
        "add its folder to [app] path_roots in curator.toml"
    )
