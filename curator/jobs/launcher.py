"""The detached process that queues one job for a GPU slot, runs it, and records how it ended.

`python -m curator.jobs.launcher JOB_DIR` reads JOB_DIR/launch.json, written by
curator.jobs.manage.start_job:

    {"argv": [...], "env": {...}, "gpu_slots": 1, "gpu_needed": 1, "lock_dir": "...",
     "grace_seconds": 30.0, "copy_to": null}

It runs in its own session, so closing the app or the terminal does not stop it, and it
imports nothing but the standard library (and curator.files, which holds to that), so it
starts in a few milliseconds.

The queue: `gpu_slots` lock files (slot-0.lock, ...) in `lock_dir`, shared by every project
on the machine. The launcher waits until it holds an exclusive flock on `gpu_needed` of them
(the job's GPUs, all the slots at most), then starts the job with the locked file descriptors
inherited, so the slot stays taken while
either process lives and is freed by the kernel when both are gone, however they end.
A job that needs no GPU (gpu_slots 0) starts at once.

Cancelling is SIGTERM to the launcher: it passes the signal on to the job, which stops at
the next step and writes result.json {"status": "cancelled"}; a job still running after
`grace_seconds` is killed with its whole process group (data loader workers included).
Whatever happens, result.json exists when the launcher ends: a job that died without
writing one is recorded as failed with the last lines of its log.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from curator.files import read_json_object, write_json_atomically

LAUNCH_FILE = "launch.json"
PROCESS_FILE = "process.json"
RESULT_FILE = "result.json"
LOG_FILE = "log.txt"
CANCEL_FILE = "cancel-requested"
SLOT_POLL_SECONDS = 0.5
LOG_TAIL_LINES = 20


class Launcher:
    """One job's launcher: slot, child process, signals, result."""

    def __init__(self, job_dir: Path) -> None:
        self.job_dir = job_dir
        self.launch: dict[str, Any] = json.loads((job_dir / LAUNCH_FILE).read_text())
        self.child: subprocess.Popen[bytes] | None = None
        self.cancelled = False
        self.kill_at: float | None = None

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_cancel)
        signal.signal(signal.SIGINT, self._on_cancel)
        # A cancel that came before the handler was in place left its marker.
        if (self.job_dir / CANCEL_FILE).exists():
            self.cancelled = True
        slots = self._wait_for_slots()
        if self.cancelled:
            return self._finish(None)
        self.child = self._start(slots)
        for slot in slots:
            os.close(slot)  # the child holds the locks now
        return self._finish(self._wait())

    # -- the queue -----------------------------------------------------------------------

    def _wait_for_slots(self) -> list[int]:
        """Locks on as many slots as the job has GPUs (all of them at most), taken together."""
        slots = int(self.launch.get("gpu_slots", 0))
        if slots <= 0:
            return []
        needed = min(max(int(self.launch.get("gpu_needed", 1)), 1), slots)
        lock_dir = Path(self.launch["lock_dir"])
        lock_dir.mkdir(parents=True, exist_ok=True)
        said = False
        while not self.cancelled:
            held: list[int] = []
            for number in range(slots):
                fd = _try_lock(lock_dir / f"slot-{number}.lock")
                if fd is not None:
                    held.append(fd)
                if len(held) == needed:
                    _say(f"got {needed} GPU slot{'s' if needed > 1 else ''} of {slots}")
                    return held
            for fd in held:  # not enough free: hold none, so two jobs never block each other
                os.close(fd)
            if not said:
                _say(
                    f"waiting for {needed} GPU slot{'s' if needed > 1 else ''}: of {slots}, "
                    f"too few are free of other jobs ({lock_dir})"
                    if needed > 1
                    else f"waiting for a GPU slot: all {slots} in use by other jobs ({lock_dir})"
                )
                said = True
            time.sleep(SLOT_POLL_SECONDS)
        return []

    # -- the job ---------------------------------------------------------------------------

    def _start(self, slots: list[int]) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.launch.get("env", {})}
        child = subprocess.Popen(
            self.launch["argv"],
            cwd=self.job_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sys.stdout,
            stderr=subprocess.STDOUT,
            process_group=0,  # its own group: killing it takes its workers along
            pass_fds=tuple(slots),
        )
        write_json_atomically(
            self.job_dir / PROCESS_FILE,
            {"pid": child.pid, "launcher_pid": os.getpid(), "started_at": _now()},
        )
        return child

    def _wait(self) -> int:
        assert self.child is not None
        while True:
            try:
                return self.child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            if self.kill_at is not None and time.monotonic() >= self.kill_at:
                _say(f"the job did not stop within {self.launch['grace_seconds']} s: killed")
                kill_group(self.child.pid, signal.SIGKILL)
                self.kill_at = None

    def _on_cancel(self, signum: int, frame: Any) -> None:
        if self.cancelled:
            return
        self.cancelled = True
        if self.child is not None and self.child.poll() is None:
            _say("cancel requested: asking the job to stop")
            self.child.send_signal(signal.SIGTERM)
            self.kill_at = time.monotonic() + float(self.launch.get("grace_seconds", 30.0))

    # -- the end -------------------------------------------------------------------------

    def _finish(self, returncode: int | None) -> int:
        if self.child is not None:
            kill_group(self.child.pid, signal.SIGKILL)  # leftover workers, if any
        result_path = self.job_dir / RESULT_FILE
        result = read_json_object(result_path)
        if result is None:
            result = self._missing_result(returncode)
            write_json_atomically(result_path, result)
        if result.get("status") == "succeeded" and self.launch.get("copy_to"):
            self._copy_outputs(Path(self.launch["copy_to"]))
        return 0 if result.get("status") == "succeeded" else 1

    def _missing_result(self, returncode: int | None) -> dict[str, Any]:
        if self.cancelled:
            return {"status": "cancelled"}
        tail = log_tail(self.job_dir / LOG_FILE, LOG_TAIL_LINES)
        how = (
            f"killed by signal {-returncode}"
            if returncode is not None and returncode < 0
            else f"exit code {returncode}"
        )
        return {
            "status": "failed",
            "error": f"the job ended ({how}) without writing {RESULT_FILE}; "
            f"last lines of its log:\n{tail}",
        }

    def _copy_outputs(self, out: Path) -> None:
        """Generated audio (and what produced it) copied to the folder the user named."""
        audio = self.job_dir / "audio"
        if not audio.is_dir():
            return
        out.mkdir(parents=True, exist_ok=True)
        for path in sorted(audio.iterdir()):
            if path.is_file():
                shutil.copy2(path, out / path.name)
        _say(f"copied the generated audio to {out}")


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def kill_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def log_tail(path: Path, lines: int) -> str:
    """The last `lines` lines of a log (reading only its end: logs grow large)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


def _say(message: str) -> None:
    print(f"[curator {_now()}] {message}", flush=True)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m curator.jobs.launcher JOB_DIR", file=sys.stderr)
        return 2
    return Launcher(Path(sys.argv[1])).run()


if __name__ == "__main__":
    sys.exit(main())
