"""Jobs: launched detached, watched, cancelled, queued and re-attached through their folder.

These tests run a small stand-in for the training entry point (it speaks the same files:
progress.jsonl, result.json, SIGTERM) so the process handling is tested in a second each;
tests/test_training.py runs the real training code in .venv-train through `curator`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from curator.errors import CuratorError
from curator.jobs.config import generate_config, parse_lora, resume_config, train_config
from curator.jobs.manage import (
    alive,
    cancel_job,
    get_job,
    list_jobs,
    repository_root,
    start_job,
    train_python,
    training_root,
    wait_for_job,
)
from curator.project import Project, open_project
from curator.settings import TrainingSettings

# What the stand-in does is in its job.json config: steps, seconds per step, how to end.
STAND_IN = r"""
import json, signal, sys, time
from pathlib import Path

command, folder = sys.argv[1], Path(sys.argv[2])
config = json.loads((folder / "job.json").read_text())["config"]
stop = []
if not config.get("ignore_term"):
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
else:
    signal.signal(signal.SIGTERM, lambda *a: print("ignoring SIGTERM", flush=True))
print("stand-in", command, "starts", flush=True)
steps = config.get("steps", 3)
with open(folder / "progress.jsonl", "a") as progress:
    step = 0
    while step < steps or steps < 0:
        if stop:
            (folder / "result.json").write_text(json.dumps({"status": "cancelled"}))
            sys.exit(0)
        time.sleep(config.get("step_seconds", 0.05))
        step += 1
        record = {"step": step, "total_steps": steps, "epoch": 0, "loss": 1.0 / step,
                  "elapsed_s": 0.1 * step, "eta_s": 0.1 * (steps - step)}
        progress.write(json.dumps(record) + "\n")
        progress.flush()
if config.get("crash"):
    print("Traceback (most recent call last):\nRuntimeError: the stand-in crashed", flush=True)
    sys.exit(3)
if config.get("fail"):
    (folder / "result.json").write_text(json.dumps({"status": "failed", "error": config["fail"]}))
    sys.exit(1)
