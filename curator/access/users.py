"""The review app's user list: names with bcrypt password hashes, and its sign-in cookie's key.

The file is streamlit-authenticator's own config format (YAML), so the app hands it to that
library as it is; `curator app add-user NAME` writes it. Only hashes are stored.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any

import bcrypt
import yaml

from curator.errors import CuratorError
from curator.files import replace_atomically
from curator.project import Project

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSWORD = 8
COOKIE_DAYS = 7.0


def users_file(project: Project) -> Path:
    """Where the project's user list lives ([app] auth_file, relative to the project)."""
    return project.root / Path(project.settings.app.auth_file).expanduser()


def read_users(path: Path) -> dict[str, Any]:
    """The user list at `path` ({} when there is no file), checked for the keys the app needs."""
    if not path.is_file():
        return {}
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CuratorError(f"{path}: not a readable user list ({exc})") from None
    users = config.get("credentials", {}).get("usernames") if isinstance(config, dict) else None
    cookie = config.get("cookie") if isinstance(config, dict) else None
    if not isinstance(users, dict) or not isinstance(cookie, dict) or not cookie.get("key"):
        raise CuratorError(
            f"{path}: not a user list (needs credentials.usernames and cookie.key); "
            "`curator app add-user NAME` writes one"
        )
    return config


def has_users(project: Project) -> bool:
    """Whether sign-in is configured: the user list exists and names at least one user."""
    config = read_users(users_file(project))
    return bool(config and config["credentials"]["usernames"])


def add_user(path: Path, name: str, password: str) -> bool:
    """Add `name` (or replace its password) in the user list at `path`; True if it was new.

    The file is created with a fresh random cookie key and is readable by its owner only.
    """
    if not NAME.match(name):
        raise CuratorError(
            f"user name {name!r}: use 1-64 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if len(password) < MIN_PASSWORD:
        raise CuratorError(f"the password must have at least {MIN_PASSWORD} characters")
    config = read_users(path) or new_user_list()
    users = config["credentials"]["usernames"]
    new = name not in users
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
    users[name] = {"name": name, "password": hashed}
    write_user_list(path, config)
    return new


def new_user_list() -> dict[str, Any]:
    # The cookie name is random so that two projects served from one host keep apart.
    return {
        "credentials": {"usernames": {}},
        "cookie": {
            "name": f"curator-{secrets.token_hex(4)}",
            "key": secrets.token_hex(32),
            "expiry_days": COOKIE_DAYS,
        },
    }


def write_user_list(path: Path, config: dict[str, Any]) -> None:
    """Write the list whole (a temporary file renamed into place), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp makes the temporary file 0600 from the start: the hashes are never readable
    # by others, not even before the rename.
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)

    def write(file: Path) -> None:
        file.write_text(yaml.safe_dump(config, sort_keys=True), encoding="utf-8")
        file.chmod(0o600)

    replace_atomically(path, write, Path(temporary))
