"""Fine-tuning and generation jobs: run detached in .venv-train, watched through their folder.

A job is a folder under PROJECT/jobs/<id>/ and a row in the catalogue. The folder is the
truth: job.json (what to do) goes in; the training code writes log.txt, progress.jsonl,
checkpoints, audio and finally result.json. The row is brought up to date from the folder
(and from whether its processes still live) every time jobs are listed, so a job survives
the app or the terminal that started it, and a restarted app re-attaches to it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from curator.errors import CuratorError
from curator.files import read_json_object, write_json_atomically
from curator.jobs.launcher import (
    CANCEL_FILE,
    LAUNCH_FILE,
    LOG_FILE,
    PROCESS_FILE,
    RESULT_FILE,
    kill_group,
    log_tail,
)
from curator.project import Project
from curator.settings import TrainingSettings
from curator.storage import jobs as storage

JOBS_DIR = "jobs"
JOB_FILE = "job.json"
PROGRESS_FILE = "progress.jsonl"
TRAIN_PYTHON_ENV = "CURATOR_TRAIN_PYTHON"
LOCK_DIR_ENV = "CURATOR_GPU_LOCK_DIR"
KINDS = ("train", "generate", "encode")
FINAL = ("succeeded", "failed", "cancelled")
ACTIVE = storage.ACTIVE
ERROR_LINES = 20


class UnknownJob(CuratorError):
    """A command named a job the catalogue does not hold."""


@dataclass(frozen=True)
class Job:
    """One job as the catalogue and its folder describe it."""

    id: str
    kind: str
    status: str
    folder: Path
    config: dict[str, Any]
    pid: int | None = None
    error: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def progress(self) -> list[dict[str, Any]]:
        """Every progress record so far (one per logged step), oldest first."""
        return read_progress(self.folder / PROGRESS_FILE)

    def latest(self) -> dict[str, Any] | None:
        records = self.progress()
        return records[-1] if records else None

    def result(self) -> dict[str, Any] | None:
        return read_json_object(self.folder / RESULT_FILE)

    def outputs(self) -> dict[str, Any]:
        return dict((self.result() or {}).get("outputs") or {})

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.folder / LOG_FILE, lines)

    def checkpoints(self) -> list[Path]:
        """Saved checkpoints, oldest first (their names hold the zero-padded step)."""
        return sorted((self.folder / "checkpoints").glob("*.ckpt"))

    def audio_files(self) -> list[Path]:
        """Generated audio, in prompt order."""
        return sorted((self.folder / "audio").glob("*.wav"))

    @property
    def label(self) -> str:
        return str(self.meta.get("label") or self.id)


# -- where things are ----------------------------------------------------------------------


def training_root() -> Path:
    """The folder holding the `training` package, for PYTHONPATH in .venv-train.

    The repository root in development, site-packages/curator in a wheel.
    """
    spec = importlib.util.find_spec("curator.training")
    if spec is None or not spec.submodule_search_locations:
        raise CuratorError("the curator.training package is not installed with curator")
    return Path(next(iter(spec.submodule_search_locations))).parent


def repository_root() -> Path:
    """Where `make setup` builds .venv-train: the folder above the curator package."""
    return Path(__file__).resolve().parents[2]  # curator/jobs/manage.py


def train_python(settings: TrainingSettings) -> Path:
    """The .venv-train interpreter: [training] python, $CURATOR_TRAIN_PYTHON, or the repo's."""
    configured = settings.python or os.environ.get(TRAIN_PYTHON_ENV, "")
    python = (
        Path(configured).expanduser()
        if configured
        else repository_root() / ".venv-train" / "bin" / "python"
    )
    if not python.exists():
        where = (
            "set by [training] python"
            if settings.python
            else f"set by ${TRAIN_PYTHON_ENV}"
            if configured
            else "the default"
        )
        raise CuratorError(
            f"{python}: no training environment there ({where}); run `make setup` to build "
            f".venv-train, or point [training] python in curator.toml at its bin/python"
        )
    return python


def lock_dir(settings: TrainingSettings) -> Path:
    """The machine-wide folder of GPU slots, shared by every project of this user."""
    configured = os.environ.get(LOCK_DIR_ENV) or settings.lock_dir
    if configured:
        return Path(configured).expanduser()
    return Path(tempfile.gettempdir()) / f"curator-gpu-slots-{os.getuid()}"


def jobs_dir(project: Project) -> Path:
    return project.root / JOBS_DIR


# -- launching -----------------------------------------------------------------------------


