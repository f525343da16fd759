"""The Jobs and Generate pages, driven with Streamlit's AppTest.

The pages launch jobs through `curator.jobs.manage` exactly as the CLI does; here [training] python
points at a stand-in that speaks the job files (progress.jsonl, result.json, audio/) in a
fraction of a second, so the pages' tests do not wait for .venv-train to import torch. The
real training code runs in tests/test_jobs.py (train_env).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from curator import app as app_package
from curator.jobs.manage import get_job, list_jobs, wait_for_job
from curator.project import Project, open_project

PAGES = Path(app_package.__file__).parent / "pages"

# Called as `python -m training train|generate JOB_DIR`, like .venv-train's Python.
STAND_IN = r"""
import json, signal, sys, time
from pathlib import Path
import numpy as np, soundfile as sf

command, folder = sys.argv[-2], Path(sys.argv[-1])
config = json.loads((folder / "job.json").read_text())["config"]
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
print("stand-in", command, flush=True)

def progress(**record):
    with open(folder / "progress.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")

if command == "train" and config.get("dry_run"):
    # A plan with the keys the real dry run writes (training/train.py), figures made up.
    outputs = {"measured_steps": 4, "step_seconds": 0.25, "batch_size": config["batch_size"],
               "precision": config["precision"], "peak_memory_bytes": 3 * 2**20,
               "memory": "CPU resident set", "checkpoint_bytes": 2**20, "result_bytes": 2**19,
               "planned_steps": config["steps"], "batches_per_epoch": 6,
               "planned_seconds": 0.25 * config["steps"], "planned_disk_bytes": 3 * 2**20,
               "kept_checkpoints": 2, "seed_steps": 35000, "seed_seconds": 8750.0}
elif command == "train":
    steps = config["steps"]
    for step in range(1, steps + 1):
        if stop:
            (folder / "result.json").write_text(json.dumps({"status": "cancelled"}))
            sys.exit(0)
        time.sleep(0.02)
        progress(step=step, total_steps=steps, epoch=0, loss=1.0 / step, elapsed_s=0.0,
                 eta_s=0.02 * (steps - step))
    name = "lora.safetensors" if config["lora"] else "model.safetensors"
    (folder / name).write_bytes(b"weights")
    outputs = {"lora" if config["lora"] else "model": str(folder / name)}
else:
    (folder / "audio").mkdir()
    rate, outputs = 44100, {"audio": []}
    for item, prompt in enumerate(config["prompts"], start=1):
        # Clicks at 120 BPM over an A minor triad: audio an analyzer can measure.
        t = np.arange(int(config["seconds"] * rate)) / rate
        tone = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 261.63, 329.63)) * 0.1
        clicks = (np.mod(t, 0.5) < 0.01) * np.random.default_rng(item).normal(0, 0.5, t.size)
        path = folder / "audio" / f"{item:02d}-clip.wav"
        sf.write(str(path), (tone + clicks).astype("float32"), rate)
        path.with_suffix(".json").write_text(json.dumps({"prompt": prompt, "seed": 0}))
        outputs["audio"].append(str(path))
        progress(step=1, total_steps=1, item=item, items=len(config["prompts"]))
