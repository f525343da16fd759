"""Freeze musicnn's pretrained checkpoints into TensorFlow graphs that Essentia can run.

Run once at set-up, in a throwaway environment with tensorflow-cpu and `musicnn==0.1.0`
(installed without its dependencies: it pins numpy < 1.17 and we need only its model code
and checkpoints). `scripts/setup.sh` (freeze_musicnn_graphs) does exactly that:

    python scripts/freeze_musicnn.py [OUT_DIR]     # default: .models/musicnn

For each model it writes `<model>.pb` (input "model/Placeholder" of shape [batch, 187, 96]
log-mel patches, output "model/Sigmoid", as Essentia's TensorflowPredictMusiCNN expects) and
`<model>.json` (the tag names in output order, node names, where the graph came from).
"""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version
from pathlib import Path

import tensorflow as tf
from musicnn import configuration, models
from tensorflow.python.framework import op_def_registry

MODELS = {"MTT_musicnn": configuration.MTT_LABELS, "MSD_musicnn": configuration.MSD_LABELS}
PATCH_FRAMES = 187  # 3 s at 16 kHz with a 256-sample hop: what the models were trained on
INPUT = "model/Placeholder"
OUTPUT = "model/Sigmoid"
EMBEDDING = "model/dense/BiasAdd"  # the 200-unit penultimate layer, before its ReLU
DEFAULT_OUT = Path(__file__).resolve().parent.parent / ".models" / "musicnn"


def build_graph(model: str) -> tf.Graph:
    """musicnn's own network, built as its extractor builds it, for inference only."""
    graph = tf.Graph()
    with graph.as_default(), tf.name_scope("model"):
        patches = tf.compat.v1.placeholder(tf.float32, [None, PATCH_FRAMES, configuration.N_MELS])
        # A Python False (not musicnn's is_training placeholder) builds batch norm with
        # its moving averages and no dropout, so the frozen graph needs one input only.
        logits = models.define_model(patches, False, model, len(MODELS[model]))[0]
        tf.nn.sigmoid(logits)
    return graph


def frozen_graph_def(model: str) -> tf.compat.v1.GraphDef:
    """The graph with the checkpoint's weights folded in as constants."""
    graph = build_graph(model)
    checkpoint = str(Path(models.__file__).parent / model) + "/"  # files named ".index", ...
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        tf.compat.v1.train.Saver().restore(session, checkpoint)
        graph_def = tf.compat.v1.graph_util.convert_variables_to_constants(
            session, graph.as_graph_def(), [OUTPUT, EMBEDDING]
        )
    return strip_default_attrs(graph_def)


def strip_default_attrs(graph_def: tf.compat.v1.GraphDef) -> tf.compat.v1.GraphDef:
    """Drop attributes left at their default, so Essentia's older TensorFlow reads the graph."""
    for node in graph_def.node:
        op_def = op_def_registry.get(node.op)
        for attr in op_def.attr:
            if attr.HasField("default_value") and node.attr.get(attr.name) == attr.default_value:
                del node.attr[attr.name]
    return graph_def


def check_nodes(graph_def: tf.compat.v1.GraphDef) -> None:
    """Fail loudly if the names Essentia looks for are not in the graph."""
    names = {node.name for node in graph_def.node}
    missing = [name for name in (INPUT, OUTPUT, EMBEDDING) if name not in names]
    if missing:
        raise SystemExit(f"frozen graph lacks nodes {missing}")


def describe(model: str) -> dict[str, object]:
    """What the plugin needs besides the graph: tag order, node names, provenance."""
    return {
        "model": model,
        "tags": list(MODELS[model]),
        "input": INPUT,
        "output": OUTPUT,
        "embedding": EMBEDDING,
        "patch_frames": PATCH_FRAMES,
        "mel_bands": configuration.N_MELS,
        "sample_rate": configuration.SR,
        "musicnn": version("musicnn"),
        "tensorflow": tf.__version__,
    }


def freeze(model: str, out: Path) -> None:
    """Write `<model>.pb` and `<model>.json`; the .pb is renamed into place when complete."""
    graph_def = frozen_graph_def(model)
    check_nodes(graph_def)
    partial = out / f"{model}.pb.partial"
    partial.write_bytes(graph_def.SerializeToString())
    (out / f"{model}.json").write_text(json.dumps(describe(model), indent=2) + "\n")
    partial.replace(out / f"{model}.pb")


def main(argv: list[str]) -> None:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    out.mkdir(parents=True, exist_ok=True)
    tf.compat.v1.disable_eager_execution()
    for model in MODELS:
        started = time.perf_counter()
        freeze(model, out)
        print(f"froze {model} into {out} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main(sys.argv)
