"""The layout's rules, read from the source: who may import duckdb, storage, and private names."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Folders installed under the `curator` import name (pyproject's package-dir), and where.
FOLDERS = {
    "curator": "curator",
    "app": "curator.app",
    "plugins": "curator.plugins",
    "training": "curator.training",
}


@dataclass(frozen=True)
class Import:
    """One import: `module` (absolute), `name` from it when one is named, and the `local`
    name it binds, which stands for `bound` (`import a.b` binds `a`, standing for `a`)."""

    line: int
    module: str
    name: str | None
    local: str
    bound: str

    @property
    def target(self) -> str:
        return f"{self.module}.{self.name}" if self.name else self.module


def module_name(path: Path, root: Path = REPO) -> str:
    """The dotted name a source file is imported under."""
    folder, *rest = path.relative_to(root).with_suffix("").parts
    parts = [FOLDERS[folder], *rest]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imports(path: Path, root: Path = REPO) -> Iterator[Import]:
    """Every import in the file at any depth, relative ones made absolute.

    Imports only type checkers run (`if TYPE_CHECKING:`) are left out: they load nothing.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = module_name(path, root)
    package = here if is_package(path) else here.rpartition(".")[0]
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.partition(".")[0]
                local, bound = (alias.asname, alias.name) if alias.asname else (top, top)
                yield Import(node.lineno, alias.name, None, local, bound)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, package)
            for alias in node.names:
                local = alias.asname or alias.name
                yield Import(node.lineno, module, alias.name, local, f"{module}.{alias.name}")


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join([*base, *([node.module] if node.module else [])])


def source_files(*folders: str, root: Path = REPO) -> list[Path]:
    return sorted(
        path
        for folder in folders
        for path in (root / folder).rglob("*.py")
        if "templates" not in path.relative_to(root).parts
    )


# -- the rules ---------------------------------------------------------------------------------


def duckdb_imports(files: list[Path], root: Path = REPO) -> list[str]:
    """Where a module outside curator/storage imports duckdb."""
    storage = root / "curator" / "storage"
    return [
        f"{path.relative_to(root)}:{found.line}"
        for path in files
        if storage not in path.parents
        for found in imports(path, root)
        if found.module.split(".")[0] == "duckdb"
    ]


def storage_imports(files: list[Path], root: Path = REPO) -> list[str]:
    """Where a module imports from curator.storage (or the storage package itself)."""
    return [
        f"{path.relative_to(root)}:{found.line} imports {found.target}"
        for path in files
        for found in imports(path, root)
        if found.target == "curator.storage" or found.target.startswith("curator.storage.")
    ]


def private_imports(files: list[Path], root: Path = REPO) -> list[str]:
    """Where a module takes a private name (`_x`) from a module of another package, by
    `from m import _x` or as `m._x` on a module it imported."""
    found = []
    for path in files:
        here = module_name(path, root)
        package = here if is_package(path) else here.rpartition(".")[0]
        for line, module, name in _private_uses(path, root):
            if _package_of(module, root) != package:
                found.append(f"{path.relative_to(root)}:{line} uses {module}.{name}")
    return found


