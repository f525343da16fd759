"""Search by words and by sound: the indexes, their cache, tag matching, the text tower, CLI."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from conftest import tone

from curator import hookimpl
from curator.api import PluginContext, Tagger, TagResult
from curator.catalogue.ingest import ingest
from curator.errors import CuratorError
from curator.project import Project, init_project, open_project
from curator.search import index as search_index
from curator.search import search_text, similar_to, text_tower
from curator.search.cache import VECTORS, index_folder, open_index
from curator.search.index import ApproximateIndex, ExactIndex, choose_kind
from curator.search.words import match_tags
from curator.storage import HumanLabel
from curator.tagging.runs import run_tagger
from curator.testing import registry_of
from curator.vocabulary import default_vocabulary_dir, load_vocabulary

SR = 8000
DIM = 12


class NoiseTagger(Tagger):
    """Embeds each segment as a seeded random vector (seed: the segment id and `[plugins.noise]
    seed`) and scores "808" and "hi-hat" from its first two values."""

    name, version, facets, sample_rate = "noise", "1", ("instruments",), SR
    embedding_model = "noise:test"

    def setup(self, context: PluginContext) -> None:
        super().setup(context)
        self.seed = int(context.settings.get("seed", 0))

    def settings_for_run(self) -> dict[str, Any]:
        return dict(self.context.settings)  # any change re-tags every segment

    def tag_order(self) -> list[tuple[str, str]]:
        return [("instruments", "808"), ("instruments", "hi-hat")]

    def tag(self, batch: Any) -> list[TagResult]:
        return [self._result(segment.segment_id) for segment in batch]

    def _result(self, segment_id: str) -> TagResult:
        rng = np.random.default_rng([zlib.crc32(segment_id.encode()), self.seed])
        vector = rng.standard_normal(DIM).astype(np.float32)
        scores = {"808": float(vector[0]), "hi-hat": float(vector[1])}
        return TagResult({"instruments": scores}, embedding=vector)


class NoisePlugin:
    @hookimpl
    def register_taggers(self, register: Callable[[Tagger], None]) -> None:
        register(NoiseTagger())


def add_tracks(project: Project, folder: Path, seeds: range) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        sf.write(
            folder / f"track{seed}.wav", tone(50, SR, 1, freq=110.0 * (1 + seed), seed=seed), SR
        )
    ingest(project, [folder])


def tag_with_noise(project: Project, **settings: Any) -> None:
    table = "".join(f"{key} = {value!r}\n" for key, value in settings.items())
    toml = project.root / "curator.toml"
    text = toml.read_text().split("\n[plugins.noise]\n")[0]
    toml.write_text(text + (f"\n[plugins.noise]\n{table}" if table else ""))
    run_tagger(open_project(project.root), "noise", registry=registry_of(NoisePlugin()))


@pytest.fixture
def noise_project(tmp_path: Path) -> Project:
    """Three tracks (two segments each) embedded by the noise tagger."""
    project = init_project(tmp_path / "project")
    add_tracks(project, tmp_path / "audio", range(3))
    tag_with_noise(project)
    return project


def brute_force(vectors: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    """Rows by cosine with `query`, in float64, from first principles."""
    rows = vectors.astype(np.float64)
    cosines = rows @ query.astype(np.float64)
    cosines /= np.linalg.norm(rows, axis=1) * np.linalg.norm(query)
    return [int(i) for i in np.argsort(-cosines, kind="stable")[:k]]


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


# -- the indexes ------------------------------------------------------------------------------


def test_exact_index_ranks_as_brute_force_in_any_block_size(monkeypatch) -> None:
    rng = np.random.default_rng(1)
    vectors = unit(rng.standard_normal((3000, 32)))
    queries = rng.standard_normal((3, 32)).astype(np.float32)
    monkeypatch.setattr(search_index, "SCORE_BYTES", 4 * 1024 * 3)  # 1,024-row blocks
    scores, positions = ExactIndex(vectors).search(unit(queries), 10)
    for query, found, values in zip(queries, positions, scores, strict=True):
        assert found.tolist() == brute_force(vectors, query, 10)
        assert np.all(np.diff(values) <= 0)
    _, everything = ExactIndex(vectors[:5]).search(unit(queries[:1]), 10)
    assert sorted(everything[0].tolist()) == [0, 1, 2, 3, 4]


def test_approximate_index_recall_at_10_on_random_vectors() -> None:
    rng = np.random.default_rng(2)
    vectors = unit(rng.standard_normal((20_000, 64)))
    queries = unit(rng.standard_normal((40, 64)))
    index = ApproximateIndex.build(vectors)
    scores, positions = index.search(queries, 10)
    recall = np.mean(
        [
            len(set(p.tolist()) & set(brute_force(vectors, q, 10))) / 10
            for q, p in zip(queries, positions, strict=True)
        ]
    )
    assert recall >= 0.95
    # Its scores are the exact cosines of the rows it returns.
    assert np.allclose(scores[0], vectors[positions[0]] @ queries[0], atol=1e-6)


def test_the_index_kind_follows_size_unless_chosen() -> None:
    assert choose_kind(99, "auto", 100) == "exact"
    assert choose_kind(100, "auto", 100) == "approximate"
    assert choose_kind(10**6, "exact", 100) == "exact"
    assert choose_kind(1, "approximate", 100) == "approximate"
    with pytest.raises(ValueError, match="index must be one of"):
        choose_kind(1, "fast", 100)


# -- the cache --------------------------------------------------------------------------------


def catalogue_vectors(project: Project) -> dict[str, np.ndarray]:
    ids, matrix = project.catalog.embeddings("noise:test")
    return dict(zip(ids, unit(matrix), strict=True))


def assert_index_is_catalogue(project: Project, kind: str = "exact") -> Any:
    cached = open_index(project, "noise:test", kind, 10**6)
    truth = catalogue_vectors(project)
    assert sorted(cached.ids) == sorted(truth)
    for segment_id in truth:
        assert np.array_equal(cached.vector(segment_id), truth[segment_id])
    return cached


def test_the_index_is_built_then_only_new_embeddings_are_added(
    noise_project: Project, tmp_path: Path
) -> None:
    assert assert_index_is_catalogue(noise_project).updated == "built"
    assert open_index(noise_project, "noise:test", "exact", 10**6).updated == "unchanged"
    first = (index_folder(noise_project, "noise:test") / VECTORS).read_bytes()
    add_tracks(noise_project, tmp_path / "audio", range(3, 5))
    tag_with_noise(noise_project)
    cached = assert_index_is_catalogue(noise_project)
    assert cached.updated == "added 4"
    assert (index_folder(noise_project, "noise:test") / VECTORS).read_bytes().startswith(first)


def test_a_retag_that_changes_vectors_rebuilds_and_one_that_does_not_keeps(
    noise_project: Project,
) -> None:
    assert_index_is_catalogue(noise_project, "approximate")
    tag_with_noise(noise_project, label="again")  # new runs, the same vectors
    assert assert_index_is_catalogue(noise_project).updated == "unchanged (same vectors re-run)"
    tag_with_noise(noise_project, seed=7)
    cached = assert_index_is_catalogue(noise_project, "approximate")
    assert cached.updated == "rebuilt: embeddings changed"
    first = cached.ids[0]
    hits = similar_to(noise_project, first, limit=3, index="approximate").hits
    assert hits == similar_to(noise_project, first, limit=3, index="exact").hits


def test_rows_left_by_an_interrupted_update_are_cut_off(
    noise_project: Project, tmp_path: Path
) -> None:
    assert_index_is_catalogue(noise_project)
    with (index_folder(noise_project, "noise:test") / VECTORS).open("ab") as handle:
        handle.write(b"\x7f" * 4 * DIM * 3)  # rows written, keys never committed
    add_tracks(noise_project, tmp_path / "audio", range(3, 4))
    tag_with_noise(noise_project)
    assert assert_index_is_catalogue(noise_project, "approximate").updated == "added 2"


# -- similar_to -------------------------------------------------------------------------------


def test_similar_ranks_by_cosine_without_the_segment_and_its_track(noise_project: Project) -> None:
    vectors = catalogue_vectors(noise_project)
    query = "track0"
    segment = next(s for s in vectors if s in own_segments(noise_project, query))
    result = similar_to(noise_project, segment, limit=10)
    others = [s for s in vectors if s not in own_segments(noise_project, query)]
    expected = sorted(others, key=lambda s: -float(vectors[s] @ vectors[segment]))
    assert [h.segment_id for h in result.hits] == expected
    assert result.hits[0].score == pytest.approx(
        float(vectors[expected[0]] @ vectors[segment]), abs=1e-5
    )
    assert "noise:test" in result.how and "own track left out" in result.how


def own_segments(project: Project, stem: str) -> set[str]:
    return {r["id"] for r in project.catalog.segment_rows() if Path(r["source"]).stem == stem}


def test_similar_leaves_out_excluded_segments(noise_project: Project) -> None:
    ids = sorted(catalogue_vectors(noise_project))
    best = similar_to(noise_project, ids[0], limit=1).hits[0].segment_id
    noise_project.catalog.set_exclusions({best: True}, "ana", "b1")
    assert best not in {h.segment_id for h in similar_to(noise_project, ids[0]).hits}


def test_similar_errors_name_the_segment_and_what_to_run(
    noise_project: Project, tmp_path: Path, write_audio
) -> None:
    with pytest.raises(CuratorError, match="no segment 'nope' in the catalogue"):
        similar_to(noise_project, "nope")
    segment = sorted(catalogue_vectors(noise_project))[0]
    with pytest.raises(CuratorError, match="has no cached embedding of 'clap:x'"):
        similar_to(noise_project, segment, model="clap:x")
    project = init_project(tmp_path / "untagged")
    ingest(project, [write_audio("beat.wav").parent])
    fresh = project.catalog.segment_rows()[0]["id"]
    with pytest.raises(CuratorError, match="run `curator tag --plugin trap` first"):
        similar_to(project, fresh)


# -- words ------------------------------------------------------------------------------------


def test_words_match_tags_and_synonyms_longest_first() -> None:
    vocabulary = load_vocabulary(default_vocabulary_dir())
    assert match_tags("Rolling Hi-Hats over 808s", vocabulary) == [
        ("instruments", "hi-hat rolls"),
        ("instruments", "808"),
    ]
    assert match_tags("crisp snares, bells", vocabulary) == [
        ("instruments", "snare"),
        ("instruments", "synth bells"),
    ]
    assert ("moods", "dark") in match_tags("something dark", vocabulary)
    with pytest.raises(CuratorError, match=r"no tag matches 'xyzzy'; known tags: .*808"):
        match_tags("xyzzy", vocabulary)


def test_tag_search_ranks_by_scores_and_a_persons_label_wins(noise_project: Project) -> None:
    ids, scores = noise_project.catalog.scores(noise_project.catalog.runs()[-1]["id"])
    by_808 = [s for _, s in sorted(zip(scores[:, 0], ids, strict=True), reverse=True)]
    result = search_text(noise_project, "808 bass", limit=10)
    assert [h.segment_id for h in result.hits] == by_808
    assert result.how.startswith("tags 808 (noise scores")
    top, bottom = by_808[0], by_808[-1]
    noise_project.catalog.apply_human_labels(
        [HumanLabel(top, "instruments", "808", False), HumanLabel(bottom, "instruments", "808")],
        "ana",
        "b1",
    )
    hits = [h.segment_id for h in search_text(noise_project, "808", limit=10).hits]
    assert hits[0] == bottom and hits[-1] == top


def test_tag_search_says_when_nothing_is_tagged(project: Project, write_audio) -> None:
    ingest(project, [write_audio("beat.wav").parent])
    with pytest.raises(CuratorError, match="no segment has a score or a label for 808"):
        search_text(project, "808")


# -- the text tower (tiny CLAP) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def clap_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Two tones tagged by the CLAP plugin with the tiny random-weight model."""
    from curator.testing.tiny_clap import build_tiny_clap

    root = tmp_path_factory.mktemp("clap")
    model = build_tiny_clap(root / "tiny-clap")
    project = init_project(root / "project")
    with (project.root / "curator.toml").open("a") as handle:
        handle.write(f'\n[plugins.clap]\nmodel = "{model}"\n')
    project = open_project(project.root)
    audio = root / "audio"
    audio.mkdir()
    for seed in range(2):
        sf.write(
            audio / f"beat{seed}.wav", tone(45, 48000, 1, freq=200.0 * (seed + 1), seed=seed), 48000
        )
    ingest(project, [audio])
    run_tagger(project, "clap")
    return project


