"""Per-tag adherence: prompts read, tempo and key scored, real audio of known tempo and key."""

from __future__ import annotations

# The plugin first: essentia must be imported before anything that may import TensorFlow.
import curator.plugins.essentia  # noqa: F401  # isort: skip

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from tests_support import HatTagger, brightness

from curator import hookimpl
from curator.charts.jobs import comparison_figure
from curator.demo import BeatSpec, random_spec, render_beat
from curator.errors import CuratorError
from curator.jobs.adherence import (
    FIFTH,
    PARALLEL,
    RELATIVE,
    SAME,
    Request,
    job_adherence,
    key_score,
    load,
    requested,
    scorers,
    tempo_match,
)
from curator.jobs.manage import get_job
from curator.project import Project
from curator.storage import jobs as job_storage

RATE = 44100


@pytest.mark.parametrize(
    ("estimate", "target", "expected"),
    [
        (140.0, 140.0, "exact"),
        (145.5, 140.0, "exact"),  # 3.9 % off
        (146.0, 140.0, "miss"),  # 4.3 % off
        (70.5, 140.0, "octave"),
        (281.0, 140.0, "octave"),
        (105.0, 140.0, "miss"),  # 3/4: not an octave error
        (93.3, 140.0, "miss"),  # 2/3
    ],
)
def test_tempo_within_four_percent_or_an_octave(estimate, target, expected) -> None:
    assert tempo_match(estimate, target) == expected


@pytest.mark.parametrize(
    ("estimate", "target", "expected"),
    [
        (("C", "major"), ("C", "major"), SAME),
        (("Eb", "minor"), ("D#", "minor"), SAME),  # spelled either way
        (("G", "major"), ("C", "major"), FIFTH),  # a fifth above
        (("F", "major"), ("C", "major"), 0.0),  # a fifth below: not in mir_eval's weights
        (("A", "minor"), ("C", "major"), RELATIVE),
        (("C", "major"), ("A", "minor"), RELATIVE),
        (("C", "minor"), ("C", "major"), PARALLEL),
        (("F#", "major"), ("C", "major"), 0.0),
        (("C", "minor"), ("A", "minor"), 0.0),
    ],
)
def test_key_scores_are_mirex_weighted(estimate, target, expected) -> None:
    assert key_score(*estimate, *target) == expected


def test_descending_fifths_can_be_allowed() -> None:
    assert key_score("F", "major", "C", "major", descending_fifths=True) == FIFTH


def test_a_prompt_names_tags_tempo_and_key(project: Project) -> None:
    seed_prompt = (
        "A melancholic and love-inspired rap with soul beat at 109 BPM in G minor, using "
        "plucked guitar, synth bells, and movie sample."
    )
    found = requested(seed_prompt, project.vocabulary())
    assert found.bpm == 109 and (found.key, found.scale) == ("G", "minor")
    assert {("instruments", "plucked guitar"), ("instruments", "synth bells")} <= set(found.tags)
    assert ("instruments", "movie sample") in found.tags
    assert ("moods", "melancholic") in found.tags
    rolls = requested("dark trap, rolling hi-hats and an 808, Eb major", project.vocabulary())
    assert ("instruments", "hi-hat rolls") in rolls.tags
    assert ("instruments", "hi-hat") not in rolls.tags  # the longer phrase took those words
    assert ("instruments", "808") in rolls.tags
    assert (rolls.key, rolls.scale, rolls.bpm) == ("D#", "major", None)


# -- real audio of known tempo and key ------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, BeatSpec]]:
    """Three 12-second demo beats at 44.1 kHz, with their ground truth."""
    folder = tmp_path_factory.mktemp("rendered")
    rng = np.random.default_rng(3)
    found = []
    for index in range(3):
        spec = dataclasses.replace(random_spec(rng, index), duration=12.0)
        path = folder / f"{index + 1:02d}-{spec.genre.replace(' ', '-')}.wav"
        sf.write(str(path), render_beat(spec, RATE), RATE)
        found.append((path, spec))
    return found


def true_prompt(spec: BeatSpec) -> str:
    instruments = ", ".join(spec.instruments[:3])
    key = f"{spec.key} {spec.scale}"
    return f"A {spec.mood} {spec.genre} beat at {spec.tempo:g} BPM in {key} with {instruments}"


def wrong_prompt(spec: BeatSpec) -> str:
    """A tempo 25 % off (not an octave) and the key a tritone away."""
    names = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
    key = names[(names.index(spec.key) + 6) % 12]
    return f"A {spec.genre} beat at {spec.tempo * 1.25:g} BPM in {key} {spec.scale}"


def generation_job(project: Project, clips: list[tuple[Path, str]], label: str) -> str:
    """A finished generation job whose clips are these files and prompts (as the training
    code leaves one: audio/NN-slug.wav with its JSON, result.json)."""
    job_id = f"generate-{label}"
    folder = project.root / "jobs" / job_id
    (folder / "audio").mkdir(parents=True)
    for path, prompt in clips:
        (folder / "audio" / path.name).write_bytes(path.read_bytes())
        (folder / "audio" / path.with_suffix(".json").name).write_text(
            json.dumps({"prompt": prompt, "seed": 0})
        )
    (folder / "launch.json").write_text(json.dumps({"meta": {"label": label}}))
    (folder / "result.json").write_text(json.dumps({"status": "succeeded", "outputs": {}}))
    job_storage.add_job(project.catalog, job_id, "generate", str(folder), {}, 0)
    return job_id


