"""`curator train`, `curator generate`, `curator encode` and `curator jobs`: launch, list, watch,
cancel jobs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from curator.cli.common import (
    console,
    interruptible,
    print_json,
    project_dir_option,
    project_option,
    resolve_project,
)
from curator.curation.review import current_curator
from curator.errors import CuratorError
from curator.jobs.config import (
    encode_config,
    generate_config,
    parse_lora,
    resume_config,
    train_config,
)
from curator.jobs.manage import (
    Job,
    cancel_job,
    follow_log,
    get_job,
    kill_job,
    list_jobs,
    wait_for_job,
)
from curator.jobs.manage import start_job as launch
from curator.jobs.plan import DRY_RUN_STEPS, duration_text, plan_lines
from curator.project import Project

# Options the train, generate and encode commands share.
trust_checkpoint_option = click.option(
    "--trust-checkpoint",
    is_flag=True,
    help="Load a .ckpt that holds more than weights (full unpickling can run code in it); "
    "without it such a file is refused. Only for files whose source you trust.",
)
wait_option = click.option("--wait", is_flag=True, help="Block until it ends, showing progress.")

PATH = click.Path(path_type=Path)
EXISTING = click.Path(exists=True, path_type=Path)


@click.command()
@project_option
@click.option("--export", "export_dir", type=PATH, help="An export folder (`curator export OUT`).")
@click.option("--model-config", type=PATH, help="The base model's model_config.json.")
@click.option("--ckpt", type=PATH, help="The base weights (.ckpt or .safetensors).")
@click.option("--lora-rank", type=int, help="Train a LoRA of this rank instead of all weights.")
@click.option("--lora-alpha", type=float, help="LoRA scaling alpha (default: the rank).")
@click.option("--steps", type=click.IntRange(min=1), help="Train this many optimizer steps.")
@click.option("--epochs", type=click.IntRange(min=1), help="Or this many passes over the export.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="Clips per step (default: [training] batch_size).",
)
@click.option("--precision", help='Lightning precision: "32", "16-mixed", "bf16-mixed".')
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), help="Where to train.")
@click.option(
    "--checkpoint-every", type=click.IntRange(min=1), help="Save a checkpoint every N steps."
)
@click.option(
    "--learning-rate", type=click.FloatRange(min=0, min_open=True), help="Optimizer learning rate."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resume", "resume_job", metavar="JOB_ID", help="Continue a train job.")
@trust_checkpoint_option
@click.option(
    "--devices",
    type=click.IntRange(min=1),
    help="GPUs (or CPU processes) per machine, a process each; --batch-size is per device.",
)
@click.option("--num-nodes", type=click.IntRange(min=1), help="Machines (docs/training.md).")
@click.option("--strategy", help='Lightning strategy: "ddp", "fsdp", "deepspeed", ...')
@click.option(
    "--dry-run",
    is_flag=True,
    help=f"Run {DRY_RUN_STEPS} real steps and print the step time, peak memory, and the time "
    "and disk --steps/--epochs would take (and the seed's 35,000 steps); trains nothing.",
)
@wait_option
def train(
    project: Project, resume_job: str | None, wait: bool, dry_run: bool, **options: Any
) -> None:
    """Fine-tune a model on an export, as a job that runs detached in .venv-train.

    Prints the job id; `curator jobs show ID` follows it. With --resume JOB_ID the old
    job's settings and last checkpoint are used, and any option given here replaces its
    value. A GPU job waits while another runs ([training] max_gpu_jobs).
    """
    if resume_job:
        overrides = {k: v for k, v in options.items() if k != "seed" and v is not None}
        config = resume_config(project, resume_job, **_as_config_keys(overrides))
    else:
        for needed in ("export_dir", "model_config"):
            if options[needed] is None:
                flag = "--export" if needed == "export_dir" else "--model-config"
                raise click.UsageError(f"{flag} is needed (or --resume JOB_ID)")
        config = train_config(project, **options)
    if dry_run:
        config["dry_run"] = DRY_RUN_STEPS
    job = launch(project, "train", config, meta={"started_by": current_curator()})
    _started(job, project, wait or dry_run)
    if dry_run:
        _print_plan(get_job(project, job.id).outputs())


def _print_plan(plan: dict[str, Any]) -> None:
    for line in plan_lines(plan):
        click.echo(line)


def _as_config_keys(options: dict[str, Any]) -> dict[str, Any]:
    """CLI options as config keys (the LoRA is a table of rank and alpha)."""
    config = {k: v for k, v in options.items() if not k.startswith("lora_")}
    if "lora_rank" in options:
        rank = options["lora_rank"]
        config["lora"] = {"rank": rank, "alpha": float(options.get("lora_alpha") or rank)}
    for key in ("export_dir", "model_config", "ckpt"):
        if key in config:
            config[key] = str(Path(config[key]).expanduser().resolve())
    return config


@click.command()
@project_option
@click.option("--model-config", type=EXISTING, required=True, help="The model_config.json.")
@click.option("--ckpt", type=EXISTING, required=True, help="Weights: base or fine-tuned.")
@click.option(
    "--lora",
    "loras",
    multiple=True,
    metavar="FILE[:STRENGTH]",
    help="A LoRA to apply (repeatable); strength 1.0 unless given.",
)
@click.option("--prompt", "prompts", multiple=True, required=True, help="Repeatable.")
@click.option("--negative-prompt", default="", help="What to steer away from.")
@click.option("--seconds", type=float, required=True, help="Length of each clip.")
@click.option("--steps", type=int, required=True, help="Diffusion steps.")
@click.option("--cfg-scale", type=float, default=7.0, show_default=True)
@click.option("--sampler", help='e.g. "dpmpp-3m-sde" (default: the library\'s, "euler").')
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), help="Where to run.")
@click.option("--out", type=PATH, required=True, help="Folder the audio is copied to.")
@trust_checkpoint_option
@wait_option
def generate(
    project: Project, loras: tuple[str, ...], out: Path, wait: bool, **options: Any
) -> None:
    """Generate audio from prompts, as a job that runs detached in .venv-train.

    Prints the job id. When it succeeds, each clip (NN-prompt.wav) and a JSON of what
    produced it are copied to --out; `curator jobs adherence ID` then scores them.
    """
    config = generate_config(project, loras=[parse_lora(v) for v in loras], **options)
    job = launch(project, "generate", config, copy_to=out, meta={"started_by": current_curator()})
    _started(job, project, wait)


@click.command()
@project_option
@click.argument("export_dir", metavar="EXPORT", type=PATH)
@click.option("--model-config", type=EXISTING, required=True, help="The model_config.json.")
@click.option("--ckpt", type=EXISTING, required=True, help="The weights whose autoencoder encodes.")
@click.option("--out", type=PATH, help="The latent set's folder (default: EXPORT-latents).")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Files per batch.",
)
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), help="Where to run.")
@trust_checkpoint_option
@wait_option
def encode(project: Project, out: Path | None, wait: bool, **options: Any) -> None:
    """Encode an export's audio once through the model's autoencoder, as a job in .venv-train.

    Writes latents, their prompts and timing, silence.npy and a `pre_encoded` dataset config;
    `curator train --export OUT` then trains without encoding audio at every step. Run it
    again with the same --out to go on after an interruption: files already encoded are kept.
    """
    config = encode_config(project, out=out, **options)
    job = launch(project, "encode", config, meta={"started_by": current_curator()})
    _started(job, project, wait)


def _started(job: Job, project: Project, wait: bool) -> None:
    click.echo(job.id)
    if not wait:
        console.print(f"{job.kind} job started: `curator jobs show {job.id}` to follow it")
        return
    with interruptible(f"stopped watching; job {job.id} goes on (`curator jobs cancel {job.id}`)"):
        job = _watch(project, job)
    _report_end(job)


def _watch(project: Project, job: Job) -> Job:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(f"{job.kind} {job.id}", total=None, detail="queued")

        def update(current: Job, latest: dict[str, Any] | None) -> None:
            if latest is None:
                bar.update(task, detail=current.status)
                return
            bar.update(
                task,
                completed=latest.get("step", 0),
                total=latest.get("total_steps"),
                detail=_progress_detail(latest),
            )

        return wait_for_job(project, job.id, update)


def _progress_detail(latest: dict[str, Any]) -> str:
    parts = []
    if latest.get("loss") is not None:
        parts.append(f"loss {latest['loss']:.4f}")
    if latest.get("items"):
        parts.append(f"clip {latest.get('item', 0)}/{latest['items']}")
    if latest.get("epoch") is not None:
        parts.append(f"epoch {latest['epoch']}")
    if latest.get("eta_s") is not None:
        parts.append(f"ETA {duration_text(latest['eta_s'])}")
    return "  ".join(parts)


def _report_end(job: Job) -> None:
    if job.status == "succeeded":
        console.print(f"job {job.id} succeeded; outputs in {job.folder}")
        return
    console.print(f"job {job.id} {job.status}")
    if job.error:
        click.echo(job.error, err=True)
    sys.exit(1)


@click.group(invoke_without_command=True)
@project_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def jobs(ctx: click.Context, project_dir: Path | None, as_json: bool) -> None:
    """List training and generation jobs (newest first), or work with one.

    Listing also re-attaches: jobs whose processes ended while nobody watched get their
    final state from their folder.
    """
    if ctx.invoked_subcommand is None:
        project = resolve_project(project_dir)
        _print_jobs(list_jobs(project), as_json)


@jobs.command("list")
@project_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(project: Project, as_json: bool) -> None:
    """List jobs, newest first (the same as `curator jobs`)."""
    _print_jobs(list_jobs(project), as_json)


def _print_jobs(found: list[Job], as_json: bool) -> None:
    if as_json:
        print_json([_summary(job) for job in found])
        return
    if not found:
        console.print("no jobs yet: `curator train --help` and `curator generate --help`")
        return
    table = Table("id", "kind", "status", "progress", "loss", "created", "error")
    for job in found:
        latest = job.latest() or {}
        table.add_row(
            job.id,
            job.kind,
            job.status,
            _step(latest),
            f"{latest['loss']:.4f}" if latest.get("loss") is not None else "",
            f"{job.created_at:%Y-%m-%d %H:%M}" if job.created_at else "",
            (job.error or "").strip().splitlines()[0][:60] if job.error else "",
        )
    Console(width=200).print(table)


@jobs.command("show")
@project_option
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(project: Project, job_id: str, as_json: bool) -> None:
    """One job: status, config, progress, outputs, and the error's last lines if it failed."""
    job = get_job(project, job_id)
    summary = _summary(job)
    if as_json:
        print_json(summary)
        return
    for key in ("id", "kind", "status", "folder", "created_at", "started_at", "finished_at"):
        click.echo(f"{key}: {summary[key] if summary[key] is not None else ''}")
    if summary["progress"]:
        latest = summary["progress"]
        click.echo(f"progress: {_step(latest)}  {_progress_detail(latest)}")
    click.echo("config:")
    for key, value in job.config.items():
        click.echo(f"  {key}: {value}")
    if summary["outputs"]:
        click.echo("outputs:")
        for key, value in summary["outputs"].items():
            click.echo(f"  {key}: {value}")
    if job.error:
        click.echo("error:")
        click.echo(job.error)