@pytest.mark.slow
def test_text_goes_through_the_clap_text_tower(clap_project: Project) -> None:
    from curator.plugins.clap import ClapTextEmbedder

    embedder = ClapTextEmbedder()
    embedder.setup(PluginContext(settings=clap_project.settings.plugins["clap"]))
    query = embedder.embed_text(["dark bells"])[0].astype(np.float64)
    ids, matrix = clap_project.catalog.embeddings("clap:tiny-clap")
    cosines = matrix.astype(np.float64) @ query / np.linalg.norm(matrix, axis=1)
    expected = [ids[i] for i in np.argsort(-cosines)]
    result = search_text(clap_project, "dark bells", limit=10)
    assert result.how.startswith("clap text tower (clap:tiny-clap")
    assert [h.segment_id for h in result.hits] == expected
    assert [h.score for h in result.hits] == pytest.approx(sorted(cosines, reverse=True), abs=1e-5)
    assert text_tower(clap_project).model == "clap:tiny-clap"


def test_a_model_without_a_text_tower_is_refused(noise_project: Project) -> None:
    with pytest.raises(
        CuratorError, match="no installed embedder has a text tower for 'noise:test'"
    ):
        search_text(noise_project, "808", model="noise:test")


# -- rendered beats, the shipped trap tagger --------------------------------------------------

