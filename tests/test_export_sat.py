"""The stable-audio-tools exporter: its files, and stable-audio-tools' own loader reading them."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import curator.plugins.stable_audio_export as sat
from curator.catalogue.audio import level_db
from curator.catalogue.ingest import ingest
from curator.export.build import export, export_settings
from curator.export.records import MANIFEST
from curator.project import Project, init_project
from curator.storage.prompts import PromptRow, save_prompts
from curator.storage.selections import SelectionItem, save_selection
from curator.testing import registry_of

REPO = Path(__file__).resolve().parent.parent
TRAIN_PYTHON = REPO / ".venv-train" / "bin" / "python"

# Runs inside .venv-train: one epoch of each split through stable-audio-tools' own loader,
# printing what came back per sample as JSON lines.
ITERATE = """
import json, sys, time
from stable_audio_tools.data.dataset import create_dataloader_from_config

out = sys.argv[1]
for config_name in sys.argv[2:]:
    with open(f"{out}/{config_name}") as handle:
        config = json.load(handle)
    loader = create_dataloader_from_config(
        config, batch_size=2, sample_size=65536, sample_rate=44100, audio_channels=2,
        num_workers=1, shuffle=False,
    )
    # What the dataset unpickles for every sample.
    pickled = max(len(fn) for fn in loader.dataset.custom_metadata_fns.values())
    for audio, infos in loader:
        assert audio.shape[1:] == (2, 65536), audio.shape
        for sample, info in zip(audio, infos):
            print(json.dumps({
                "config": config_name, "path": info["path"],
                "prompt": info["prompt"], "seconds_start": info["seconds_start"],
                "seconds_total": info["seconds_total"], "peak": float(sample.abs().max()),
                "pickled_bytes": pickled, "rejected": "__reject__" in info,
            }))
"""


@pytest.fixture(scope="module")
def beats_export(beats: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, Path]:
    """The demo beats exported with a selection: repeats, a validation track, own prompts.

    Module-scoped: the tests here only read the export.
    """
    tmp_path = tmp_path_factory.mktemp("beats-export")
    project = init_project(tmp_path / "project")
    ingest(project, [beats])
    rows = project.catalog.segment_rows()
    save_prompts(
        project.catalog,
        [PromptRow(r["id"], "template@1", f"Beat {r['id']} at {r['start']:.1f} s.") for r in rows],
    )
    validation_track = rows[0]["track_id"]
    items = [
        SelectionItem(
            r["id"],
            repeats=2 if k % 3 == 1 else 1,
            split="validation" if r["track_id"] == validation_track else "train",
        )
        for k, r in enumerate(rows)
    ]
    save_selection(project.catalog, "balanced", "test", items)
    out = tmp_path / "export"
    settings = export_settings(project, seconds="track")
    export(project, out, "balanced", settings, registry=registry_of(sat))
    return project, out


def manifest(out: Path) -> dict[str, dict]:
    lines = (out / MANIFEST).read_text().splitlines()
    return {record["filepath"]: record for record in map(json.loads, lines)}


@pytest.mark.slow
@pytest.mark.train_env
def test_stable_audio_tools_loader_gives_each_file_its_manifest_prompt(
    beats_export: tuple[Project, Path], tmp_path: Path
) -> None:
    assert TRAIN_PYTHON.exists(), "run `make setup` (scripts/setup.sh) to build .venv-train"
    project, out = beats_export
    records = manifest(out)
    for path in records:  # no file is silent: stable-audio-tools would loop on them forever
        audio, _ = sf.read(str(out / path), dtype="float32")
        assert level_db(audio)[0] > project.settings.ingest.silence_threshold_db, path
    script = tmp_path / "iterate.py"
    script.write_text(ITERATE)
    configs = [sat.CONFIGS["train"], sat.CONFIGS["validation"]]
    result = subprocess.run(
        [str(TRAIN_PYTHON), str(script), str(out), *configs],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # the configs' absolute paths must not depend on the working folder
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    samples = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    train = [s for s in samples if s["config"] == sat.CONFIGS["train"]]
    val = [s for s in samples if s["config"] == sat.CONFIGS["validation"]]
    train_files = [p for p, r in records.items() if r["split"] == "train"]
    assert len(train) == len(train_files) // 2 * 2  # one epoch; drop_last drops an odd one
    assert len(val) == sum(r["split"] == "validation" for r in records.values())
    for sample in samples:
        sample["relpath"] = Path(sample["path"]).relative_to(out).as_posix()
        record = records[sample["relpath"]]
        assert sample["prompt"] == record["prompt"]
        assert not sample["rejected"] and sample["peak"] > 1e-3
        # --seconds track: the crop's place in the source track, and the track's length.
        assert sample["seconds_total"] == np.ceil(record["seconds_total"])
        assert (
            record["start"] - 1 <= sample["seconds_start"] <= record["start"] + record["duration"]
        )
    assert {s["relpath"] for s in val} == {
        p for p, r in records.items() if r["split"] == "validation"
    }
    # The lookup function travels to the workers (and per sample) without the manifest.
    assert max(s["pickled_bytes"] for s in samples) < 20_000


def test_dataset_configs_name_the_final_folder(beats_export: tuple[Project, Path]) -> None:
    _, out = beats_export
    for split, name in sat.CONFIGS.items():
        config = json.loads((out / name).read_text())
        assert config["dataset_type"] == "audio_dir"
        (dataset,) = config["datasets"]
        assert dataset == {
            "id": f"curator-{split}",
            "path": str(out / split),
            "custom_metadata_module": str(out / sat.METADATA_MODULE),
        }
        assert config["drop_last"] is (split == "train")


def test_readme_says_what_it_is_and_how_to_train(beats_export: tuple[Project, Path]) -> None:
    _, out = beats_export
    text = (out / "README.md").read_text()
    records = manifest(out)
    n_train = sum(r["split"] == "train" for r in records.values())
    assert f"`train/`: {n_train} audio files" in text
    assert f"--dataset-config {out / 'dataset_config.json'}" in text
    assert "--val-dataset-config" in text and "absolute paths" in text


def test_the_metadata_module_looks_prompts_up_by_path(
    beats_export: tuple[Project, Path],
) -> None:
    _, out = beats_export
    spec = importlib.util.spec_from_file_location("metadata_module", out / sat.METADATA_MODULE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    records = manifest(out)
    chunk = np.zeros((2, 65536), dtype=np.float32)
    for path, record in records.items():
        info = {"path": str(out / path), "timestamps": (0.5, 0.6), "sample_rate": 44100}
        found = module.get_custom_metadata(info, chunk)
        assert found["prompt"] == record["prompt"]
        offset = 0.5 * max(record["duration"], 65536 / 44100)
        assert found["seconds_start"] == int(np.floor(record["seconds_start"] + offset))
    stray = {"path": str(out / "train" / "not-exported.wav"), "seconds_start": 0}
    assert module.get_custom_metadata(stray, chunk) == {"__reject__": True}
    assert str(out.resolve()) in vars(sys.modules["_curator_export_manifests"])


def test_export_without_final_writes_paths_to_out(tmp_path: Path) -> None:
    records = [{"split": "train", "segment_id": "s", "track_id": "t", "duration": 3.0}]
    exporter = sat.StableAudioExporter()
    assert exporter.export(records, tmp_path) == tmp_path
    config = json.loads((tmp_path / "dataset_config.json").read_text())
    assert config["datasets"][0]["path"] == str(tmp_path.resolve() / "train")
    assert not (tmp_path / "val_dataset_config.json").exists()