def _summary(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "folder": str(job.folder),
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "progress": job.latest(),
        "config": job.config,
        "outputs": job.outputs(),
        "error": job.error,
        "label": job.label,
    }


def _step(latest: dict[str, Any]) -> str:
    if not latest or latest.get("step") is None:
        return ""
    total = latest.get("total_steps")
    return f"{latest['step']}/{total}" if total else str(latest["step"])


@jobs.command("logs")
@project_option
@click.argument("job_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the job ends.")
def logs(project: Project, job_id: str, follow: bool) -> None:
    """Print a job's log (its stdout and stderr); --follow keeps printing as it grows."""
    job = get_job(project, job_id)
    if not follow:
        click.echo((job.folder / "log.txt").read_text(errors="replace"), nl=False)
        return
    for chunk in follow_log(job):
        click.echo(chunk, nl=False)


@jobs.command("cancel")
@project_option
@click.argument("job_id")
@click.option("--no-wait", is_flag=True, help="Ask it to stop and return at once.")
def cancel(project: Project, job_id: str, no_wait: bool) -> None:
    """Stop a queued or running job: SIGTERM, then SIGKILL after the grace period.

    The job saves nothing more and ends as cancelled; its checkpoints so far are kept
    (`curator train --resume ID` goes on from the last one).
    """
    job = cancel_job(project, job_id)
    if no_wait:
        console.print(f"asked job {job.id} to stop")
        return
    grace = project.settings.training.cancel_grace_seconds
    job = wait_for_job(project, job.id, timeout=grace + 10)
    if job.active:
        job = kill_job(project, job.id)
    console.print(f"job {job.id} {job.status}")
    if job.status not in ("cancelled",):
        raise CuratorError(f"job {job.id} ended as {job.status} before it could be cancelled")