# Same tempo, key and drums; the bass is an 808 or a deep sub, so "808" must find the 808
# beats. (A beat with no bass at all is not a fair negative: the trap tagger hears the low
# notes of a synth pad as an 808.)
BEATS = {
    "with-808-a": ("808", "kick", "snare", "hi-hat", "synth bells"),
    "with-808-b": ("808", "kick", "clap", "hi-hat", "synth pad"),
    "no-808-a": ("deep sub", "kick", "snare", "hi-hat", "synth bells"),
    "no-808-b": ("deep sub", "kick", "clap", "hi-hat", "synth pad"),
}


@pytest.fixture(scope="module")
def trap_beats(tmp_path_factory: pytest.TempPathFactory) -> Project:
    from click.testing import CliRunner

    from curator.cli import cli
    from curator.demo import BeatSpec, render_beat

    root = tmp_path_factory.mktemp("beats")
    (root / "audio").mkdir()
    for name, instruments in BEATS.items():
        spec = BeatSpec(name, 140.0, "C", "minor", 24.0, instruments, 16, "trap", "dark")
        sf.write(root / "audio" / f"{name}.wav", render_beat(spec, 22050), 22050)
    project = init_project(root / "project")
    ingest(project, [root / "audio"])
    result = CliRunner().invoke(cli, ["tag", "--plugin", "trap", "--project", str(project.root)])
    assert result.exit_code == 0, result.output
    return project


