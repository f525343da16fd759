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
INPUT = "model/Placeholder"
OUTPUT = "model/Sigmoid"
PENULTIMATE = "model/dense/BiasAdd"  # 200 values per patch, before the ReLU
PATCH_FRAMES = 187  # one 3 s patch of 96 mel bands, what the models were trained on
FRAME_SIZE, FRAME_HOP = 512, 256  # the mel frames TensorflowPredictMusiCNN cuts
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
        # The averaged tag probabilities start the cached "embedding": with them a changed
        # tag map or vocabulary re-tags the catalogue without decoding audio again.
        self.embedding_model = self.settings.embedding_model
        if self.settings.embedding == "penultimate":
            self.predict = PatchPredictor(graph)
        else:
            self.predict = load_predictor(graph)

    def tag(self, batch: Sequence[SegmentAudio]) -> list[TagResult]:
        if not batch:
            return []
        return self.tag_embeddings(np.stack([self.embedding(s) for s in batch]))

    def tag_embeddings(self, embeddings: np.ndarray) -> list[TagResult]:
        """Re-score cached rows with the current mapping; their first 50 values are the
        tag probabilities (the penultimate layer, when cached, follows them)."""
        count = len(self.layout.tags)
        return [
            TagResult(self.layout.scores(row[:count]), row.astype(np.float32)) for row in embeddings
        ]

    def embedding(self, segment: SegmentAudio) -> np.ndarray:
        """What is cached for a segment: the tag probabilities, then any penultimate layer."""
        if segment.sample_rate != SAMPLE_RATE:
            raise ValueError(
                f"musicnn needs {SAMPLE_RATE} Hz audio, got {segment.sample_rate} Hz "
                f"for segment {segment.segment_id}"
            )
        outputs = self.predict(mono_for_patches(segment.audio))
        if isinstance(outputs, tuple):
            return np.concatenate([part.mean(axis=0) for part in outputs])
        return np.asarray(outputs).mean(axis=0)

    def probabilities(self, segment: SegmentAudio) -> np.ndarray:
        """The 50 tag probabilities, averaged over the segment's 3 s patches."""
        return self.embedding(segment)[: len(self.layout.tags)]

    def settings_for_run(self) -> dict[str, Any]:
        """The model and the tag mapping in use: what decides this tagger's scores."""
        recorded = {"model": self.settings.model, "tag_map": self.layout.mapping_by_name()}
        if self.settings.embedding != "tags":  # runs of the default keep their old identity
            recorded["embedding"] = self.settings.embedding
        return recorded


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


class PatchPredictor:
    """Tag probabilities and the penultimate layer of every patch, from one graph run.

    The same steps as TensorflowPredictMusiCNN (frames centred from the first sample,
    float32 log-mel bands, non-overlapping 187-frame patches), which gives one output only.
    """

    def __init__(self, graph: Path) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import essentia.standard as es  # see load_predictor: before any Python TensorFlow

        self.bands = es.TensorflowInputMusiCNN()
        self.frames = es.FrameGenerator
        self.model = es.TensorflowPredict(
            graphFilename=str(graph), inputs=[INPUT], outputs=[OUTPUT, PENULTIMATE]
        )

    def __call__(self, mono: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import essentia

        patches = self.patches(mono)
        pool = essentia.Pool()
        pool.set(INPUT, patches)
        found = self.model(pool)
        tags, penultimate = (
            np.asarray(found[name], np.float32).reshape(len(patches), -1)
            for name in (OUTPUT, PENULTIMATE)
        )
        return tags, penultimate

    def patches(self, mono: np.ndarray) -> np.ndarray:
        """Shape (patches, 1, 187, 96); the last incomplete patch is dropped, as Essentia does."""
        frames = self.frames(mono, frameSize=FRAME_SIZE, hopSize=FRAME_HOP, startFromZero=False)
        bands = np.array([self.bands(frame) for frame in frames], dtype=np.float32)
        if len(bands) < PATCH_FRAMES:  # mono_for_patches gives 3 s, enough; kept safe anyway
            bands = np.resize(bands, (PATCH_FRAMES, bands.shape[1]))
        count = len(bands) // PATCH_FRAMES
        return bands[: count * PATCH_FRAMES].reshape(count, 1, PATCH_FRAMES, -1)