(folder / "audio").mkdir(exist_ok=True)
(folder / "audio" / "00-a-beat.wav").write_bytes(b"RIFF")
(folder / "audio" / "00-a-beat.json").write_text("{}")
(folder / "result.json").write_text(json.dumps({"status": "succeeded", "outputs": {"n": 1}}))
"""


@pytest.fixture
def stand_in(tmp_path: Path) -> list[str]:
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    return [sys.executable, str(script)]


@pytest.fixture
def jobs_project(project: Project, tmp_path: Path) -> Project:
    return configure(project, lock_dir=str(tmp_path / "slots"), cancel_grace_seconds=2.0)


def configure(project: Project, **training: Any) -> Project:
    """The project with these [training] values written into its curator.toml."""
    path = project.root / "curator.toml"
    before, table = path.read_text().split("[training]\n")
    for key, value in training.items():
        table = table.replace(f"\n{key} = ", f"\n# was: {key} = ", 1)
        table = (
            table.replace(f"{key} = ", f"# was: {key} = ", 1) if table.startswith(key) else table
        )
        table = f"{key} = {json.dumps(value)}\n{table}"
    path.write_text(f"{before}[training]\n{table}")
    return open_project(project.root)


def run_stand_in(project: Project, stand_in: list[str], kind: str = "train", **config: Any):
    config = {"device": "cpu", **config}
    return start_job(project, kind, config, argv=[*stand_in, kind, "{folder}"])


def test_a_job_runs_detached_and_reports_progress(jobs_project: Project, stand_in) -> None:
    job = run_stand_in(jobs_project, stand_in, steps=4)
    assert job.status == "queued" and job.pid
    seen: list[int] = []
    done = wait_for_job(jobs_project, job.id, lambda j, p: p and seen.append(p["step"]), 0.05)
    assert done.status == "succeeded", done.error
    assert [r["step"] for r in done.progress()] == [1, 2, 3, 4]
    assert done.progress()[-1]["loss"] == pytest.approx(0.25)
    assert seen and seen[-1] == 4
    assert "stand-in train starts" in done.log_tail()
    assert done.outputs() == {"n": 1}
    assert done.started_at and done.finished_at and done.started_at <= done.finished_at
    # The launcher ran in its own session: not in this test's process group.
    assert os.getpgid(0) != int(json.loads((done.folder / "process.json").read_text())["pid"])


def test_generated_audio_is_copied_to_the_out_folder(
    jobs_project: Project, stand_in, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    config = {"device": "cpu", "steps": 1}
    job = start_job(
        jobs_project, "generate", config, copy_to=out, argv=[*stand_in, "generate", "{folder}"]
    )
    assert wait_for_job(jobs_project, job.id, poll_seconds=0.05).status == "succeeded"
    assert sorted(p.name for p in out.iterdir()) == ["00-a-beat.json", "00-a-beat.wav"]


def test_a_job_outlives_the_process_that_started_it(jobs_project: Project, stand_in) -> None:
    # Another process starts the job and exits at once, as a closed app or terminal would.
    code = (
        "import sys; from curator.project import open_project; from curator.jobs.manage import "
        "start_job; p = open_project(__import__('pathlib').Path(sys.argv[1])); "
        "print(start_job(p, 'train', {'device': 'cpu', 'steps': -1}, argv=sys.argv[2:]).id)"
    )
    started = subprocess.run(
        [sys.executable, "-c", code, str(jobs_project.root), *stand_in, "train", "{folder}"],
        capture_output=True,
        text=True,
        check=True,
    )
    job_id = started.stdout.strip()
    # Listing re-attaches: it reads the folder and finds the job running without its starter.
    wait_for_process(get_job(jobs_project, job_id).folder)
    (job,) = list_jobs(jobs_project)
    assert job.id == job_id and job.status == "running"
    cancel_job(jobs_project, job_id)
    wait_until(lambda: list_jobs(jobs_project)[0].status == "cancelled")


def test_a_job_killed_with_its_launcher_is_failed_on_the_next_listing(
    jobs_project: Project, stand_in
) -> None:
    job = run_stand_in(jobs_project, stand_in, steps=-1)
    child = wait_for_process(job.folder)
    wait_until(lambda: get_job(jobs_project, job.id).latest() is not None)
    # As a machine restart would: everything gone at once, nobody wrote result.json.
    os.killpg(job.pid, signal.SIGKILL)
    os.killpg(child, signal.SIGKILL)
    wait_until(lambda: not alive(child) and not alive(job.pid))
    (found,) = list_jobs(jobs_project)
    assert found.status == "failed"
    assert "processes are gone" in found.error and "stand-in train starts" in found.error


def test_cancel_stops_a_running_job(jobs_project: Project, stand_in) -> None:
    job = run_stand_in(jobs_project, stand_in, steps=-1)
    child = wait_for_process(job.folder)
    assert get_job(jobs_project, job.id).status == "running"
    cancel_job(jobs_project, job.id)
    done = wait_for_job(jobs_project, job.id, poll_seconds=0.05, timeout=20)
    assert done.status == "cancelled"
    wait_until(lambda: not alive(child) and not alive(job.pid))
    with pytest.raises(CuratorError, match="already cancelled"):
        cancel_job(jobs_project, job.id)


def test_a_job_that_ignores_cancel_is_killed_after_the_grace_period(
    jobs_project: Project, stand_in
) -> None:
    project = configure(jobs_project, cancel_grace_seconds=0.5)
    job = run_stand_in(project, stand_in, steps=-1, ignore_term=True)
    child = wait_for_process(job.folder)
    cancel_job(project, job.id)
    done = wait_for_job(project, job.id, poll_seconds=0.05, timeout=20)
    assert done.status == "cancelled"
    assert not alive(child)
    assert "did not stop within 0.5 s: killed" in done.log_tail()


def test_a_crash_is_failed_with_the_last_lines_of_the_log(jobs_project: Project, stand_in) -> None:
    job = run_stand_in(jobs_project, stand_in, steps=1, crash=True)
    done = wait_for_job(jobs_project, job.id, poll_seconds=0.05)
    assert done.status == "failed"
    assert "exit code 3" in done.error and "RuntimeError: the stand-in crashed" in done.error


def test_gpu_jobs_wait_for_a_free_slot(jobs_project: Project, stand_in) -> None:
    first = run_stand_in(jobs_project, stand_in, device="cuda", steps=-1)
    wait_for_process(first.folder)
    second = run_stand_in(jobs_project, stand_in, device="cuda", steps=1)
    cpu = run_stand_in(jobs_project, stand_in, steps=1)  # needs no GPU: never queued
    assert wait_for_job(jobs_project, cpu.id, poll_seconds=0.05).status == "succeeded"
    assert get_job(jobs_project, second.id).status == "queued"
    assert "waiting for a GPU slot" in get_job(jobs_project, second.id).log_tail()
    cancel_job(jobs_project, first.id)
    assert wait_for_job(jobs_project, second.id, poll_seconds=0.05).status == "succeeded"
    first_end = (first.folder / "result.json").stat().st_mtime
    second_start = (second.folder / "process.json").stat().st_mtime
    assert second_start >= first_end
    assert get_job(jobs_project, first.id).status == "cancelled"


def test_two_gpu_slots_run_two_jobs_at_once(jobs_project: Project, stand_in) -> None:
    project = configure(jobs_project, max_gpu_jobs=2)
    gpu = {"device": "cuda", "steps": -1}
    jobs = [run_stand_in(project, stand_in, **gpu) for _ in range(2)]
    for job in jobs:
        wait_for_process(job.folder)
    assert {get_job(project, job.id).status for job in jobs} == {"running"}
    for job in jobs:
        cancel_job(project, job.id)
        assert wait_for_job(project, job.id, poll_seconds=0.05).status == "cancelled"


def test_a_queued_job_can_be_cancelled(jobs_project: Project, stand_in) -> None:
    first = run_stand_in(jobs_project, stand_in, device="cuda", steps=-1)
    wait_for_process(first.folder)
    second = run_stand_in(jobs_project, stand_in, device="cuda", steps=1)
    wait_until(lambda: "waiting for a GPU slot" in get_job(jobs_project, second.id).log_tail())
    cancel_job(jobs_project, second.id)
    assert wait_for_job(jobs_project, second.id, poll_seconds=0.05).status == "cancelled"
    assert not (second.folder / "process.json").exists()  # it never started
    cancel_job(jobs_project, first.id)
    assert wait_for_job(jobs_project, first.id, poll_seconds=0.05).status == "cancelled"


def test_cli_lists_shows_and_prints_logs(jobs_project: Project, stand_in, run_cli) -> None:
    job = run_stand_in(jobs_project, stand_in, steps=2, fail="CUDA out of memory")
    wait_for_job(jobs_project, job.id, poll_seconds=0.05)
    root = str(jobs_project.root)
    listing = json.loads(run_cli("jobs", "--project", root, "--json").output)
    assert [(j["id"], j["status"]) for j in listing] == [(job.id, "failed")]
    assert job.id in run_cli("jobs", "list", "--project", root).output
    shown = run_cli("jobs", "show", job.id[:-2], "--project", root).output
    assert "status: failed" in shown and "CUDA out of memory" in shown
    assert "stand-in train starts" in shown  # the log's last lines come with a one-line error
    assert "stand-in train starts" in run_cli("jobs", "logs", job.id, "--project", root).output
    followed = run_cli("jobs", "logs", job.id, "--follow", "--project", root).output
    assert "stand-in train starts" in followed
    missing = run_cli("jobs", "show", "nope", "--project", root, expect=1).output
    assert "no job 'nope'" in missing


def test_cli_cancel_waits_for_the_end(jobs_project: Project, stand_in, run_cli) -> None:
    job = run_stand_in(jobs_project, stand_in, steps=-1)
    wait_for_process(job.folder)
    output = run_cli("jobs", "cancel", job.id, "--project", str(jobs_project.root)).output
    assert f"job {job.id} cancelled" in output
    again = run_cli("jobs", "cancel", job.id, "--project", str(jobs_project.root), expect=1)
    assert "already cancelled" in again.output


# -- where .venv-train is, and what a job is asked to do ----------------------------------


def test_training_root_holds_the_training_package() -> None:
    assert (training_root() / "training" / "__init__.py").is_file()


def test_the_default_training_environment_is_looked_for_in_the_repository() -> None:
    # `make setup` builds .venv-train beside pyproject.toml; the package move into
    # curator/jobs/ once made this the curator/ folder.
    assert (repository_root() / "pyproject.toml").is_file()


def test_a_missing_training_environment_is_named(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("CURATOR_TRAIN_PYTHON", raising=False)
    missing = tmp_path / "nowhere" / "python"
    with pytest.raises(CuratorError, match="make setup") as error:
        train_python(TrainingSettings(python=str(missing)))
    assert str(missing) in str(error.value) and "[training] python" in str(error.value)
    monkeypatch.setenv("CURATOR_TRAIN_PYTHON", str(missing))
    with pytest.raises(CuratorError, match="CURATOR_TRAIN_PYTHON"):
        train_python(TrainingSettings())
    monkeypatch.setenv("CURATOR_TRAIN_PYTHON", sys.executable)
    assert train_python(TrainingSettings()) == Path(sys.executable)


def model_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    export = tmp_path / "export"
    export.mkdir()
    (export / "dataset_config.json").write_text("{}\n")
    config = tmp_path / "model_config.json"
    config.write_text(json.dumps({"model_type": "diffusion_cond"}))
    ckpt = tmp_path / "model.safetensors"
    ckpt.write_bytes(b"weights")
    return export, config, ckpt


def test_train_config_checks_its_inputs(project: Project, tmp_path: Path) -> None:
    export, config, ckpt = model_files(tmp_path)
    made = train_config(
        project, export_dir=export, model_config=config, ckpt=ckpt, lora_rank=8, steps=10
    )
    assert made["lora"] == {"rank": 8, "alpha": 8.0}
    assert made["export_dir"] == str(export) and made["resume"] is False
    assert made["precision"] == project.settings.training.precision
    assert made["wandb"] is False
    with pytest.raises(CuratorError, match="not both"):
        train_config(project, export_dir=export, model_config=config, steps=1, epochs=1)
    with pytest.raises(CuratorError, match="--steps N or --epochs N"):
        train_config(project, export_dir=export, model_config=config)
    with pytest.raises(CuratorError, match="no such export folder"):
        train_config(project, export_dir=tmp_path / "none", model_config=config, steps=1)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CuratorError, match=r"bad\.json: not a JSON model config"):
        train_config(project, export_dir=export, model_config=tmp_path / "bad.json", steps=1)
    with pytest.raises(CuratorError, match="no such checkpoint"):
        train_config(project, export_dir=export, model_config=config, ckpt=tmp_path / "x", steps=1)


def test_resume_takes_the_last_checkpoint(jobs_project: Project, stand_in, tmp_path) -> None:
    export, config, _ = model_files(tmp_path)
    made = train_config(jobs_project, export_dir=export, model_config=config, steps=2)
    job = start_job(
        jobs_project, "train", {**made, "device": "cpu"}, argv=[*stand_in, "x", "{folder}"]
    )
    wait_for_job(jobs_project, job.id, poll_seconds=0.05)
    with pytest.raises(CuratorError, match="saved no checkpoint yet"):
        resume_config(jobs_project, job.id)
    (job.folder / "checkpoints").mkdir()
    for step in (5, 10):
        (job.folder / "checkpoints" / f"step-{step:08d}.ckpt").write_bytes(b"")
    resumed = resume_config(jobs_project, job.id, steps=20)
    assert resumed["resume"] is True and resumed["steps"] == 20
    assert resumed["resume_from"].endswith("step-00000010.ckpt")
    assert resumed["export_dir"] == made["export_dir"]


def test_generate_config_and_lora_strengths(project: Project, tmp_path: Path) -> None:
    _, config, ckpt = model_files(tmp_path)
    assert parse_lora("a/b.safetensors:0.5") == (Path("a/b.safetensors"), 0.5)
    assert parse_lora("a/b.safetensors") == (Path("a/b.safetensors"), 1.0)
    made = generate_config(
        project,
        model_config=config,
        ckpt=ckpt,
        loras=[(ckpt, 0.5)],
        prompts=["trap beat", " "],
        seconds=2,
        steps=4,
    )
    assert made["prompts"] == ["trap beat"] and made["loras"] == [
        {"path": str(ckpt), "strength": 0.5}
    ]
    with pytest.raises(CuratorError, match="at least one --prompt"):
        generate_config(project, model_config=config, ckpt=ckpt, prompts=[], seconds=1, steps=1)


def test_cli_train_says_what_is_missing(project: Project, tmp_path: Path, run_cli, monkeypatch):
    root = str(project.root)
    no_export = run_cli("train", "--project", root, "--steps", 1, expect=2)
    assert "--export is needed (or --resume JOB_ID)" in no_export.output
    export, config, ckpt = model_files(tmp_path)
    monkeypatch.setenv("CURATOR_TRAIN_PYTHON", str(tmp_path / "no-venv" / "python"))
    args = ("--export", export, "--model-config", config, "--ckpt", ckpt, "--steps", 1)
    missing = run_cli("train", "--project", root, *args, expect=1)
    assert "no-venv/python: no training environment there" in missing.output
    assert "make setup" in missing.output
    assert "no jobs yet" in run_cli("jobs", "--project", root).output  # none recorded
    resume = run_cli("train", "--project", root, "--resume", "nope", expect=1)
    assert "no job 'nope'" in resume.output


# -- helpers -------------------------------------------------------------------------------


def wait_for_process(folder: Path, timeout: float = 20) -> int:
    """The job's training process id, once the launcher has started it."""
    path = folder / "process.json"
    wait_until(path.exists, timeout)
    return int(json.loads(path.read_text())["pid"])


