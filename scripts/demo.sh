#!/usr/bin/env bash
# The demo: render beats with known tempo, key and instruments (sampled instruments from a
# soundfont the trap tagger never trained on, through fluidsynth), make a project, ingest
# them, measure tempo and key (Essentia), tag their instruments (trap, the tagger that ships
# with Curator) and genres and moods (musicnn), rebalance them into a selection, write its
# prompts, export it for stable-audio-tools, show the status, and serve the app on
# http://127.0.0.1:${PORT:-8501}.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${DEMO_DIR:-demo}
N=${DEMO_BEATS:-12}
curator=.venv/bin/curator

$curator demo-data "$DEMO/beats" --n "$N" --seed 0
$curator init "$DEMO/project"
$curator ingest "$DEMO/beats" --project "$DEMO/project"
$curator analyze --plugin essentia --project "$DEMO/project"
$curator tag --plugin trap --project "$DEMO/project"
$curator tag --plugin musicnn --project "$DEMO/project"
$curator rebalance --name demo --budget "$((N * 2))" --replace --project "$DEMO/project"
$curator prompts --selection demo --project "$DEMO/project"
$curator export "$DEMO/export" --selection demo --project "$DEMO/project"
$curator status --project "$DEMO/project"
exec $curator app --project "$DEMO/project" --port "${PORT:-8501}"
