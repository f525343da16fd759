"""Training from raw audio against training from pre-encoded latents, and encode throughput.

Run: .venv/bin/python bench/latents_bench.py [--beats 6] [--batch-size 2] [--device cpu]
Renders demo beats, exports them at the tiny model's 16 kHz (training/tiny.py: Stable Audio
Open 1.0's shape, every dimension tiny), encodes the export once (`python -m training
encode`, the job `curator encode` runs) and runs a dry run (`curator train --dry-run`: 5
real steps, the first a warm-up) on the audio export and on the latent set, side by side in
one run. Prints seconds per step of each, their ratio, encode throughput (seconds of audio
per second) and the seed's 35,000 steps extrapolated from each step time. The tiny model's
autoencoder is a small share of its step, so the ratio says little about Stable Audio Open
1.0, whose 157 M-parameter VAE encodes 47.5 s windows at every step. Never asserts timings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import curator.plugins.stable_audio_export as sat
from curator.catalogue.ingest import ingest
from curator.demo import render_demo_dataset
from curator.export.build import export, export_settings
from curator.project import init_project
from curator.storage.prompts import PromptRow, save_prompts
from curator.storage.selections import SelectionItem, save_selection
from curator.testing import registry_of

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv-train" / "bin" / "python"
SR = 16000


def run_job(kind: str, folder: Path, config: dict[str, Any] | None) -> dict[str, Any]:
    """`python -m training KIND FOLDER` as a job runs it; its result.json (tiny: None)."""
    folder.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (folder / "job.json").write_text(json.dumps({"kind": kind, "config": config}))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    with (folder / "log.txt").open("ab") as log:
        code = subprocess.run(
            [str(PYTHON), "-m", "training", kind, str(folder)], stdout=log, stderr=log, env=env
        ).returncode
    if config is None:
        return {}
    result = json.loads((folder / "result.json").read_text())
    if code != 0 or result["status"] != "succeeded":
        raise SystemExit(f"{kind} job in {folder} failed: {result.get('error')}")
    return dict(result["outputs"])


def make_export(root: Path, beats: int) -> Path:
    render_demo_dataset(root / "beats", beats, seed=11)
    project = init_project(root / "project")
    ingest(project, [root / "beats"])
    rows = project.catalog.segment_rows()
    save_prompts(project.catalog, [PromptRow(r["id"], "t@1", "a trap beat") for r in rows])
    save_selection(project.catalog, "all", "bench", [SelectionItem(r["id"]) for r in rows])
    settings = export_settings(project, sample_rate=SR)
    export(project, root / "export", "all", settings, registry=registry_of(sat))
    return root / "export"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beats", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        export_dir = make_export(root, args.beats)
        run_job("tiny", root / "tiny", None)
        model = {
            "model_config": str(root / "tiny" / "model_config.json"),
            "ckpt": str(root / "tiny" / "model.safetensors"),
        }
        began = time.monotonic()
        encoded = run_job(
            "encode",
            root / "encode-job",
            {**model, "export_dir": str(export_dir), "out_dir": str(root / "latents")},
        )
        encode_wall = time.monotonic() - began
        common = {**model, "steps": 35000, "batch_size": args.batch_size, "dry_run": 5}
        common |= {"device": args.device, "num_workers": 1}
        plans = {
            name: run_job("train", root / f"dry-{name}", {**common, "export_dir": str(folder)})
            for name, folder in (("audio", export_dir), ("latents", root / "latents"))
        }
    audio, latents = plans["audio"], plans["latents"]
    print(f"tiny model, batch {args.batch_size}, device {args.device}, {encoded['files']} files")
    print(f"{'':28}{'from audio':>14}{'from latents':>14}")
    print(f"{'seconds per step':28}{audio['step_seconds']:>14.4f}{latents['step_seconds']:>14.4f}")
    hours = [p["seed_seconds"] / 3600 for p in (audio, latents)]
    print(f"{'seed 35,000 steps (hours)':28}{hours[0]:>14.2f}{hours[1]:>14.2f}")
    memory = [p["peak_memory_bytes"] / 2**20 for p in (audio, latents)]
    print(f"{'peak memory (MiB, ' + audio['memory'] + ')':28}{memory[0]:>14.0f}{memory[1]:>14.0f}")
    print(f"latents / audio step time: {latents['step_seconds'] / audio['step_seconds']:.2f}")
    rate = encoded["audio_seconds"] / encoded["encode_seconds"]
    print(
        f"encode: {encoded['audio_seconds']:.0f} s of audio in {encoded['encode_seconds']:.2f} s "
        f"in the autoencoder ({rate:.0f}x real time); the job took {encode_wall:.1f} s with "
        "start-up and model loading"
    )


if __name__ == "__main__":
    main()
