"""`curator encode` and training from its latents, through the real CLI, jobs and .venv-train.

The tiny model (training/tiny.py) encodes a real `curator export` of the demo beats; the latent
set is read by stable-audio-tools' own `pre_encoded` loader, trained on through `curator train`
and generated from; a model with another autoencoder is refused.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from test_training import PYTHON, REPO, SR, export_demo_beats

pytestmark = [pytest.mark.train_env, pytest.mark.slow]

FRAME = 64  # its samples per latent frame
TIMEOUT = 600


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


def curator(*args: Any) -> subprocess.CompletedProcess[str]:
    """The real `curator` CLI in its own process."""
    command = [sys.executable, "-m", "curator.cli", *map(str, args)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT, env=environment()
    )


def in_train_env(code: str, *args: Any) -> str:
    """Run `code` with .venv-train's Python; its stdout."""
    done = subprocess.run(
        [str(PYTHON), "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=environment(),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def encode(
    project: Path, export_dir: Path, ckpt: Path, tiny: dict[str, Path], *options: Any
) -> subprocess.CompletedProcess[str]:
    """`curator encode EXPORT` with the tiny model's config and `ckpt`, on the CPU, waited for."""
    return curator(
        "encode", export_dir, "--project", project, "--model-config", tiny["model_config"],
        "--ckpt", ckpt, "--device", "cpu", *options, "--wait",
    )  # fmt: skip


def train(
    project: Path, latents: Path, ckpt: Path, tiny: dict[str, Path], *options: Any
) -> subprocess.CompletedProcess[str]:
    """`curator train --export LATENTS` with the tiny model's config and `ckpt`, on the CPU."""
    return curator(
        "train", "--project", project, "--export", latents, "--model-config",
        tiny["model_config"], "--ckpt", ckpt, "--device", "cpu", *options,
    )  # fmt: skip


def job_folder(project: Path, output: str) -> Path:
    """The job folder of the id `curator ... --wait` printed first."""
    return project / "jobs" / output.split()[0]


def result(job: Path) -> dict[str, Any]:
    return json.loads((job / "result.json").read_text())


BUILD_TINY = "import sys, pathlib, training.tiny as t; t.build_tiny(pathlib.Path(sys.argv[1]))"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny")
    in_train_env(BUILD_TINY, folder)
    return {"model_config": folder / "model_config.json", "ckpt": folder / "model.safetensors"}


@pytest.fixture(scope="module")
def exported(beats: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(project folder, a real `curator export` of the demo beats at 16 kHz, one track held out)."""
    folder = tmp_path_factory.mktemp("latents")
    return export_demo_beats(beats, folder), folder / "export"


@pytest.fixture(scope="module")
def encoded(tiny: dict[str, Path], exported: tuple[Path, Path]) -> tuple[Path, Path]:
    """(the encode job's folder, the latent set) after `curator encode --wait`."""
    project, export_dir = exported
    done = encode(project, export_dir, tiny["ckpt"], tiny, "--batch-size", 3)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return job_folder(project, done.stdout), export_dir.with_name("export-latents")


def manifest(export_dir: Path) -> dict[str, dict[str, Any]]:
    lines = (export_dir / "manifest.jsonl").read_text().splitlines()
    return {record["filepath"]: record for record in map(json.loads, lines)}


def test_encode_writes_the_pre_encoded_layout(
    encoded: tuple[Path, Path], exported: tuple[Path, Path]
) -> None:
    job, latents = encoded
    _, export_dir = exported
    outputs = result(job)["outputs"]
    records = manifest(export_dir)
    assert outputs["files"] == len(records) and outputs["encoded"] == len(records)
    assert (outputs["kept"], outputs["skipped"]) == (0, 0)
    info = json.loads((latents / "latents.json").read_text())
    assert info["autoencoder_sha256"] == outputs["autoencoder_sha256"]
    assert (info["sample_rate"], info["downsampling_ratio"], info["latent_crop_length"]) == (
        SR,
        FRAME,
        512,
    )
    config = json.loads((latents / "dataset_config.json").read_text())
    assert config["dataset_type"] == "pre_encoded" and config["latent_crop_length"] == 512
    assert config["random_crop"] is True
    # Absolute, as an export's: stable-audio-tools' own train.py reads them from any folder.
    for dataset in config["datasets"]:
        assert Path(dataset["path"]).is_absolute() and Path(dataset["path"]).is_dir()
        assert Path(dataset["custom_metadata_module"]).is_file()
    validation = json.loads((latents / "val_dataset_config.json").read_text())
    assert validation["dataset_type"] == "pre_encoded" and validation["random_crop"] is False
    for filepath, record in records.items():
        # One folder per dataset of the export (its id), one .npy per file.
        (npy,) = latents.glob(f"*/{Path(filepath).stem}.npy")
        frames = math.ceil(sf.info(str(export_dir / filepath)).frames / FRAME)
        assert np.load(npy).shape == (8, frames)
        meta = json.loads(npy.with_suffix(".json").read_text())
        assert meta["prompt"] == record["prompt"]
        assert meta["segment_start"] == pytest.approx(record["seconds_start"])
        assert meta["seconds_total"] == math.ceil(record["seconds_total"])
        assert meta["padding_mask"] == [1] * frames
    assert np.load(latents / "curator-train" / "silence.npy").shape == (1, 8, 512)
    lines = [json.loads(x) for x in (job / "progress.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == lines[-1]["total_steps"] == len(records)


LOADER = """
import json, random, sys
from stable_audio_tools.data.dataset import create_dataloader_from_config
sys.path.insert(0, sys.argv[1])
from training.dataset import load_dataset_config
from pathlib import Path
config = load_dataset_config(Path(sys.argv[1]))
dataset = create_dataloader_from_config(config, 1, 32768, 16000, num_workers=1).dataset
random.seed(3)
out = []
for _ in range(12):
    latents, info = dataset[random.randrange(len(dataset))]
    out.append({k: info[k] for k in ("latent_crop_start", "seconds_start", "segment_start",
                                     "seconds_total", "prompt")} | {"frames": latents.shape[-1]})
print(json.dumps(out))
"""


def test_the_librarys_loader_reads_prompts_and_crop_timing(encoded: tuple[Path, Path]) -> None:
    _, latents = encoded
    samples = json.loads(in_train_env(LOADER, latents).splitlines()[-1])
    assert any(s["latent_crop_start"] > 0 for s in samples), samples
    for sample in samples:
        assert sample["frames"] == 512 and sample["prompt"].startswith("a trap beat")
        offset = sample["latent_crop_start"] * FRAME / SR
        assert sample["seconds_start"] == math.floor(sample["segment_start"] + offset)
        assert sample["seconds_start"] < sample["seconds_total"]


def test_an_interrupted_encode_goes_on_where_it_stopped(
    encoded: tuple[Path, Path], exported: tuple[Path, Path], tiny: dict[str, Path]
) -> None:
    _, latents = encoded
    project, export_dir = exported
    files = sorted((latents / "curator-train").glob("*.npy"))
    files = [f for f in files if f.name != "silence.npy"]
    lost = files[0]
    lost.unlink()  # as if the job had stopped before writing it
    before = {f: f.stat().st_mtime_ns for f in files[1:]}
    done = encode(project, export_dir, tiny["ckpt"], tiny)
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = result(job_folder(project, done.stdout))["outputs"]
    assert outputs["encoded"] == 1 and outputs["kept"] == outputs["files"] - 1
    assert lost.is_file()
    assert {f: f.stat().st_mtime_ns for f in files[1:]} == before


@pytest.fixture(scope="module")
def trained(encoded: tuple[Path, Path], exported: tuple[Path, Path], tiny: dict[str, Path]) -> Path:
    _, latents = encoded
    project, _ = exported
    done = train(
        project, latents, tiny["ckpt"], tiny,
        "--steps", 4, "--batch-size", 2, "--checkpoint-every", 2, "--wait",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return job_folder(project, done.stdout)


def test_training_from_latents_skips_the_encoder(trained: Path) -> None:
    # The latents have 8 channels and the encoder takes 2: had the trainer run the
    # pretransform's encoder on them, the first step would have failed.
    assert result(trained)["status"] == "succeeded"
    log = (trained / "log.txt").read_text()
    assert "training from latents" in log
    lines = [json.loads(x) for x in (trained / "progress.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    assert all(np.isfinite(line["loss"]) for line in lines)
    validation = (trained / "validation.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in validation] == [2, 4]
    assert sorted(p.name for p in (trained / "checkpoints").iterdir()) == [
        "step-00000002.ckpt",
        "step-00000004.ckpt",
    ]


def test_generate_from_the_latent_trained_model(
    trained: Path, exported: tuple[Path, Path], tiny: dict[str, Path], tmp_path: Path
) -> None:
    project, _ = exported
    done = curator(
        "generate",
        "--project",
        project,
        "--model-config",
        tiny["model_config"],
        "--ckpt",
        trained / "model.safetensors",
        "--prompt",
        "a dark trap beat",
        "--seconds",
        1,
        "--steps",
        2,
        "--device",
        "cpu",
        "--out",
        tmp_path,
        "--wait",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (wav,) = tmp_path.glob("*.wav")
    audio, rate = sf.read(str(wav))
    assert rate == SR and audio.shape == (SR, 2) and np.isfinite(audio).all()


def perturb_autoencoder(source: Path, target: Path) -> None:
    """A copy of a .safetensors file with one pretransform weight changed (its first byte)."""
    data = bytearray(source.read_bytes())
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    key = sorted(k for k in header if k.startswith("pretransform."))[0]
    data[8 + length + header[key]["data_offsets"][0]] ^= 0x40
    target.write_bytes(bytes(data))


def test_another_autoencoder_is_refused(
    encoded: tuple[Path, Path], exported: tuple[Path, Path], tiny: dict[str, Path], tmp_path: Path
) -> None:
    _, latents = encoded
    project, export_dir = exported
    other = tmp_path / "other.safetensors"
    perturb_autoencoder(tiny["ckpt"], other)
    done = train(project, latents, other, tiny, "--steps", 2, "--wait")
    assert done.returncode == 1
    assert "these latents were made with another autoencoder" in done.stderr, done.stderr
    job = job_folder(project, done.stdout)
    assert not (job / "checkpoints").exists() and not (job / "progress.jsonl").exists()
    # Nor may another autoencoder's latents be mixed into the same set.
    done = encode(project, export_dir, other, tiny, "--out", latents)
    assert done.returncode == 1 and "latents of another autoencoder" in done.stderr


def test_a_dry_run_measures_and_plans(
    encoded: tuple[Path, Path], exported: tuple[Path, Path], tiny: dict[str, Path]
) -> None:
    _, latents = encoded
    project, _ = exported
    done = train(
        project, latents, tiny["ckpt"], tiny,
        "--steps", 100, "--batch-size", 2, "--checkpoint-every", 30, "--dry-run",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    job = job_folder(project, done.stdout)
    plan = result(job)["outputs"]
    assert plan["measured_steps"] == 4 and plan["step_seconds"] > 0
    assert plan["planned_steps"] == 100 and plan["seed_steps"] == 35000
    assert plan["planned_seconds"] == pytest.approx(100 * plan["step_seconds"])
    assert plan["seed_seconds"] == pytest.approx(35000 * plan["step_seconds"])
    # Four checkpoints (30, 60, 90, 100), the newest three kept, and the exported model.
    assert plan["kept_checkpoints"] == 3
    assert plan["planned_disk_bytes"] == 3 * plan["checkpoint_bytes"] + plan["result_bytes"]
    assert plan["checkpoint_bytes"] > plan["result_bytes"] > 0  # optimizer state and EMA
    assert plan["peak_memory_bytes"] > 2**20
    printed = done.stdout
    assert f"{plan['step_seconds']:.3f} s per step" in printed
    assert "planned: 100 steps" in printed and "the seed's 35,000 steps" in printed
    # It trained nothing: no checkpoint or model is left to resume or generate from.
    assert not list((job / "checkpoints").iterdir()) and not (job / "model.safetensors").exists()


def test_ddp_on_two_cpu_processes_checkpoints_once_and_resumes(
    encoded: tuple[Path, Path], exported: tuple[Path, Path], tiny: dict[str, Path]
) -> None:
    _, latents = encoded
    project, _ = exported
    done = train(
        project, latents, tiny["ckpt"], tiny, "--steps", 4, "--batch-size", 1,
        "--checkpoint-every", 2, "--devices", 2, "--strategy", "ddp", "--wait",
    )  # fmt: skip
    job = job_folder(project, done.stdout)
    assert done.returncode == 0, (job / "log.txt").read_text()[-4000:]
    log = (job / "log.txt").read_text()
    assert "distributed_backend=gloo" in log and "MEMBER: 2/2" in log
    # One process writes: each step once, one set of checkpoints, no leftovers.
    lines = [json.loads(x) for x in (job / "progress.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    assert sorted(p.name for p in (job / "checkpoints").iterdir()) == [
        "step-00000002.ckpt",
        "step-00000004.ckpt",
    ]
    assert result(job)["outputs"]["steps"] == 4
    done = curator(
        "train", "--project", project, "--resume", job.name, "--steps", 6, "--wait"
    )  # fmt: skip
    resumed = job_folder(project, done.stdout)
    assert done.returncode == 0, (resumed / "log.txt").read_text()[-4000:]
    lines = [json.loads(x) for x in (resumed / "progress.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [5, 6]
    assert "MEMBER: 2/2" in (resumed / "log.txt").read_text()


def test_an_epoch_under_ddp_is_each_processs_share_of_the_batches() -> None:
    # 10 batches: one process steps 10 times an epoch, two 5, four 3 (the sampler pads).
    code = """
from training.train import batches_per_process, total_steps
for devices, nodes in ((1, 1), (2, 1), (2, 2)):
    settings = {"devices": devices, "num_nodes": nodes, "steps": None, "epochs": 3}
    batches = batches_per_process(settings, 10)
    print(batches, total_steps(settings, batches))
"""
    assert in_train_env(code).split("\n")[:3] == ["10 30", "5 15", "3 9"]
