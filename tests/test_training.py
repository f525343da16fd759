"""training/ run as the jobs core runs it: `.venv-train/bin/python -m training ...` in a job folder.

Every job here is a real subprocess on a tiny model built offline (DiT, oobleck VAE, a T5 from
a local folder, number conditioners), trained on a real `curator export` of the demo beats.
Each start imports torch and stable-audio-tools, so the jobs are shared between tests: one
full fine-tune, one LoRA fine-tune that is cancelled with SIGTERM and then resumed, one
generation from their results, and two jobs that must fail.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

import curator.plugins.stable_audio_export as sat
from curator.catalogue.ingest import ingest
from curator.export.build import export, export_settings
from curator.project import init_project
from curator.storage.prompts import PromptRow, save_prompts
from curator.storage.selections import SelectionItem, save_selection
from curator.testing import registry_of

pytestmark = [pytest.mark.train_env, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv-train" / "bin" / "python"
SR = 16000  # the tiny model's sample rate
JOB_TIMEOUT = 600  # seconds; each job takes a few seconds once torch is imported
# The model config's 1e-4 moves a LoRA so little in a few steps that generation changes by a
# few 16-bit steps; this makes its effect plain (test_a_lora_changes_what_is_generated).
LORA_RATE = 3e-3


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def start(
    command: str, job_dir: Path, config: dict[str, Any] | None = None
) -> subprocess.Popen[bytes]:
    """Launch `python -m training command job_dir` as the jobs core does, log to log.txt."""
    job_dir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (job_dir / "job.json").write_text(json.dumps({"kind": command, "config": config}))
    log = (job_dir / "log.txt").open("ab")
    return subprocess.Popen(
        [str(PYTHON), "-m", "training", command, str(job_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=environment(),
        cwd=str(job_dir),
    )


def run(command: str, job_dir: Path, config: dict[str, Any] | None = None) -> int:
    began = time.monotonic()
    code = start(command, job_dir, config).wait(timeout=JOB_TIMEOUT)
    print(f"{command} {job_dir.name}: {time.monotonic() - began:.1f} s, exit {code}")
    return code


def result(job_dir: Path) -> dict[str, Any]:
    return json.loads((job_dir / "result.json").read_text())


def progress(job_dir: Path, name: str = "progress.jsonl") -> list[dict[str, Any]]:
    path = job_dir / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def safetensors_header(path: Path) -> dict[str, Any]:
    """The tensor table of a .safetensors file (8-byte length, then JSON)."""
    with path.open("rb") as stream:
        (length,) = struct.unpack("<Q", stream.read(8))
        header = json.loads(stream.read(length))
    header.pop("__metadata__", None)
    return header


def rename_keys(source: Path, target: Path, old: str, new: str) -> None:
    """Copy a .safetensors file with a key prefix renamed: same tensors, keys that do not fit."""
    with source.open("rb") as stream:
        (length,) = struct.unpack("<Q", stream.read(8))
        header = json.loads(stream.read(length))
        data = stream.read()
    renamed = {(new + k[len(old) :] if k.startswith(old) else k): v for k, v in header.items()}
    text = json.dumps(renamed).encode()
    text += b" " * (-len(text) % 8)
    target.write_bytes(struct.pack("<Q", len(text)) + text + data)


def write_export(
    folder: Path,
    level: float = 0.3,
    files: tuple[int, int] = (4, 1),
    samples: int = 3 * SR,
    random_crop: bool = True,
) -> Path:
    """A folder shaped like `curator export`'s output, by hand: real export refuses silence.

    files: (training, validation) file counts, each `samples` long; random_crop False crops
    every file at its start, so the model sees the same clips each epoch.
    """
    rng = np.random.default_rng(0)
    manifest = []
    splits = [(s, n) for s, n in zip(("train", "validation"), files, strict=True) if n]
    for split, count in splits:
        (folder / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            t = np.arange(samples) / SR
            mono = level * (
                np.sin(2 * np.pi * 110 * (index + 1) * t) + 0.1 * rng.standard_normal(t.size)
            )
            name = f"{split}/segment{index}.wav"
            sf.write(folder / name, np.stack([mono, mono], axis=1).astype(np.float32), SR)
            manifest.append({"filepath": name, "prompt": f"a dark trap beat number {index}"})
    (folder / "manifest.jsonl").write_text("".join(json.dumps(m) + "\n" for m in manifest))
    (folder / "custom_metadata.py").write_text(METADATA_MODULE)
    names = ("dataset_config.json", "val_dataset_config.json")
    for (split, _), name in zip(splits, names[: len(splits)], strict=True):
        dataset = {"id": split, "path": split, "custom_metadata_module": "custom_metadata.py"}
        config = {
            "dataset_type": "audio_dir",
            "datasets": [dataset],
            "drop_last": split == "train",
            "random_crop": random_crop,
        }
        (folder / name).write_text(json.dumps(config))
    return folder


METADATA_MODULE = """
import json, os