@pytest.mark.slow
def test_search_returns_a_rendered_beat_with_the_searched_tag_first(trap_beats: Project) -> None:
    result = search_text(trap_beats, "808", limit=4)
    files = {r["id"]: Path(r["source"]).stem for r in trap_beats.catalog.segment_rows()}
    first = files[result.hits[0].segment_id]
    assert "808" in BEATS[first], result
    assert result.how.startswith("tags 808 (trap scores")
    like = similar_to(trap_beats, result.hits[0].segment_id, limit=3)
    assert result.hits[0].segment_id not in {h.segment_id for h in like.hits}


# -- the CLI ----------------------------------------------------------------------------------


def test_search_and_similar_have_help(run_cli) -> None:
    assert "best match TEXT" in run_cli("search", "--help").output
    assert "sound most like SEGMENT_ID" in run_cli("similar", "--help").output


def test_the_cli_prints_json_tables_and_one_line_errors(
    noise_project: Project, run_curator, run_cli
) -> None:
    where = ("--project", str(noise_project.root))
    found = run_curator("search", "808", "--json", "--limit", "3", *where)  # its own process
    assert found.returncode == 0, found.stderr
    data = json.loads(found.stdout)
    assert data["how"].startswith("tags 808") and len(data["hits"]) == 3
    first, second = data["hits"][:2]
    assert first["source"].endswith(".wav") and first["tags"]
    assert first["score"] >= second["score"]
    table = run_cli("similar", first["segment_id"], "--limit", "2", *where).output
    assert "track file" in table and "2 segment(s); ranked by sound" in table
    for args, message in (
        (("search", "xyzzy"), "no tag matches 'xyzzy'"),
        (("similar", "nope"), "no segment 'nope'"),
    ):
        failed = run_cli(*args, *where, expect=1)
        assert message in failed.output and "Traceback" not in failed.output
        assert len(failed.output.strip().splitlines()) == 1