def wait_until(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        time.sleep(0.02)


# -- the real training code in .venv-train, through `curator` ---------------------------------

TRAIN_ENV = pytest.mark.train_env
# One thread each, and no pool of torch.compile workers: nothing here compiles, and on a
# small machine every extra process slows the others.
QUIET = {"OMP_NUM_THREADS": "1", "TORCHINDUCTOR_COMPILE_THREADS": "1"}
PROMPTS = ("A dark trap beat at 140 BPM in F# minor, with 808", "A melancholic soul beat")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Stable Audio Open-shaped model (DiT, oobleck, T5 from a local model_path)."""
    out = tmp_path_factory.mktemp("tiny")
    python = train_python(TrainingSettings())
    env = {**os.environ, "PYTHONPATH": str(training_root()), **QUIET}
    subprocess.run(
        [str(python), "-m", "training", "tiny", str(out)],
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


@pytest.fixture(scope="module")
def train_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    from curator.project import init_project

    project = init_project(tmp_path_factory.mktemp("train") / "project")
    return configure(project, device="cpu", num_workers=1, batch_size=1, cancel_grace_seconds=60.0)


@pytest.fixture(scope="module")
def tiny_export(train_project: Project, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `curator export` of three ingested demo beats, at the tiny model's 16 kHz."""
    from click.testing import CliRunner

    from curator.catalogue.ingest import ingest
    from curator.cli import cli
    from curator.demo import render_demo_dataset

    beats = tmp_path_factory.mktemp("beats")
    render_demo_dataset(beats, 3, seed=5)
    ingest(train_project, [beats])
    out = tmp_path_factory.mktemp("exports") / "set-1"
    args = ["export", str(out), "--project", str(train_project.root), "--sample-rate", "16000"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def curator_cli(*args: Any) -> list[str]:
    return [sys.executable, "-m", "curator.cli", *map(str, args)]


def train_args(project: Project, tiny: Path, export: Path, *extra: Any) -> list[str]:
    return curator_cli(
        "train",
        "--project",
        project.root,
        "--export",
        export,
        "--model-config",
        tiny / "model_config.json",
        *extra,
    )


@pytest.fixture(scope="module")
def fine_tunes(train_project: Project, tiny: Path, tiny_export: Path) -> dict[str, Any]:
    """A full fine-tune (--wait), a LoRA one, a long one to cancel, and one from a checkpoint
    that does not fit the model (--wait), all started at once: each .venv-train start costs
    seconds of imports."""
    env = {**os.environ, **QUIET, "COLUMNS": "200"}
    weights = tiny / "model.safetensors"
    started = {
        "full": train_args(
            train_project,
            tiny,
            tiny_export,
            "--ckpt",
            weights,
            "--steps",
            2,
            "--checkpoint-every",
            1,
            "--wait",
        ),
        "lora": train_args(
            train_project,
            tiny,
            tiny_export,
            "--ckpt",
            weights,
            "--lora-rank",
            2,
            "--lora-alpha",
            4,
            "--steps",
            2,
        ),
        # Long enough to be cancelled while it runs (test_cancel_...), then resumed.
        "long": train_args(
            train_project,
            tiny,
            tiny_export,
            "--ckpt",
            weights,
            "--steps",
            10000,
            "--checkpoint-every",
            1000,
        ),
        # The T5 encoder's weights: not one key of them belongs to the diffusion model.
        "refused": train_args(
            train_project,
            tiny,
            tiny_export,
            "--ckpt",
            tiny / "t5" / "model.safetensors",
            "--steps",
            2,
            "--wait",
        ),
    }
    processes = {
        name: subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, argv in started.items()
    }
    ended = {name: (p, *p.communicate(timeout=600)) for name, p in processes.items()}
    ids = {name: out.splitlines()[0] for name, (_, out, _) in ended.items()}
    lora = wait_for_job(train_project, ids["lora"], timeout=600)
    return {"ids": ids, "ended": ended, "lora": lora}


@TRAIN_ENV
@pytest.mark.slow
def test_cancel_a_running_fine_tune_then_resume_it(
    train_project: Project, fine_tunes, run_cli, run_curator
) -> None:
    job_id = fine_tunes["ids"]["long"]
    wait_until(lambda: get_job(train_project, job_id).latest() is not None, timeout=600)
    cancelled = run_cli("jobs", "cancel", job_id, "--project", train_project.root)
    assert f"job {job_id} cancelled" in cancelled.output
    job = get_job(train_project, job_id)
    assert job.status == "cancelled"
    # Stopping saved where it was, so nothing trained is lost.
    last_step = job.progress()[-1]["step"]
    assert job.checkpoints()[-1].name == f"step-{last_step:08d}.ckpt"
    assert last_step < 10000

    resumed = run_curator(
        "train",
        "--project",
        train_project.root,
        "--resume",
        job_id[:-1],
        "--steps",
        last_step + 2,
        "--wait",
        timeout=600,
        env={**os.environ, **QUIET},
    )
    assert resumed.returncode == 0, resumed.stderr
    again = get_job(train_project, resumed.stdout.splitlines()[0])
    assert again.status == "succeeded" and again.config["resume"] is True
    assert again.config["resume_from"] == str(job.checkpoints()[-1])
    assert [r["step"] for r in again.progress()] == [last_step + 1, last_step + 2]
    assert "resuming from" in again.log_tail(200)


@TRAIN_ENV
@pytest.mark.slow
def test_a_full_fine_tune_of_a_few_steps(train_project: Project, fine_tunes) -> None:
    process, _, err = fine_tunes["ended"]["full"]
    assert process.returncode == 0, err
    job = get_job(train_project, fine_tunes["ids"]["full"])
    assert job.status == "succeeded"
    assert [r["step"] for r in job.progress()] == [1, 2]
    assert all(r["loss"] > 0 and r["total_steps"] == 2 for r in job.progress())
    assert Path(job.outputs()["model"]) == job.folder / "model.safetensors"
    assert (job.folder / "model.safetensors").stat().st_size > 100_000
    assert [p.name for p in job.checkpoints()] == ["step-00000001.ckpt", "step-00000002.ckpt"]
    assert "succeeded" in err  # --wait reported the end


@TRAIN_ENV
@pytest.mark.slow
def test_a_lora_fine_tune(train_project: Project, fine_tunes) -> None:
    job = fine_tunes["lora"]
    assert job.status == "succeeded", job.error
    assert job.config["lora"] == {"rank": 2, "alpha": 4.0}
    lora = job.folder / "lora.safetensors"
    assert Path(job.outputs()["lora"]) == lora
    # Adapters only: far smaller than the model they adapt.
    assert (
        0
        < lora.stat().st_size
        < (job.folder.parent / fine_tunes["ids"]["full"] / "model.safetensors").stat().st_size / 2
    )


@TRAIN_ENV
@pytest.mark.slow
def test_a_checkpoint_with_mismatched_keys_is_refused(
    train_project: Project, fine_tunes, run_cli
) -> None:
    process, _, err = fine_tunes["ended"]["refused"]
    assert process.returncode == 1
    assert "does not match the model" in err  # --wait printed the error's last lines
    job_id = fine_tunes["ids"]["refused"]
    shown = run_cli("jobs", "show", job_id, "--project", train_project.root).output
    assert "status: failed" in shown
    assert "does not match the model" in shown and "missing keys" in shown
    assert not (get_job(train_project, job_id).folder / "model.safetensors").exists()


@TRAIN_ENV
@pytest.mark.slow
def test_generation_from_the_fine_tunes(
    train_project: Project, fine_tunes, tiny: Path, tmp_path: Path, run_curator, run_cli
) -> None:
    import soundfile as sf

    full = get_job(train_project, fine_tunes["ids"]["full"])
    out = tmp_path / "generated"
    ended = run_curator(
        "generate",
        "--project",
        train_project.root,
        "--model-config",
        tiny / "model_config.json",
        "--ckpt",
        full.folder / "model.safetensors",
        "--lora",
        f"{fine_tunes['lora'].folder / 'lora.safetensors'}:0.5",
        *[a for p in PROMPTS for a in ("--prompt", p)],
        "--seconds",
        1,
        "--steps",
        2,
        "--seed",
        7,
        "--out",
        out,
        "--wait",
        timeout=600,
        env={**os.environ, **QUIET},
    )
    assert ended.returncode == 0, ended.stderr
    job = get_job(train_project, ended.stdout.splitlines()[0])
    assert job.status == "succeeded"
    wavs = sorted(out.glob("*.wav"))
    assert [p.name for p in wavs] == [p.name for p in job.audio_files()]
    assert len(wavs) == 2 and wavs[0].name.startswith("01-a-dark-trap-beat")
    info = sf.info(str(wavs[0]))
    assert info.samplerate == 16000 and info.duration == pytest.approx(1.0, abs=0.01)
    produced = json.loads(wavs[0].with_suffix(".json").read_text())
    assert produced["prompt"] == PROMPTS[0] and produced["seed"] == 7
    assert produced["loras"][0]["strength"] == 0.5
    assert produced["ckpt"] == str(full.folder / "model.safetensors")
    items = {(r["item"], r["items"]) for r in job.progress()}
    assert items == {(1, 2), (2, 2)}
    # The project's analyzer measured what came out against what the prompt asked for.
    scored = run_cli("jobs", "adherence", job.id, "--project", train_project.root, "--json")
    (adherence,) = json.loads(scored.output)
    assert adherence["plugins"] == ["essentia"]
    summary = {row["measure"]: row["clips"] for row in adherence["summary"]}
    assert summary == {"tempo": 1, "key": 1}  # only the first prompt names a BPM and key