ROOT = os.path.dirname(os.path.realpath(__file__))


def get_custom_metadata(info, audio):
    relative = os.path.relpath(os.path.realpath(info["path"]), ROOT)
    with open(os.path.join(ROOT, "manifest.jsonl")) as manifest:
        for line in manifest:
            record = json.loads(line)
            if record["filepath"] == relative:
                return {"prompt": record["prompt"]}
    return {"__reject__": True}
"""


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny")
    assert run("tiny", folder) == 0, (folder / "log.txt").read_text()
    return {"model_config": folder / "model_config.json", "ckpt": folder / "model.safetensors"}


def export_demo_beats(beats: Path, folder: Path) -> Path:
    """The demo beats ingested and prompted in folder/project, and a real `curator export` of
    them in folder/export at the tiny model's rate, one track held out for validation; the
    project's folder."""
    project = init_project(folder / "project")
    ingest(project, [beats])
    rows = project.catalog.segment_rows()
    prompts = [
        PromptRow(r["id"], "template@1", f"a trap beat from {r['start']:.0f} s") for r in rows
    ]
    save_prompts(project.catalog, prompts)
    held_out = rows[0]["track_id"]
    items = [
        SelectionItem(r["id"], split="validation" if r["track_id"] == held_out else "train")
        for r in rows
    ]
    save_selection(project.catalog, "all", "test", items)
    settings = export_settings(project, sample_rate=SR)
    export(project, folder / "export", "all", settings, registry=registry_of(sat))
    return project.root