(folder / "result.json").write_text(json.dumps({"status": "succeeded", "outputs": outputs}))
"""


@pytest.fixture
def app_project(project: Project, tmp_path: Path, monkeypatch) -> Project:
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    python = tmp_path / "train-python"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
    python.chmod(0o755)
    export = tmp_path / "export"
    export.mkdir()
    (export / "dataset_config.json").write_text("{}")
    model_config = tmp_path / "model_config.json"
    model_config.write_text(json.dumps({"model_type": "diffusion_cond"}))
    (tmp_path / "base.safetensors").write_bytes(b"weights")
    settings = project.root / "curator.toml"
    text = settings.read_text().replace('\npython = ""', f'\npython = "{python}"')
    text = text.replace('\nlock_dir = ""', f'\nlock_dir = "{tmp_path / "slots"}"')
    text = text.replace('model_config = ""', f'model_config = "{model_config}"')
    text = text.replace('ckpt = ""', f'ckpt = "{tmp_path / "base.safetensors"}"')
    settings.write_text(text.replace('device = "auto"\nprecision', 'device = "cpu"\nprecision'))
    monkeypatch.setenv("CURATOR_PROJECT", str(project.root))
    opened = open_project(project.root)
    assert opened.settings.training.python == str(python)
    assert opened.settings.training.device == "cpu"
    return opened


def open_page(name: str) -> AppTest:
    page = AppTest.from_file(str(PAGES / name), default_timeout=60).run()
    assert not page.exception, page.exception
    return page


def test_jobs_page_without_jobs(app_project: Project) -> None:
    page = open_page("7_Jobs.py")
    assert "No jobs yet" in page.info[0].value
    assert page.radio(key="train-preset").options == ["quick LoRA", "full fine-tune"]
    page.button(key="train-start").click().run()
    assert "Choose an export" in page.error[0].value


@pytest.mark.slow
def test_start_a_quick_lora_and_watch_it(app_project: Project, tmp_path: Path) -> None:
    page = open_page("7_Jobs.py")
    page.selectbox(key="train-export-choice").select("another folder…").run()
    page.text_input(key="train-export-folder").input(str(tmp_path / "export")).run()
    page.number_input(key="train-steps-quick LoRA").set_value(5).run()
    page.button(key="train-start").click().run()
    assert not page.exception
    (job,) = list_jobs(app_project)
    assert "Started " + job.id in page.success[0].value
    assert job.config["lora"] == {"rank": 16, "alpha": 16.0}
    assert job.config["steps"] == 5 and job.config["learning_rate"] == 1e-4
    assert job.config["export_dir"] == str(tmp_path / "export")
    wait_for_job(app_project, job.id, poll_seconds=0.05)
    page.run()
    assert page.subheader[0].value == f"{job.id} · succeeded"
    metrics = {m.label: m.value for m in page.metric}
    assert metrics["Step"] == "5 / 5" and metrics["Loss"] == "0.2000"
    assert len(page.get("plotly_chart")) == 1  # the loss chart
    assert "stand-in train" in page.code[0].value


def test_a_dry_run_on_two_devices_from_the_page_shows_its_plan(
    app_project: Project, tmp_path: Path
) -> None:
    page = open_page("7_Jobs.py")
    page.selectbox(key="train-export-choice").select("another folder…").run()
    page.text_input(key="train-export-folder").input(str(tmp_path / "export")).run()
    page.number_input(key="train-steps-quick LoRA").set_value(400).run()
    page.number_input(key="train-devices").set_value(2).run()
    page.checkbox(key="train-dry-run").check().run()
    page.button(key="train-start").click().run()
    assert not page.exception and not page.error
    (job,) = list_jobs(app_project)
    assert (job.config["dry_run"], job.config["devices"], job.config["steps"]) == (5, 2, 400)
    wait_for_job(app_project, job.id, poll_seconds=0.05)
    page.run()
    # As rendered: the plan is escaped as literal text in the markdown source.
    shown = "\n".join(m.value for m in page.markdown).replace("\\", "")
    assert "Dry run" in shown and "0.250 s per step" in shown
    assert "planned: 400 steps (6 per epoch): 1:40" in shown
    assert "the seed's 35,000 steps: 2:25:50" in shown


@pytest.mark.slow
def test_cancel_a_running_job_from_the_page(app_project: Project, tmp_path: Path) -> None:
    page = open_page("7_Jobs.py")
    page.selectbox(key="train-export-choice").select("another folder…").run()
    page.text_input(key="train-export-folder").input(str(tmp_path / "export")).run()
    page.radio(key="train-preset").set_value("full fine-tune").run()
    page.button(key="train-start").click().run()
    (job,) = list_jobs(app_project)
    assert job.config["lora"] is None and job.config["steps"] == 20000
    deadline = time.monotonic() + 30
    while get_job(app_project, job.id).latest() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    page.run()
    page.button(key=f"cancel-{job.id}").click().run()
    assert "Asked the job to stop" in page.info[0].value
    assert wait_for_job(app_project, job.id, poll_seconds=0.05).status == "cancelled"


@pytest.mark.slow
def test_generate_page_builds_prompts(app_project: Project) -> None:
    page = open_page("8_Generate.py")
    page.selectbox(key="b-genre").select("trap").run()
    page.selectbox(key="b-mood").select("dark").run()
    page.multiselect(key="b-instruments").select("808").select("piano").run()
    page.number_input(key="b-bpm").set_value(140).run()
    page.selectbox(key="b-key").select("F#").run()
    page.button(key="b-add").click().run()
    assert page.text_area(key="gen-prompts").value == (
        "A dark trap beat at 140 BPM in F# minor, with 808 and piano"
    )
    page.selectbox(key="b-genre").select("boom bap").run()
    page.button(key="b-add").click().run()
    assert len(page.text_area(key="gen-prompts").value.splitlines()) == 2


def test_generate_names_the_empty_base_model_path_instead_of_asking_to_choose(
    app_project: Project,
) -> None:
    page = open_page("8_Generate.py")
    page.text_area(key="gen-prompts").input("A dark trap beat").run()
    page.text_input(key="g-ckpt").input("").run()
    page.multiselect(key="g-tuned").set_value([]).run()
    page.button(key="g-start").click().run()
    assert [e.value for e in page.error] == [
        "Base model is ticked but its base weights path is empty: fill them in, or untick "
        "Base model."
    ]
    page.checkbox(key="g-base").uncheck().run()
    page.button(key="g-start").click().run()
    assert [e.value for e in page.error] == ["Choose the base model or at least one fine-tune."]
    assert list_jobs(app_project, "generate") == []


@pytest.mark.slow
def test_generate_compares_base_and_fine_tune_side_by_side(app_project: Project) -> None:
    trained = open_page("7_Jobs.py")
    trained.selectbox(key="train-export-choice").select("another folder…").run()
    trained.text_input(key="train-export-folder").input(str(app_project.root.parent / "export"))
    trained.run()
    trained.number_input(key="train-steps-quick LoRA").set_value(2).run()
    trained.button(key="train-start").click().run()
    (train_job,) = list_jobs(app_project)
    wait_for_job(app_project, train_job.id, poll_seconds=0.05)

    page = open_page("8_Generate.py")
    assert page.multiselect(key="g-tuned").value == [f"{train_job.id} (LoRA, 2 steps)"]
    page.text_area(key="gen-prompts").input("A dark trap beat at 120 BPM in A minor").run()
    page.number_input(key="g-seconds").set_value(6.0).run()
    page.button(key="g-start").click().run()
    assert not page.exception
    jobs = list_jobs(app_project, "generate")
    assert sorted(job.label for job in jobs) == ["base", f"{train_job.id} (LoRA, 2 steps)"]
    tuned = next(job for job in jobs if job.label != "base")
    assert tuned.config["loras"][0]["path"].endswith("lora.safetensors")
    assert tuned.config["ckpt"] == app_project.settings.training.ckpt
    for job in jobs:
        assert wait_for_job(app_project, job.id, poll_seconds=0.05).status == "succeeded"
    page.run()
    assert len(page.get("audio")) == 2  # one prompt, two models side by side
    page.button(key="g-score").click().run()
    assert not page.exception
    assert len(page.get("plotly_chart")) == 1
    (table,) = [frame.value for frame in page.dataframe]
    assert set(table["measure"]) == {"tempo", "key"}
    assert set(table["label"]) == {"base", f"{train_job.id} (LoRA, 2 steps)"}