def start_job(
    project: Project,
    kind: str,
    config: Mapping[str, Any],
    *,
    meta: Mapping[str, Any] | None = None,
    copy_to: Path | None = None,
    argv: Sequence[str] | None = None,
) -> Job:
    """Write the job's folder, launch it detached, record it; returns it (queued).

    meta: what the app shows with it (label, comparison group, requested tags).
    copy_to: a folder the generated audio is copied to when the job succeeds.
    argv: what to run instead of the training entry point, "{folder}" standing for the
      job folder (tests of the machinery only).
    """
    if kind not in KINDS:
        raise CuratorError(f"unknown job kind {kind!r} (known: {', '.join(KINDS)})")
    settings = project.settings.training
    python = None if argv else train_python(settings)
    job_id = new_job_id(kind)
    folder = jobs_dir(project) / job_id
    folder.mkdir(parents=True)
    _write_job_file(folder / JOB_FILE, {"kind": kind, "config": dict(config)})
    command = (
        [part.replace("{folder}", str(folder)) for part in argv]
        if argv
        else [str(python), "-m", "training", kind, str(folder)]
    )
    _write_job_file(
        folder / LAUNCH_FILE,
        {
            "argv": command,
            "env": _job_env(),
            "gpu_slots": 0 if config.get("device") == "cpu" else settings.max_gpu_jobs,
            "gpu_needed": int(config.get("devices") or 1),
            "lock_dir": str(lock_dir(settings)),
            "grace_seconds": settings.cancel_grace_seconds,
            "copy_to": str(copy_to.expanduser().resolve()) if copy_to else None,
            "meta": dict(meta or {}),
        },
    )
    pid = _spawn_launcher(folder)
    storage.add_job(project.catalog, job_id, kind, str(folder), config, pid)
    return get_job(project, job_id, refresh=False)


def new_job_id(kind: str) -> str:
    """Readable and sortable: the kind, the time, and a few random hex digits."""
    return f"{kind}-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _job_env() -> dict[str, str]:
    # PYTHONPATH is replaced, not extended: .venv's paths must not leak into Python 3.10.
    return {"PYTHONPATH": str(training_root()), "PYTHONUNBUFFERED": "1"}


def _spawn_launcher(folder: Path) -> int:
    with (folder / LOG_FILE).open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "curator.jobs.launcher", str(folder)],
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not stopped with the app, the terminal or Ctrl-C
        )
    # Reap it if this process outlives it (the app does), so it never lingers as a zombie.
    threading.Thread(target=process.wait, daemon=True).start()
    return process.pid


# -- reading and re-attaching ------------------------------------------------------------------


def list_jobs(project: Project, kind: str | None = None) -> list[Job]:
    """Every job, newest first, after bringing the unfinished ones up to date."""
    refresh_jobs(project)
    return [_job(row) for row in storage.list_jobs(project.catalog, kind)]


def get_job(project: Project, job_id: str, refresh: bool = True) -> Job:
    """One job by id or by a unique start of its id."""
    if refresh:
        refresh_jobs(project)
    rows = storage.list_jobs(project.catalog)
    exact = [row for row in rows if row["id"] == job_id]
    matches = exact or [row for row in rows if row["id"].startswith(job_id)]
    if len(matches) == 1:
        return _job(matches[0])
    if matches:
        names = ", ".join(row["id"] for row in matches)
        raise UnknownJob(f"{job_id!r} names more than one job ({names}); give more of the id")
    raise UnknownJob(f"no job {job_id!r} in this project (`curator jobs` lists them)")


def refresh_jobs(project: Project) -> None:
    """Bring every unfinished job's row up to date from its folder and its processes."""
    updates = {}
    for row in storage.list_jobs(project.catalog):
        if row["status"] not in ACTIVE:
            continue
        observed = observe(Path(row["folder"]), row["pid"])
        changes = {k: v for k, v in observed.items() if v is not None and row.get(k) != v}
        if changes:
            updates[row["id"]] = changes
    storage.update_jobs(project.catalog, updates)


def observe(folder: Path, launcher_pid: int | None) -> dict[str, Any]:
    """What the folder and the processes say: status, error, started_at, finished_at."""
    process = read_json_object(folder / PROCESS_FILE) or {}
    started = _parse_time(process.get("started_at"))
    result = read_json_object(folder / RESULT_FILE)
    launcher = bool(launcher_pid and alive(launcher_pid, folder))
    # A job ends when its launcher does: after result.json it still copies the audio out.
    if result is not None and not launcher:
        return _finished(folder, result, started)
    child = process.get("pid")
    if launcher or (child and alive(child, folder)):
        return {"status": "running" if process else "queued", "started_at": started}
    if (folder / CANCEL_FILE).exists():
        return {"status": "cancelled", "finished_at": datetime.now(), "started_at": started}
    return {
        "status": "failed",
        "error": _with_log_tail(
            "the job's processes are gone and it left no result (the machine restarted, "
            "or they were killed)",
            folder,
        ),
        "finished_at": datetime.now(),
        "started_at": started,
    }