@pytest.fixture(scope="session")
def export_dir(beats: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `curator export` of the demo beats at the tiny model's rate, one validation track."""
    folder = tmp_path_factory.mktemp("export")
    export_demo_beats(beats, folder)
    return folder / "export"


def train_config(tiny: dict[str, Path], export_dir: Path, **overrides: Any) -> dict[str, Any]:
    config = {
        "export_dir": str(export_dir),
        "model_config": str(tiny["model_config"]),
        "ckpt": str(tiny["ckpt"]),
        "steps": 4,
        "batch_size": 2,
        "checkpoint_every": 2,
        "device": "cpu",
        "num_workers": 1,
    }
    return {**config, **overrides}


@pytest.fixture(scope="session")
def full_job(
    tiny: dict[str, Path], export_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    job = tmp_path_factory.mktemp("full")
    run("train", job, train_config(tiny, export_dir))
    return job


@pytest.fixture(scope="session")
def cancelled_lora_job(
    tiny: dict[str, Path], export_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, int]]:
    """A LoRA fine-tune of many steps, sent SIGTERM once it has done two; (folder, exit code)."""
    job = tmp_path_factory.mktemp("lora")
    lora = {"rank": 2}
    config = train_config(
        tiny, export_dir, lora=lora, steps=1000, checkpoint_every=1000, learning_rate=LORA_RATE
    )
    process = start("train", job, config)
    deadline = time.monotonic() + JOB_TIMEOUT
    while len(progress(job)) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    yield job, process.wait(timeout=JOB_TIMEOUT)


@pytest.fixture(scope="session")
def resumed_lora_job(
    cancelled_lora_job: tuple[Path, int], tiny: dict[str, Path], export_dir: Path
) -> tuple[Path, int]:
    """The cancelled job run again with `resume`, two steps further; (folder, cancelled step)."""
    job, _ = cancelled_lora_job
    stopped_at = progress(job)[-1]["step"]
    lora = {"rank": 2}
    config = train_config(
        tiny, export_dir, lora=lora, steps=stopped_at + 2, resume=True, learning_rate=LORA_RATE
    )
    run("train", job, config)
    return job, stopped_at


def test_full_fine_tune_writes_progress_checkpoints_and_the_model(full_job: Path) -> None:
    assert result(full_job)["status"] == "succeeded", result(full_job)
    lines = progress(full_job)
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    assert {line["total_steps"] for line in lines} == {4}
    assert all(np.isfinite(line["loss"]) and line["elapsed_s"] >= 0 for line in lines)
    assert lines[-1]["eta_s"] == 0
    checkpoints = sorted(p.name for p in (full_job / "checkpoints").iterdir())
    assert checkpoints == ["step-00000002.ckpt", "step-00000004.ckpt"]
    outputs = result(full_job)["outputs"]
    assert outputs["model"] == str(full_job / "model.safetensors")
    assert outputs["steps"] == 4
    # The export is the unwrapped model: the base checkpoint's keys exactly, no wrapper prefix.
    assert set(safetensors_header(full_job / "model.safetensors")) == set(
        safetensors_header(Path(json.loads((full_job / "job.json").read_text())["config"]["ckpt"]))
    )
    assert [v["step"] for v in progress(full_job, "validation.jsonl")] == [2, 4]


def test_sigterm_cancels_training_after_writing_a_checkpoint(
    cancelled_lora_job: tuple[Path, int],
) -> None:
    job, code = cancelled_lora_job
    assert code == 143, (job / "log.txt").read_text()[-3000:]
    assert result(job) == {"status": "cancelled"}
    stopped_at = progress(job)[-1]["step"]
    assert 2 <= stopped_at < 1000
    assert (job / "checkpoints" / f"step-{stopped_at:08d}.ckpt").exists()
    assert not (job / "lora.safetensors").exists()


def test_resume_continues_from_the_last_checkpoint(resumed_lora_job: tuple[Path, int]) -> None:
    job, stopped_at = resumed_lora_job
    assert result(job)["status"] == "succeeded", result(job)
    # The cancelled run wrote steps 1..k; a resumed run goes on at k+1 (a restart would say 1).
    assert [line["step"] for line in progress(job)] == list(range(1, stopped_at + 3))
    assert result(job)["outputs"]["steps"] == stopped_at + 2


def test_lora_export_holds_only_the_adapters(
    resumed_lora_job: tuple[Path, int], full_job: Path
) -> None:
    job, _ = resumed_lora_job
    lora = job / "lora.safetensors"
    keys = safetensors_header(lora)
    assert keys and all(".parametrizations.weight.0.lora_" in key for key in keys)
    assert lora.stat().st_size * 4 < (full_job / "model.safetensors").stat().st_size
    checkpoints = sorted((job / "checkpoints").glob("*.lora.safetensors"))
    assert checkpoints, "each LoRA checkpoint comes with its adapters alone"


def test_generate_from_the_fine_tune_checkpoint_with_the_lora(
    full_job: Path, resumed_lora_job: tuple[Path, int], tiny: dict[str, Path], tmp_path: Path
) -> None:
    lora_job, _ = resumed_lora_job
    config: dict[str, Any] = {
        "model_config": str(tiny["model_config"]),
        # A training checkpoint (wrapper keys, EMA weights) as the base, the LoRA on top.
        "ckpt": str(full_job / "checkpoints" / "step-00000004.ckpt"),
        "loras": [{"path": str(lora_job / "lora.safetensors"), "strength": 0.5}],
        "prompts": ["a dark trap beat", "piano and 808 at 140 bpm"],
        "negative_prompt": "noise",
        "seconds": 1.5,
        "steps": 3,
        "cfg_scale": 4,
        "seed": 11,
        "device": "cpu",
    }
    assert run("generate", tmp_path, config) == 0, (tmp_path / "log.txt").read_text()[-3000:]
    assert result(tmp_path)["status"] == "succeeded"
    wavs = sorted((tmp_path / "audio").glob("*.wav"))
    assert [w.name for w in wavs] == ["01-a-dark-trap-beat.wav", "02-piano-and-808-at-140-bpm.wav"]
    for index, wav in enumerate(wavs):
        info = sf.info(str(wav))
        assert (info.frames, info.samplerate, info.channels) == (int(1.5 * SR), SR, 2)
        record = json.loads(wav.with_suffix(".json").read_text())
        assert record["prompt"] == config["prompts"][index]
        assert record["seed"] == 11 + index
        assert record["loras"] == [{"path": config["loras"][0]["path"], "strength": 0.5}]
        assert record["negative_prompt"] == "noise" and record["sampler"] == "euler"
        assert (record["steps"], record["cfg_scale"], record["seconds"]) == (3, 4.0, 1.5)
    lines = progress(tmp_path)
    assert lines[-1] == {"step": 3, "total_steps": 3, "item": 2, "items": 2}


def test_a_checkpoint_with_mismatched_keys_is_refused(
    tiny: dict[str, Path], export_dir: Path, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong-prefix.safetensors"
    rename_keys(tiny["ckpt"], wrong, "model.model.", "model.net.")
    job = tmp_path / "job"
    assert run("train", job, train_config(tiny, export_dir, ckpt=str(wrong))) == 1
    error = result(job)["error"]
    assert "does not match the model" in error
    assert "missing keys: model.model." in error and "unexpected keys: model.net." in error
    assert not (job / "checkpoints").exists()


def test_an_all_silent_dataset_fails_before_training(tiny: dict[str, Path], tmp_path: Path) -> None:
    export = write_export(tmp_path / "export", level=0.0)
    job = tmp_path / "job"
    assert run("train", job, train_config(tiny, export)) == 1
    error = result(job)["error"]
    assert "no usable audio among 4 files" in error and "silent" in error
    assert progress(job) == []


# A checkpoint whose unpickling runs code: what a file from an untrusted source can hold.
PICKLE_BOMB = """
import sys, torch

class RunsCode:
    def __reduce__(self):
        return (exec, ("open(%r, 'w').write('ran')" % sys.argv[2],))

torch.save({"state_dict": {}, "extra": RunsCode()}, sys.argv[1])
"""


def pickle_bomb(path: Path, marker: Path) -> Path:
    """A .ckpt that writes `marker` when fully unpickled, made by .venv-train's torch."""
    subprocess.run([str(PYTHON), "-c", PICKLE_BOMB, str(path), str(marker)], check=True)
    return path


def generate_config(tiny: dict[str, Path], **overrides: Any) -> dict[str, Any]:
    config = {
        "model_config": str(tiny["model_config"]),
        "ckpt": str(tiny["ckpt"]),
        "prompts": ["a dark trap beat"],
        "seconds": 1.0,
        "steps": 1,
        "device": "cpu",
    }
    return {**config, **overrides}


def test_a_checkpoint_that_needs_pickle_is_refused_unless_trusted(
    tiny: dict[str, Path], tmp_path: Path
) -> None:
    marker = tmp_path / "code-ran"
    bomb = pickle_bomb(tmp_path / "base.ckpt", marker)
    for name, config in (
        ("as-base", generate_config(tiny, ckpt=str(bomb))),
        ("as-lora", generate_config(tiny, loras=[{"path": str(bomb)}])),
    ):
        job = tmp_path / name
        assert run("generate", job, config) == 1
        error = result(job)["error"]
        assert f"checkpoint {bomb} holds Python objects (exec)" in error, error
        assert "--trust-checkpoint" in error
    assert not marker.exists()
    # The explicit flag loads it fully: its code runs, then its empty weights do not fit.
    trusted = tmp_path / "trusted"
    config = generate_config(tiny, ckpt=str(bomb), trust_checkpoint=True)
    assert run("generate", trusted, config) == 1
    assert marker.read_text() == "ran"
    assert "does not match the model" in result(trusted)["error"]


# ---------------------------------------------------------------- training learns


@pytest.fixture(scope="session")
def overfit_job(tiny: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A full fine-tune that sees one batch over and over: two files exactly one crop long,
    cropped at their start, batch 2, 40 steps at a learning rate of 3e-3."""
    folder = tmp_path_factory.mktemp("overfit")
    sample_size = json.loads(tiny["model_config"].read_text())["sample_size"]
    export = write_export(folder / "export", files=(2, 0), samples=sample_size, random_crop=False)
    config = train_config(tiny, export, steps=40, checkpoint_every=1000, learning_rate=3e-3)
    run("train", folder / "job", config)
    return folder / "job"


@pytest.fixture(scope="session")
def overfit_latents_job(tiny: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """overfit_job's run from latents: the same two files encoded once (the encode job), then
    the same 40 steps read through stable-audio-tools' pre_encoded loader."""
    folder = tmp_path_factory.mktemp("overfit-latents")
    sample_size = json.loads(tiny["model_config"].read_text())["sample_size"]
    export = write_export(folder / "export", files=(2, 0), samples=sample_size, random_crop=False)
    encode = {
        "export_dir": str(export),
        "model_config": str(tiny["model_config"]),
        "ckpt": str(tiny["ckpt"]),
        "out_dir": str(folder / "latents"),
        "batch_size": 2,
        "device": "cpu",
    }
    assert run("encode", folder / "encode", encode) == 0, (folder / "encode/log.txt").read_text()
    config = train_config(
        tiny, folder / "latents", steps=40, checkpoint_every=1000, learning_rate=3e-3
    )
    run("train", folder / "job", config)
    return folder / "job"


def tensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


def test_training_overfits_one_batch(overfit_job: Path, tiny: dict[str, Path]) -> None:
    """The loss on a repeated batch falls by more than half and the trained weights move.

    Each step's loss is computed before its update, so the first is the base weights' loss.
    The diffusion loss draws a new noise level each step, hence the mean of the last ten; the
    run is seeded, so the figures are the same every time (about 1.05, then 0.2).
    """
    assert result(overfit_job)["status"] == "succeeded", (overfit_job / "log.txt").read_text()
    losses = [line["loss"] for line in progress(overfit_job)]
    assert len(losses) == 40
    # The figures docs/training.md quotes (`pytest -s` shows them).
    print(f"loss {losses[0]:.2f} at the first step, {np.mean(losses[-10:]):.2f} over the last 10")
    assert np.mean(losses[-10:]) < 0.5 * losses[0], losses
    before, after = tensors(tiny["ckpt"]), tensors(overfit_job / "model.safetensors")
    assert set(before) == set(after)
    moved = {k for k in before if not np.array_equal(before[k], after[k])}
    # The DiT's fixed Fourier features, rotary frequencies and LayerNorms' zero betas are
    # buffers: no optimizer sees them.
    fixed = {k for k in before if k.endswith((".beta", ".inv_freq")) or ".timestep_features." in k}
    dit = {k for k in before if k.startswith("model.")}
    assert dit - fixed == moved & dit, sorted(dit - fixed - moved)
    assert {k for k in before if k.startswith("conditioner.")} <= moved
    assert not {k for k in moved if k.startswith("pretransform.")}, "the autoencoder is frozen"


def test_training_from_latents_overfits_one_batch(overfit_latents_job: Path) -> None:
    """From pre-encoded latents the repeated batch is learned too: the loss falls by half."""
    job = overfit_latents_job
    assert result(job)["status"] == "succeeded", (job / "log.txt").read_text()[-3000:]
    assert "training from latents" in (job / "log.txt").read_text()
    losses = [line["loss"] for line in progress(job)]
    assert len(losses) == 40 and all(np.isfinite(losses))
    print(f"loss {losses[0]:.2f} at the first step, {np.mean(losses[-10:]):.2f} over the last 10")
    assert np.mean(losses[-10:]) < 0.5 * losses[0], losses


# Generates the same prompt with the same seed three times in one process, with what the
# generate job runs (run_generate): the base, the base with a LoRA, the base with another.
GENERATE_THREE = """
import json, sys
from pathlib import Path
from training.generate import run_generate

config, out = json.loads(sys.argv[1]), Path(sys.argv[2])
for name, lora in (("base", None), ("lora", sys.argv[3]), ("zero", sys.argv[4])):
    run_generate(out / name, {**config, "loras": [{"path": lora}] if lora else []})
"""


def zero_lora(source: Path, target: Path) -> Path:
    """The LoRA with its B matrices zeroed: B @ A adds nothing, as a LoRA does before training."""
    from safetensors.numpy import save_file

    weights = tensors(source)
    save_file({k: v * 0 if k.endswith(".lora_B") else v for k, v in weights.items()}, str(target))
    return target


def test_a_lora_changes_what_is_generated(
    resumed_lora_job: tuple[Path, int], tiny: dict[str, Path], tmp_path: Path
) -> None:
    """Same prompt and seed: the trained LoRA changes the audio far beyond 16-bit rounding,
    while a LoRA whose B matrices are zero leaves it bit for bit the same (so the comparison
    can fail: generation is deterministic, and attaching adapters alone changes nothing)."""
    lora = resumed_lora_job[0] / "lora.safetensors"
    zero = zero_lora(lora, tmp_path / "zero.lora.safetensors")
    config = generate_config(tiny, prompts=["a dark trap beat"], steps=3, cfg_scale=4, seed=7)
    arguments = [json.dumps(config), str(tmp_path), str(lora), str(zero)]
    subprocess.run(
        [str(PYTHON), "-c", GENERATE_THREE, *arguments],
        check=True,
        env=environment(),
        timeout=JOB_TIMEOUT,
    )
    audio = {
        name: sf.read(tmp_path / name / "audio" / "01-a-dark-trap-beat.wav")[0]
        for name in ("base", "lora", "zero")
    }
    rms = {name: float(np.sqrt(np.mean(a**2))) for name, a in audio.items()}
    change = float(np.sqrt(np.mean((audio["lora"] - audio["base"]) ** 2)))
    # The figure docs/training.md quotes (`pytest -s` shows it).
    print(f"LoRA changes the audio by {change / rms['base']:.2%} of its rms")
    # 16-bit rounding alone differs by an rms of 1/32768/sqrt(12), under 1e-5.
    assert rms["base"] > 0.01 and change > 1e-3 * rms["base"] and change > 1e-4, (change, rms)
    assert np.array_equal(audio["zero"], audio["base"])
