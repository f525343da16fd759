"""What every page of the app shares: its project, the sign-in gate, who the curator is, and
user text shown as text."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import streamlit as st

from curator.access.users import read_users, users_file
from curator.curation.review import current_curator
from curator.project import Project, find_project, open_project

SIGNED_IN = "curator-signed-in"  # session key: the user name this session signed in as


def current_project() -> Project:
    """The project named after `--` on the streamlit command line, or CURATOR_PROJECT."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--project")
    known, _ = parser.parse_known_args()
    folder = known.project or os.environ.get("CURATOR_PROJECT")
    return open_project(Path(folder)) if folder else find_project()


def open_page(title: str) -> Project:
    """What every page starts with: its title, its project, and, when the project has a
    user list, the sign-in (the page goes no further until someone signs in)."""
    st.set_page_config(page_title=f"{title} · Curator" if title else "Curator", layout="wide")
    project = current_project()
    require_sign_in(project)
    if SIGNED_IN not in st.session_state:
        ask_curator_name()
    return project


def require_sign_in(project: Project) -> None:
    """Ask for a user name and password if the project has a user list; stop the page until
    they are right. Without a user list (the app then serves this machine only) do nothing."""
    config = read_users(users_file(project))
    if not config or not config["credentials"]["usernames"]:
        st.session_state.pop(SIGNED_IN, None)
        return
    import streamlit_authenticator as stauth

    cookie = config["cookie"]
    authenticator = stauth.Authenticate(
        config["credentials"],
        cookie["name"],
        cookie["key"],
        float(cookie.get("expiry_days", 7.0)),
        auto_hash=False,  # the list holds bcrypt hashes only
    )
    fields = {"Form name": "Sign in to Curator", "Login": "Sign in"}
    authenticator.login(location="main", fields=fields, key="curator-sign-in")
    status = st.session_state.get("authentication_status")
    if not status:
        st.session_state.pop(SIGNED_IN, None)
        if status is False:
            st.error("Wrong user name or password.")
        st.stop()
    st.session_state[SIGNED_IN] = st.session_state["username"]
    st.sidebar.caption(f"Signed in as {as_text(st.session_state['username'])}")
    authenticator.logout("Sign out", location="sidebar", key="curator-sign-out")


NAMED = "curator-name"  # session key (and cookie): the name this browser's curator gave
NAME_COOKIE_DAYS = 365


def ask_curator_name() -> None:
    """Without sign-in (the app serves this machine only), ask the curator's name once per
    browser: kept in a cookie, so every change records a person, not the app's login."""
    if os.environ.get("CURATOR_USER"):
        return  # whoever started the app said who works in it
    if not st.session_state.get(NAMED):
        st.session_state[NAMED] = _name_cookie()
    name = st.sidebar.text_input(
        "Your name",
        key=NAMED,
        help="Recorded with every change you make (History, Home). Asked once per browser.",
    ).strip()
    if not name:
        st.sidebar.warning("Type your name: changes you make are recorded under it.")
    elif _name_cookie() != name:
        _keep_name_cookie(name)


def _name_cookie() -> str:
    kept = st.context.cookies.get(NAMED)
    return kept if isinstance(kept, str) else ""  # not a str: no browser (a test's fake)


def _keep_name_cookie(name: str) -> None:
    import json

    import streamlit.components.v1 as components

    cookie = f"{NAMED}={quote(name)}; path=/; max-age={NAME_COOKIE_DAYS * 86400}; SameSite=Strict"
    components.html(
        f"<script>window.parent.document.cookie = {json.dumps(cookie)};</script>", height=0
    )


def page_curator() -> str:
    """Who is making a change from this page: the signed-in user when the project has a user
    list, else the name this browser gave (`ask_curator_name`), else CURATOR_USER or the login
    name of whoever runs the app."""
    signed_in = st.session_state.get(SIGNED_IN)
    if signed_in:
        return str(signed_in)
    return str(st.session_state.get(NAMED) or "").strip() or current_curator()


# CommonMark shows a backslash-escaped ASCII punctuation mark as itself. Escaped here: what
# starts links, images, autolinks (`<`, `:` of a scheme, `@` of an address, `www.`),
# emphasis, code, HTML, LaTeX (`$`), colour directives (`:red[`) and tables; `-`, `+`, `=`
# and `1.` only at the start, where they would begin a list or heading.
_INLINE = re.compile(r"([\\`*_\[\](){}<>!#$:~|^])")
_WWW = re.compile(r"(?i)\b(www)\.")
_EMAIL = re.compile(r"@(?=[\w-]+\.[\w-])")  # GFM links user@host.tld, not "template@1"
_BLOCK_START = re.compile(r"^(\s*)([-+=]|\d+(?=[.)]))")


def as_text(value: Any) -> str:
    """`value` as literal text inside Streamlit markdown (st.markdown, captions, messages,
    widget labels): links, images, emphasis, HTML, LaTeX and colour directives in a tag,
    file name, prompt or note are shown as typed, never rendered. Lines stay lines."""
    return "  \n".join(_line_as_text(line) for line in str(value).splitlines())


def _line_as_text(line: str) -> str:
    text = _WWW.sub(r"\1\\.", _INLINE.sub(r"\\\1", line))
    text = _EMAIL.sub(r"\\@", text)
    return _BLOCK_START.sub(_escape_block_start, text)


def _escape_block_start(found: re.Match[str]) -> str:
    marker = found.group(2)
    return found.group(1) + (marker + "\\" if marker[0].isdigit() else "\\" + marker)