def _finished(folder: Path, result: dict[str, Any], started: datetime | None) -> dict[str, Any]:
    status = result.get("status")
    error = result.get("error")
    if status not in FINAL:
        status, error = "failed", f"{RESULT_FILE} holds an unknown status {status!r}"
    if status == "failed":
        error = _with_log_tail(str(error or "failed without saying why"), folder)
    finished = datetime.fromtimestamp((folder / RESULT_FILE).stat().st_mtime)
    return {"status": status, "error": error, "finished_at": finished, "started_at": started}


def _with_log_tail(error: str, folder: Path) -> str:
    """An error as the job gave it, with its log's last lines when the error is one line."""
    if "\n" in error.strip():
        return error
    tail = log_tail(folder / LOG_FILE, ERROR_LINES)
    return f"{error}; last lines of its log:\n{tail}" if tail else f"{error} (its log is empty)"


def alive(pid: int, folder: Path | None = None) -> bool:
    """Whether `pid` runs and (where /proc tells) is this job's process, not a reused pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if not proc.is_dir():
        return True  # no /proc (macOS): the signal test is all there is
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X") and (folder is None or str(folder) in command)


def read_progress(path: Path) -> list[dict[str, Any]]:
    """The records of a progress.jsonl; a line still being written is skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _job(row: Mapping[str, Any]) -> Job:
    folder = Path(row["folder"])
    launch = read_json_object(folder / LAUNCH_FILE) or {}
    return Job(
        id=row["id"],
        kind=row["kind"],
        status=row["status"],
        folder=folder,
        config=row["config"],
        pid=row["pid"],
        error=row["error"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        meta=dict(launch.get("meta") or {}),
    )


# -- watching, cancelling ------------------------------------------------------------------


def wait_for_job(
    project: Project,
    job_id: str,
    on_progress: Callable[[Job, dict[str, Any] | None], None] | None = None,
    poll_seconds: float = 0.5,
    timeout: float | None = None,
) -> Job:
    """Block until the job ends (or `timeout` passes), calling `on_progress` as it goes.

    Only the folder is read while waiting; the catalogue is opened again at the end.
    """
    job = get_job(project, job_id)
    deadline = None if timeout is None else time.monotonic() + timeout
    while job.active:
        if on_progress:
            on_progress(job, job.latest())
        if deadline is not None and time.monotonic() >= deadline:
            return job
        time.sleep(poll_seconds)
        status = observe(job.folder, job.pid)["status"]
        job = get_job(project, job.id) if status in FINAL else _with_status(job, status)
    if on_progress:
        on_progress(job, job.latest())
    return job


def _with_status(job: Job, status: str) -> Job:
    return Job(**{**job.__dict__, "status": status})


def cancel_job(project: Project, job_id: str) -> Job:
    """Ask a job to stop (SIGTERM through its launcher); returns it as it is now."""
    job = get_job(project, job_id)
    if not job.active:
        raise CuratorError(f"job {job.id} is already {job.status}; nothing to cancel")
    # The marker covers a launcher that has not installed its signal handler yet.
    (job.folder / CANCEL_FILE).touch()
    child = (read_json_object(job.folder / PROCESS_FILE) or {}).get("pid")
    if job.pid and alive(job.pid, job.folder):
        os.kill(job.pid, signal.SIGTERM)
    elif child and alive(child, job.folder):
        os.kill(child, signal.SIGTERM)
    return get_job(project, job.id)


def kill_job(project: Project, job_id: str) -> Job:
    """Stop a job that ignored its cancel: SIGKILL to its process groups, result recorded."""
    job = get_job(project, job_id)
    child = (read_json_object(job.folder / PROCESS_FILE) or {}).get("pid")
    for pid in (job.pid, child):
        if pid and alive(pid, job.folder):
            kill_group(pid, signal.SIGKILL)
    if not (job.folder / RESULT_FILE).exists():
        _write_job_file(job.folder / RESULT_FILE, {"status": "cancelled"})
    return get_job(project, job.id)


def follow_log(job: Job, poll_seconds: float = 0.5) -> Iterator[str]:
    """The job's log, then what is appended to it, until the job has ended."""
    path = job.folder / LOG_FILE
    offset = 0
    while True:
        finished = not _any_alive(job)  # the launcher logs its last lines after the job
        chunk = _read_from(path, offset)
        offset += len(chunk)
        if chunk:
            yield chunk.decode("utf-8", errors="replace")
        if finished:
            return
        time.sleep(poll_seconds)


def _any_alive(job: Job) -> bool:
    child = (read_json_object(job.folder / PROCESS_FILE) or {}).get("pid")
    return any(pid and alive(pid, job.folder) for pid in (job.pid, child))


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read()
    except FileNotFoundError:
        return b""


# -- small helpers -----------------------------------------------------------------------------


def _write_job_file(path: Path, value: Mapping[str, Any]) -> None:
    # Configs hold paths and dates: written as their text.
    write_json_atomically(path, value, default=str)


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
