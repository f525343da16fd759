"""A job folder's files (job.json in; progress.jsonl, result.json out) and SIGTERM as cancel."""

from __future__ import annotations

import json
import os
import signal
import time
import traceback
from pathlib import Path
from typing import Any

ERROR_LINES = 20
CANCELLED_EXIT = 143


class JobError(Exception):
    """A problem with the job's input that the user can fix; its message is the whole story."""


class JobCancelled(BaseException):
    """Raised where SIGTERM arrives outside the training loop (loading, exporting, generating)."""


def read_job(job_dir: Path, kind: str) -> dict[str, Any]:
    """The job's config, after checking that job.json is there and is a `kind` job."""
    path = job_dir / "job.json"
    if not path.is_file():
        raise JobError(f"{path}: no such file")
    try:
        job = json.loads(path.read_text())
    except ValueError as error:
        raise JobError(f"{path}: not valid JSON ({error})") from None
    if job.get("kind") != kind:
        raise JobError(f"{path}: kind is {job.get('kind')!r}, expected {kind!r}")
    config = job.get("config")
    if not isinstance(config, dict):
        raise JobError(f"{path}: `config` must be an object")
    return config


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write `data` so that a reader sees either the old file or the whole new one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def write_result(job_dir: Path, status: str, **fields: Any) -> None:
    """result.json, the last thing a job writes."""
    write_json_atomically(job_dir / "result.json", {"status": status, **fields})


def error_tail(error: BaseException) -> str:
    """The last lines of the traceback; a JobError is the user's problem, so only its message."""
    if isinstance(error, JobError):
        return str(error)
    lines = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return "\n".join(lines.rstrip().splitlines()[-ERROR_LINES:])


class Progress:
    """Appends one JSON object per line to progress.jsonl, flushed so a reader sees it at once."""

    def __init__(self, job_dir: Path, name: str = "progress.jsonl") -> None:
        self.path = job_dir / name

    def write(self, **fields: Any) -> None:
        with self.path.open("a") as stream:
            stream.write(json.dumps(fields) + "\n")
            stream.flush()


class Cancellation:
    """Turns SIGTERM into a clean stop.

    Inside the training loop the flag is enough: the trainer finishes the step, a callback writes
    a checkpoint and Lightning stops. Anywhere else the handler raises JobCancelled at once.
    DataLoader workers inherit the handler; they ignore the signal and end with their parent.
    """

    def __init__(self) -> None:
        self.requested = False
        self.in_training_loop = False
        self._main_pid = os.getpid()

    def install(self) -> Cancellation:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def _on_sigterm(self, signum: int, frame: Any | None) -> None:
        if os.getpid() != self._main_pid:
            return
        if not self.requested:
            print("SIGTERM received: stopping", flush=True)
        self.requested = True
        if not self.in_training_loop:
            raise JobCancelled()


class Clock:
    """Elapsed time and the ETA of the steps left, from the steps done in this process."""

    def __init__(self, first_step: int) -> None:
        self.start = time.monotonic()
        self.first_step = first_step

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def eta(self, step: int, total: int) -> float | None:
        done = step - self.first_step
        if done <= 0:
            return None
        return self.elapsed() / done * max(total - step, 0)