def _private_uses(path: Path, root: Path) -> Iterator[tuple[int, str, str]]:
    modules: dict[str, str] = {}  # local name -> what it stands for (a module, or not)
    for found in imports(path, root):
        if found.name is not None and _is_private(found.name):
            yield found.line, found.module, found.name
        modules[found.local] = found.bound
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            owner = _dotted(node.value, modules)
            if owner and _source(owner, root) is not None:
                yield node.lineno, owner, node.attr


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _dotted(node: ast.expr, modules: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return modules.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _dotted(node.value, modules)
        return f"{owner}.{node.attr}" if owner else None
    return None


def _source(module: str, root: Path) -> Path | None:
    """The file of one of Curator's modules (its __init__.py for a package), or None."""
    first, *rest = module.split(".")
    if first != "curator":
        return None
    outside = {name.partition(".")[2]: folder for folder, name in FOLDERS.items()}
    if rest and rest[0] in outside:
        candidate = root / outside[rest[0]] / Path(*rest[1:])
    else:
        candidate = root / "curator" / Path(*rest)
    if (candidate / "__init__.py").is_file():
        return candidate / "__init__.py"
    if candidate.with_suffix(".py").is_file():
        return candidate.with_suffix(".py")
    return None


def _package_of(module: str, root: Path) -> str:
    source = _source(module, root)
    if source is not None and is_package(source):
        return module
    return module.rpartition(".")[0]


# -- the rules hold ----------------------------------------------------------------------------

EVERYWHERE = ("curator", "app", "plugins", "training")


def test_only_storage_imports_duckdb() -> None:
    files = source_files(*EVERYWHERE)
    assert len(files) > 100
    assert duckdb_imports(files) == []


def test_app_and_cli_go_through_the_library_not_storage() -> None:
    files = source_files("app", "curator/cli")
    assert {p.name for p in files} >= {"1_Review.py", "export.py", "rebalance.py"}
    assert storage_imports(files) == []


def test_no_module_takes_a_private_name_from_another_package() -> None:
    assert private_imports(source_files(*EVERYWHERE)) == []


# -- the checks catch what they are for ---------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A repository-shaped folder: curator/{storage,cli,export}, app/pages, training."""
    for package in ("curator", "curator/storage", "curator/cli", "curator/export", "app"):
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "app" / "pages").mkdir()
    (tmp_path / "training").mkdir()
    (tmp_path / "curator" / "storage" / "sql.py").write_text("def _quote(): ...\n")
    (tmp_path / "curator" / "export" / "staging.py").write_text("def _claim(): ...\n")
    return tmp_path


def write(root: Path, path: str, text: str) -> Path:
    (root / path).write_text(text)
    return root / path


def test_duckdb_is_caught_anywhere_but_storage_and_type_checking(tree: Path) -> None:
    write(tree, "curator/storage/catalog.py", "import duckdb\n")
    write(tree, "curator/export/build.py", "def f():\n    from duckdb import connect\n")
    typed = "if TYPE_CHECKING:\n    import duckdb\nelse:\n    import duckdb\n"
    write(tree, "curator/api.py", typed)
    files = source_files("curator", root=tree)
    assert duckdb_imports(files, tree) == ["curator/api.py:4", "curator/export/build.py:2"]


def test_storage_is_caught_in_every_spelling(tree: Path) -> None:
    page = write(
        tree,
        "app/pages/1_Review.py",
        "from curator import storage\nimport curator.storage.labels\n"
        "from curator.storage.sql import dicts\nfrom curator.export import build\n",
    )
    command = write(tree, "curator/cli/prompts.py", "from ..storage import HumanLabel\n")
    assert storage_imports([page, command], tree) == [
        "app/pages/1_Review.py:1 imports curator.storage",
        "app/pages/1_Review.py:2 imports curator.storage.labels",
        "app/pages/1_Review.py:3 imports curator.storage.sql.dicts",
        "curator/cli/prompts.py:1 imports curator.storage.HumanLabel",
    ]


def test_private_names_are_caught_across_packages_only(tree: Path) -> None:
    own = write(tree, "curator/storage/labels.py", "from curator.storage.sql import _quote\n")
    across = write(
        tree,
        "curator/export/build.py",
        "from curator.storage.sql import _quote\nfrom curator.export.staging import _claim\n"
        "from curator.storage import sql\nimport curator.storage.sql\n"
        "sql._quote()\ncurator.storage.sql._quote()\nsql.__name__\n",
    )
    assert private_imports([own, across], tree) == [
        "curator/export/build.py:1 uses curator.storage.sql._quote",
        "curator/export/build.py:5 uses curator.storage.sql._quote",
        "curator/export/build.py:6 uses curator.storage.sql._quote",
    ]


def test_relative_imports_resolve_inside_their_package(tree: Path) -> None:
    write(tree, "training/jobfiles.py", "def _tail(): ...\n")
    (tree / "training" / "__init__.py").write_text("")
    main = write(tree, "training/train.py", "from .jobfiles import _tail\nfrom . import jobfiles\n")
    assert [i.target for i in imports(main, tree)] == [
        "curator.training.jobfiles._tail",
        "curator.training.jobfiles",
    ]
    assert private_imports([main], tree) == []