@jobs.command("adherence")
@project_option
@click.argument("job_ids", nargs=-1, required=True)
@click.option(
    "--tagger",
    "taggers",
    multiple=True,
    help="A tagger to score the requested tags with (repeatable; default: those that "
    "tagged this project).",
)
@click.option("--analyzer", default="essentia", show_default=True, help="Tempo and key.")
@click.option("--json", "as_json", is_flag=True, help="Print every clip's scores as JSON.")
def adherence_command(
    project: Project,
    job_ids: tuple[str, ...],
    taggers: tuple[str, ...],
    analyzer: str,
    as_json: bool,
) -> None:
    """How well generated audio follows its prompts, per requested tag, for each job given.

    Runs the analyzer (tempo within 4 %, octave errors allowed; key exact and
    MIREX-weighted) and taggers (each requested tag's score against its threshold) on
    every clip of each generate job. Give a base model's job and a fine-tune's, made from
    the same prompts, to see which tags the fine-tune learned.
    """
    from curator.jobs.adherence import as_json as adherence_json
    from curator.jobs.adherence import job_adherence, scorers

    found_jobs = [get_job(project, job_id) for job_id in job_ids]
    ready = scorers(project, list(taggers) if taggers else None, analyzer)
    results = [job_adherence(project, job, ready=ready) for job in found_jobs]
    if as_json:
        print_json([adherence_json(result) for result in results])
        return
    for error in ready.errors:
        console.print(f"[yellow]{error}[/]")
    table = Table("measure", *(f"{r.label}" for r in results), "clips")
    measures = list(dict.fromkeys(row["measure"] for r in results for row in r.rows()))
    for measure in measures:
        cells, clips = [], 0
        for result in results:
            row = next((x for x in result.rows() if x["measure"] == measure), None)
            cells.append("" if row is None else f"{row['value']:.2f}")
            clips = max(clips, row["clips"] if row else 0)
        table.add_row(measure, *cells, str(clips))
    Console(width=200).print(table)
    console.print(
        "tempo: share of clips within 4 % (octave errors allowed); key: mean MIREX score; "
        "tags: share of clips reaching the tagger's threshold"
    )


def register(cli: click.Group) -> None:
    """Add this module's commands to `cli`."""
    cli.add_command(train)
    cli.add_command(generate)
    cli.add_command(encode)
    cli.add_command(jobs)
