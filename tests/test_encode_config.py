"""`curator encode`'s and `curator train`'s new options, checked before any job starts (no
.venv-train needed): one clear line for each bad input, nothing launched; and a job on
several GPUs holding as many slots of the queue."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from test_jobs import configure, model_files, wait_for_process, wait_until

from curator.errors import CuratorError
from curator.jobs.config import encode_config, train_config
from curator.jobs.manage import get_job, start_job, wait_for_job
from curator.project import Project


def test_encode_config_defaults_beside_the_export_and_checks_its_inputs(
    curator_project: Project, tmp_path: Path
) -> None:
    export, config, ckpt = model_files(tmp_path)
    made = encode_config(curator_project, export_dir=export, model_config=config, ckpt=ckpt)
    assert made["out_dir"] == str(tmp_path / "export-latents")
    assert made["batch_size"] == 8 and made["export_dir"] == str(export)
    with pytest.raises(CuratorError, match="no such export folder"):
        encode_config(curator_project, export_dir=tmp_path / "x", model_config=config, ckpt=ckpt)
    with pytest.raises(CuratorError, match="the export itself"):
        encode_config(
            curator_project, export_dir=export, model_config=config, ckpt=ckpt, out=export
        )
    (export / "latents.json").write_text("{}")
    with pytest.raises(CuratorError, match="already a latent set"):
        encode_config(curator_project, export_dir=export, model_config=config, ckpt=ckpt)


def test_train_config_keeps_devices_and_dry_run_only_when_given(
    curator_project: Project, tmp_path: Path
) -> None:
    export, config, _ = model_files(tmp_path)
    plain = train_config(curator_project, export_dir=export, model_config=config, steps=2)
    assert not {"devices", "num_nodes", "strategy", "dry_run"} & set(plain)
    made = train_config(
        curator_project, export_dir=export, model_config=config, steps=2, devices=2,
        strategy="ddp", dry_run=5,
    )  # fmt: skip
    assert (made["devices"], made["strategy"], made["dry_run"]) == (2, "ddp", 5)


def test_cli_encode_names_a_folder_that_is_no_export(
    curator_project: Project, tmp_path: Path, run_cli
) -> None:
    _, config, ckpt = model_files(tmp_path)
    (tmp_path / "plain").mkdir()
    args = ("--model-config", config, "--ckpt", ckpt, "--project", curator_project.root)
    done = run_cli("encode", tmp_path / "plain", *args, expect=1)
    assert f"{tmp_path / 'plain'}: no dataset_config.json in it" in done.output
    assert "Traceback" not in done.output
    assert "no jobs yet" in run_cli("jobs", "--project", curator_project.root).output


# A job that holds its GPU slots until the test creates the file named after its folder.
HOLDER = """
import json, sys, time
from pathlib import Path
folder, release = Path(sys.argv[1]), Path(sys.argv[2])
print("holder starts", flush=True)
while json.loads((folder / "job.json").read_text())["config"].get("hold") and not release.exists():
    time.sleep(0.05)
(folder / "result.json").write_text(json.dumps({"status": "succeeded", "outputs": {}}))
"""


def test_a_job_on_two_gpus_holds_two_slots(curator_project: Project, tmp_path: Path) -> None:
    project = configure(curator_project, lock_dir=str(tmp_path / "slots"), max_gpu_jobs=2)
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    release = tmp_path / "release"
    argv = [sys.executable, str(script), "{folder}", str(release)]
    both = start_job(project, "train", {"device": "cuda", "devices": 2, "hold": True}, argv=argv)
    wait_for_process(both.folder)
    assert "got 2 GPU slots of 2" in get_job(project, both.id).log_tail()
    one = start_job(project, "train", {"device": "cuda"}, argv=argv)
    wait_until(lambda: "waiting for a GPU slot" in get_job(project, one.id).log_tail())
    assert get_job(project, one.id).status == "queued"
    release.touch()
    assert wait_for_job(project, both.id, poll_seconds=0.05).status == "succeeded"
    assert wait_for_job(project, one.id, poll_seconds=0.05).status == "succeeded"
    assert (one.folder / "process.json").stat().st_mtime >= (
        both.folder / "result.json"
    ).stat().st_mtime
