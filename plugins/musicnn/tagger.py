"""The musicnn tagger: a pretrained musicnn graph run by Essentia, averaged over a segment."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curator.api import PluginContext, SegmentAudio, Tagger, TagResult
from curator.errors import CuratorError

from .settings import MusicnnSettings
from .tag_map import FACETS, build_layout

SAMPLE_RATE = 16000
OUTPUT = "model/Sigmoid"
PATCH_FRAMES = 187  # one 3 s patch of 96 mel bands, what the models were trained on
# One patch needs 186 hops of 256 samples (2.98 s); shorter audio is repeated to 3 s.
MIN_SAMPLES = 3 * SAMPLE_RATE
SETUP_COMMAND = "`make setup` (or `bash scripts/setup.sh`)"


class MusicnnTagger(Tagger):
    """musicnn (Pons & Serra 2019) tags: 50 per model, placed in instruments, genres, moods.

    The mel bands come from Essentia's TensorflowInputMusiCNN, in float32. musicnn's own
    feature code casts them to float16 before the log, a known way to get the same tags for
    every clip; its Python pipeline is not used here.
    """

    name = "musicnn"
    version = "1"
    facets = FACETS
    sample_rate = SAMPLE_RATE
    channels = 1
    embedding_model = "musicnn-MSD_musicnn"  # set per model in setup

    def setup(self, context: PluginContext) -> None:
        """Check the settings, find the frozen graph and load it into Essentia."""
        super().setup(context)
        self.settings = MusicnnSettings.from_table(context.settings)
        model = self.settings.model
        graph, tags = read_graph_files(self.settings.graph_folder(context.project_root), model)
        self.layout = build_layout(model, tags, self.settings.tag_map, context.vocabulary)
        # The averaged tag probabilities are the cached "embedding": with them a changed
        # tag map or vocabulary re-tags the catalogue without decoding audio again.
        self.embedding_model = f"musicnn-{model}"
        self.predict = load_predictor(graph)

    def tag(self, batch: Sequence[SegmentAudio]) -> list[TagResult]:
        if not batch:
            return []
        return self.tag_embeddings(np.stack([self.probabilities(s) for s in batch]))

    def tag_embeddings(self, embeddings: np.ndarray) -> list[TagResult]:
        """Re-score cached tag probabilities (one row per segment) with the current mapping."""
        return [TagResult(self.layout.scores(row), row.astype(np.float32)) for row in embeddings]

    def probabilities(self, segment: SegmentAudio) -> np.ndarray:
        """The 50 tag probabilities, averaged over the segment's 3 s patches."""
        if segment.sample_rate != SAMPLE_RATE:
            raise ValueError(
                f"musicnn needs {SAMPLE_RATE} Hz audio, got {segment.sample_rate} Hz "
                f"for segment {segment.segment_id}"
            )
        patches = np.asarray(self.predict(mono_for_patches(segment.audio)))
        return patches.mean(axis=0)

    def settings_for_run(self) -> dict[str, Any]:
        """The model and the tag mapping in use: what decides this tagger's scores."""
        return {"model": self.settings.model, "tag_map": self.layout.mapping_by_name()}


def mono_for_patches(audio: np.ndarray) -> np.ndarray:
    """A contiguous float32 mono signal at least one patch long.

    Shorter audio is repeated to fill the patch, as musicnn's training padded short clips.
    """
    mono = np.ascontiguousarray(audio.mean(axis=1) if audio.ndim == 2 else audio, np.float32)
    if mono.size == 0:
        mono = np.zeros(1, np.float32)
    if mono.size < MIN_SAMPLES:
        mono = np.resize(mono, MIN_SAMPLES)
    return mono


def read_graph_files(folder: Path, model: str) -> tuple[Path, list[str]]:
    """The model's graph file and its tag names in output order; a clear error if missing."""
    graph, info = folder / f"{model}.pb", folder / f"{model}.json"
    for path in (graph, info):
        if not path.is_file():
            raise CuratorError(
                f"musicnn: {path} is missing. Set-up freezes musicnn's pretrained "
                f"checkpoints into {folder}: run {SETUP_COMMAND}. Or point graph_dir in "
                f"[plugins.musicnn], or $CURATOR_MODELS, at a folder holding {graph.name}."
            )
    return graph, list(json.loads(info.read_text(encoding="utf-8"))["tags"])


def load_predictor(graph: Path) -> Any:
    """Essentia's musicnn pipeline (16 kHz audio -> float32 log-mel patches -> tags)."""
    # The CUDA probing notes libtensorflow prints on a CPU machine are noise to a curator.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Essentia is imported here, not at module import: loading libtensorflow takes seconds.
    # It must come before any Python TensorFlow import; the other order aborts the process.
    import essentia.standard as es

    # Patches do not overlap (musicnn's own default); Essentia's 50% overlap doubles the
    # time for the same average over a 20-35 s segment.
    return es.TensorflowPredictMusiCNN(
        graphFilename=str(graph), output=OUTPUT, patchHopSize=PATCH_FRAMES
    )
