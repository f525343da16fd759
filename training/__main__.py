"""Entry point: `python -m training train|generate|encode JOB_DIR`, `python -m training tiny OUT`.

Run with the folder that contains training/ on PYTHONPATH and .venv-train's Python. A job writes
result.json last: succeeded with its outputs, failed with the error's last lines, or cancelled
(SIGTERM; exit status 143).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .jobfiles import CANCELLED_EXIT, Cancellation, JobCancelled, error_tail, read_job, write_result


def offline() -> None:
    """No hub downloads and no idle compile workers (train.py turns wandb off unless asked)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # stable-audio-tools wraps flex attention in torch.compile at import, which starts a pool
    # of compile workers (each importing torch) that these jobs never use.
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")


def first_process() -> bool:
    """Whether this is the run's first process (Lightning starts one per device and machine)."""
    rank = os.environ.get("RANK")
    if rank is not None:
        return rank == "0"
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


def run_job(job_dir: Path, kind: str, cancel: Cancellation) -> int:
    """Run a train, generate or encode job and write result.json, whatever happens."""
    try:
        config = read_job(job_dir, kind)
        if kind == "train":
            from .train import run_train

            outputs = run_train(job_dir, config, cancel)
        elif kind == "encode":
            from .encode import run_encode

            outputs = run_encode(job_dir, config, cancel)
        else:
            from .generate import run_generate

            outputs = run_generate(job_dir, config)
    except JobCancelled:
        if first_process():
            write_result(job_dir, "cancelled")
        print("cancelled", flush=True)
        return CANCELLED_EXIT
    except BaseException as error:
        tail = error_tail(error)
        if first_process():
            write_result(job_dir, "failed", error=tail)
        print(f"failed: {tail}", file=sys.stderr, flush=True)
        return 1
    if first_process():
        write_result(job_dir, "succeeded", outputs=outputs)
    print("succeeded", flush=True)
    return 0


def run_tiny(out_dir: Path) -> int:
    from .tiny import build_tiny

    build_tiny(out_dir)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    parser.add_argument("command", choices=("train", "generate", "encode", "tiny"))
    parser.add_argument(
        "folder", type=Path, help="the job folder (train, generate, encode) or OUT_DIR (tiny)"
    )
    args = parser.parse_args(argv)
    offline()
    if args.command == "tiny":
        return run_tiny(args.folder)
    cancel = Cancellation().install()
    job_dir = args.folder.resolve()
    print(f"{args.command} job {job_dir} (pid {os.getpid()})", flush=True)
    return run_job(job_dir, args.command, cancel)


if __name__ == "__main__":
    sys.exit(main())