def test_adherence_of_audio_with_known_tempo_and_key(project: Project, rendered) -> None:
    asked = generation_job(project, [(p, true_prompt(s)) for p, s in rendered], "asked")
    other = generation_job(project, [(p, wrong_prompt(s)) for p, s in rendered], "other")
    ready = scorers(project, taggers=[])
    right = job_adherence(project, get_job(project, asked), ready=ready)
    wrong = job_adherence(project, get_job(project, other), ready=ready)
    assert right.errors == [] and right.plugins == ["essentia"]
    for clip, (_, spec) in zip(right.clips, rendered, strict=True):
        assert clip.request.bpm == spec.tempo
        assert clip.tempo is not None and clip.key is not None
    rows = {r["measure"]: r for r in right.rows()}
    # The rendered beats are what their prompts say: Essentia finds it (octave errors allowed).
    # On 12 s of sampled drums over a syncopated kick it may hear 4/3 of the tempo, so one
    # beat in three may miss, as for the key.
    assert rows["tempo"]["value"] >= 2 / 3 and rows["key"]["value"] >= 2 / 3
    assert rows["tempo"]["clips"] == 3 and rows["key"]["clips"] == 3
    wrong_rows = {r["measure"]: r for r in wrong.rows()}
    assert wrong_rows["tempo"]["value"] == 0.0 < rows["tempo"]["value"]
    assert wrong_rows["key"]["value"] < rows["key"]["value"]
    # Kept beside the job, and read back the same.
    assert load(get_job(project, asked).folder / "adherence.json") == right


def test_tag_scores_per_requested_tag(project: Project, rendered, plugin_registry) -> None:
    class Plugin:
        @staticmethod
        @hookimpl
        def register_taggers(register):
            register(HatTagger())

    registry = plugin_registry(Plugin)
    prompts = [(p, f"trap beat with hi-hat and 808, {s.tempo:g} BPM") for p, s in rendered]
    job_id = generation_job(project, prompts, "tags")
    found = job_adherence(
        project, get_job(project, job_id), taggers=["hats"], analyzer=None, registry=registry
    )
    assert found.plugins == ["hats"]
    for clip, (path, _) in zip(found.clips, rendered, strict=True):
        scores = {(s.facet, s.tag): s for s in clip.tags}
        assert set(scores) == {("instruments", "hi-hat"), ("instruments", "808")}
        audio, rate = sf.read(str(path), always_2d=True, dtype="float32")
        mono = audio.mean(axis=1, keepdims=True)
        # HatTagger scores hi-hat by brightness at 8 kHz: the clip's own audio was measured.
        assert scores["instruments", "hi-hat"].score == pytest.approx(
            brightness(resample_8k(mono, rate), 8000), rel=0.05
        )
        assert clip.tempo_match is None  # no analyzer asked for
    rows = {r["measure"]: r for r in found.rows()}
    assert set(rows) == {"hi-hat (hats)", "808 (hats)"}
    assert all(0.0 <= r["value"] <= 1.0 and r["clips"] == 3 for r in rows.values())


def resample_8k(audio: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    return soxr.resample(audio, rate, 8000, quality="HQ").astype(np.float32)


def test_a_tagger_that_cannot_load_is_reported(project: Project) -> None:
    ready = scorers(project, taggers=["no-such-tagger"], analyzer=None)
    assert ready.taggers == [] and "no-such-tagger" in ready.errors[0]


def test_comparison_chart_has_a_panel_per_measure(project: Project, rendered) -> None:
    clips = [(p, true_prompt(s)) for p, s in rendered[:1]]
    base = job_adherence(
        project, get_job(project, generation_job(project, clips, "base")), taggers=[]
    )
    tuned = job_adherence(
        project, get_job(project, generation_job(project, clips, "tuned")), taggers=[]
    )
    figure = comparison_figure([base, tuned])
    titles = [a.text for a in figure.layout.annotations]
    assert titles == ["tempo", "key"]
    assert [t.name for t in figure.data] == ["base", "tuned", "base", "tuned"]


def test_cli_prints_adherence(project: Project, rendered, run_cli) -> None:
    clips = [(p, true_prompt(s)) for p, s in rendered[:1]]
    job_id = generation_job(project, clips, "cli")
    shown = run_cli("jobs", "adherence", job_id, "--project", project.root, "--json").output
    (found,) = json.loads(shown)
    assert found["job_id"] == job_id and found["plugins"] == ["essentia"]
    assert {r["measure"] for r in found["summary"]} == {"tempo", "key"}
    table = run_cli("jobs", "adherence", job_id, "--project", project.root).output
    assert "tempo" in table and "key" in table
    failed = run_cli("jobs", "adherence", "nope", "--project", project.root, expect=1)
    assert "no job 'nope'" in failed.output


def test_only_finished_generation_jobs_have_adherence(project: Project) -> None:
    job_storage.add_job(project.catalog, "train-x", "train", str(project.root), {}, 0)
    with pytest.raises(CuratorError, match="adherence needs a succeeded generate job"):
        job_adherence(project, get_job(project, "train-x", refresh=False), taggers=[])


def test_requests_describe_themselves() -> None:
    from curator.jobs.adherence import describe_request

    request = Request("x", (("instruments", "808"),), 140.0, "C", "minor")
    assert describe_request(request) == "instruments: 808, 140 BPM, C minor"


def test_a_built_prompt_is_read_back(project: Project) -> None:
    from curator.jobs.adherence import build_prompt

    prompt = build_prompt("boom bap", "aggressive", ["piano", "808", "hi-hat rolls"], 90, "F#")
    assert prompt == (
        "An aggressive boom bap beat at 90 BPM in F# minor, with piano, 808 and hi-hat rolls"
    )
    found = requested(prompt, project.vocabulary())
    assert set(found.tags) == {
        ("genres", "boom bap"),
        ("moods", "aggressive"),
        ("instruments", "piano"),
        ("instruments", "808"),
        ("instruments", "hi-hat rolls"),
    }
    assert (found.bpm, found.key, found.scale) == (90, "F#", "minor")
