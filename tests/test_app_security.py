"""The app's security model: loopback unless sign-in is set up, a sign-in gate on every page,
paths only under the project's roots, and user text shown as text, never as markdown."""

from __future__ import annotations

import stat
from pathlib import Path

import bcrypt
import pytest
import yaml
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest
from tests_support import HatTagger, Plugin

from curator import app as app_package
from curator.access.paths import allowed_path
from curator.access.users import add_user, users_file
from curator.app.session import as_text
from curator.catalogue.ingest import ingest
from curator.curation.review import set_labels
from curator.errors import CuratorError
from curator.project import Project, init_project, open_project
from curator.prompts.editing import edit_prompt
from curator.storage import HumanLabel
from curator.tagging.runs import run_tagger
from curator.testing import registry_of
from curator.vocabulary import add_tag

APP = Path(app_package.__file__).parent
PAGES = sorted([APP / "Home.py", *(APP / "pages").glob("*.py")])
LINK = "[x](http://evil)"
IMAGE = "![i](evil.png)"


# -- binding and the user list -------------------------------------------------------------------


def test_app_refuses_a_non_loopback_address_without_users(run_curator, project: Project) -> None:
    result = run_curator("app", "--project", project.root, "--address", "0.0.0.0", timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "refusing to serve on 0.0.0.0 without sign-in" in lines[0]
    assert "curator app add-user NAME" in lines[0]
    assert "Traceback" not in result.stderr


def test_add_user_stores_a_bcrypt_hash_readable_by_its_owner_only(
    run_curator, project: Project
) -> None:
    result = run_curator(
        "app", "add-user", "ana", "--project", project.root, "--password-stdin",
        input="correct horse\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    path = users_file(project)
    assert path == project.root / "users.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "correct horse" not in path.read_text()
    config = yaml.safe_load(path.read_text())
    hashed = config["credentials"]["usernames"]["ana"]["password"]
    assert bcrypt.checkpw(b"correct horse", hashed.encode())
    assert len(config["cookie"]["key"]) == 64


@pytest.mark.parametrize(
    ("name", "password", "reason"),
    [("Ana", "long enough", "lowercase letters"), ("ana", "short", "at least 8 characters")],
)
def test_add_user_refuses_a_bad_name_or_password_in_one_line(
    run_curator, project: Project, name: str, password: str, reason: str
) -> None:
    result = run_curator(
        "app", "add-user", name, "--project", project.root, "--password-stdin",
        input=password + "\n",
    )  # fmt: skip
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and reason in result.stderr
    assert not users_file(project).exists()


# -- the sign-in gate ----------------------------------------------------------------------------


@pytest.fixture
def guarded(project: Project, monkeypatch) -> Project:
    """A project with one user, "ana", password "correct horse"."""
    add_user(users_file(project), "ana", "correct horse")
    monkeypatch.setenv("CURATOR_PROJECT", str(project.root))
    monkeypatch.setenv("CURATOR_USER", "server-login")
    return project


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_every_page_asks_for_a_sign_in_first(guarded: Project, page: Path) -> None:
    shown = AppTest.from_file(str(page), default_timeout=60).run()
    assert not shown.exception, shown.exception
    assert [t.label for t in shown.text_input] == ["Username", "Password"]
    assert not shown.title, "nothing of the page is drawn before the sign-in"


def sign_in(page: AppTest, name: str, password: str) -> AppTest:
    page.text_input[0].input(name)
    page.text_input[1].input(password)
    return page.button[0].click().run()


def test_a_wrong_password_is_refused_and_the_right_one_opens_the_page(guarded: Project) -> None:
    page = AppTest.from_file(str(APP / "pages" / "2_History.py"), default_timeout=60).run()
    sign_in(page, "ana", "wrong horse")
    assert "Wrong user name or password." in [e.value for e in page.error]
    assert not page.title
    sign_in(page, "ana", "correct horse")
    assert not page.exception, page.exception
    assert [t.value for t in page.title] == ["History"]
    assert "Signed in as ana" in [c.value for c in page.sidebar.caption]


# -- paths only under the project's roots --------------------------------------------------------


def test_a_path_is_allowed_only_under_the_project_roots(project: Project, tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "sao").mkdir(parents=True)
    settings = project.root / "curator.toml"
    settings.write_text(
        settings.read_text().replace("path_roots = []", f'path_roots = ["{models}"]')
    )
    project = open_project(project.root)
    assert (
        allowed_path(project, "jobs/x/model.safetensors", "weights")
        == (project.root / "jobs/x/model.safetensors").resolve()
    )
    assert allowed_path(project, models / "sao" / "model.ckpt", "weights").parent == models / "sao"
    (project.root / "escape").symlink_to("/etc")
    for outside in (
        "/etc/passwd",
        "../elsewhere/model.ckpt",
        "escape/passwd",
        "/proc/self/environ",
    ):
        with pytest.raises(CuratorError, match="outside the folders this app may use"):
            allowed_path(project, outside, "weights")


def test_the_jobs_page_refuses_a_typed_folder_outside_the_roots(
    project: Project, monkeypatch
) -> None:
    monkeypatch.setenv("CURATOR_PROJECT", str(project.root))
    page = AppTest.from_file(str(APP / "pages" / "7_Jobs.py"), default_timeout=60).run()
    page.selectbox(key="train-export-choice").select("another folder…").run()
    page.text_input(key="train-export-folder").input("/etc").run()
    page.text_input(key="train-model-config").input(str(project.root / "model_config.json"))
    page.button(key="train-start").click().run()
    assert not page.exception, page.exception
    (error,) = [e.value for e in page.error]
    assert "export folder /etc is outside the folders this app may use" in error
    assert not (project.root / "jobs").exists()


# -- user text is text ---------------------------------------------------------------------------


def rendered_links(markdown: str) -> list[str]:
    """Links, images and raw HTML that CommonMark would make of `markdown`."""
    found = []
    for block in MarkdownIt("commonmark").parse(markdown):
        for token in block.children or []:
            if token.type in ("link_open", "image", "html_inline"):
                found.append(token.type)
    return found


def test_as_text_leaves_nothing_to_render() -> None:
    for text in (LINK, IMAGE, "<http://evil>", "<img src=x>", "**bold** _it_", "a\n- b"):
        assert not rendered_links(as_text(text)), text
    assert rendered_links(LINK) == ["link_open"], "the check itself finds a link"
    for autolink in ("http://evil", "www.evil.com", "ana@evil.com"):
        escaped = as_text(autolink)
        assert autolink not in escaped, "GFM would link it"


@pytest.fixture
def poisoned(tmp_path: Path, loud_and_quiet: Path, monkeypatch) -> Project:
    """Markdown everywhere a person can put text: a file name, a tag, a prompt, a curator."""
    source = tmp_path / "beats"
    source.mkdir()
    original = next(loud_and_quiet.glob("*.wav"))
    (source / f"{IMAGE}.wav").write_bytes(original.read_bytes())
    project = init_project(tmp_path / "project")
    ingest(project, [source])
    run_tagger(project, "hats", registry=registry_of(Plugin(HatTagger())))
    add_tag(project.vocabulary_dir, "instruments", LINK)
    segment = project.catalog.segment_rows()[0]["id"]
    set_labels(project, [HumanLabel(segment, "instruments", LINK)], actor="[me](http://evil)")
    edit_prompt(project, segment, f"a beat {LINK} {IMAGE}")
    monkeypatch.setenv("CURATOR_PROJECT", str(project.root))
    return project


@pytest.mark.parametrize("name", ["1_Review.py", "2_History.py", "6_Prompts.py"])
def test_markdown_in_user_text_is_shown_as_text(poisoned: Project, name: str) -> None:
    page = AppTest.from_file(str(APP / "pages" / name), default_timeout=60).run()
    assert not page.exception, page.exception
    shown = [
        element.value
        for kind in ("markdown", "caption", "warning", "info", "error", "success", "subheader")
        for element in getattr(page, kind)
    ]
    labels = [w.label for kind in ("multiselect", "checkbox") for w in getattr(page, kind)]
    with_user_text = [t for t in shown + labels if "evil" in t]
    assert with_user_text, "the page shows the poisoned text somewhere"
    for text in shown + labels:
        assert not rendered_links(text), text
        assert "http://" not in text and "](" not in text, text
