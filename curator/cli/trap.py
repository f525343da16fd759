"""`curator trap-corpus` (render a labelled training corpus) and `curator trap-train`."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from curator.cli.common import console, interruptible, progress_bar


def register(cli: click.Group) -> None:
    cli.add_command(trap_corpus_command)
    cli.add_command(trap_train_command)


@click.command("trap-corpus")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--clips",
    type=click.IntRange(min=1),
    default=4000,
    show_default=True,
    help='Clips from the training soundfonts ("train", and about 15% "valid").',
)
@click.option(
    "--test-clips",
    type=click.IntRange(min=0),
    default=800,
    show_default=True,
    help='Clips from the held-out soundfont only ("test").',
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same corpus.")
@click.option(
    "--seconds",
    type=click.FloatRange(min=1.0, max=60.0),
    default=6.0,
    show_default=True,
    help="Length of each clip.",
)
@click.option(
    "--holdout",
    default="MuseScore_General_Full",
    show_default=True,
    help="The General MIDI soundfont kept out of training, used only for the test clips.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes rendering clips at once.",
)
def trap_corpus_command(
    out: Path, clips: int, test_clips: int, seed: int, seconds: float, holdout: str, workers: int
) -> None:
    """Render a labelled training corpus for the trap tagger into OUT.

    Short trap, rap and R&B loops rendered from MIDI with Debian's soundfonts and sounds
    synthesised in code (808s, subs, drums, synths, espeak-ng speech), mixed with random
    levels, EQ, reverb, saturation, compression and MP3/OGG round trips. Each clip is
    labelled with the instruments audible in the mix, not merely present in the MIDI.
    Writes OUT/clips/<split>/NNNNN.flac (mono, 22050 Hz), OUT/labels.jsonl (one line per
    clip) and OUT/corpus.json (the settings and soundfont hashes). Run again to finish an
    interrupted corpus. Train on it with `curator trap-train OUT`.
    """
    from curator.plugins.trap.corpus import CorpusSettings, make_corpus, tag_counts

    settings = CorpusSettings(
        clips=clips, test_clips=test_clips, seed=seed, seconds=seconds, holdout=holdout
    )
    kept = "the clips rendered so far are kept; run the command again to finish"
    with interruptible(kept), progress_bar("rendering clips") as bar:
        made = make_corpus(out, settings, lambda d, t: bar(d, t, ""), workers=workers)
    counts = tag_counts(made)
    console.print(f"{len(made)} clips in [bold]{out}[/]; clips per tag (all splits):")
    for tag, splits in sorted(counts.items(), key=lambda item: -sum(item[1].values())):
        console.print(f"  {tag}: {sum(splits.values())}")


@click.command("trap-train")
@click.argument("corpus", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("trap-weights"),
    show_default=True,
    help="Folder the weights file (trap-<hash>.pt) and its report (.json) are written to.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=24, show_default=True)
@click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True)
@click.option(
    "--learning-rate", type=click.FloatRange(min=0, min_open=True), default=3e-3, show_default=True
)
@click.option(
    "--window",
    "window_seconds",
    type=click.FloatRange(min=0.5),
    default=4.0,
    show_default=True,
    help="Seconds of audio per training crop, and per window when tagging.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads for torch (default: torch's choice).",
)
def trap_train_command(
    corpus: Path,
    out: Path,
    epochs: int,
    batch: int,
    learning_rate: float,
    window_seconds: float,
    seed: int,
    threads: int | None,
) -> None:
    """Train the trap tagger on CORPUS and write a weights file versioned by its hash.

    CORPUS holds labels.jsonl (one clip per line: "file", "split" of train, valid or test,
    and "tags") beside the audio: what `curator trap-corpus` renders, or your own stems.
    "valid" chooses the epoch and each tag's threshold; "test" is only reported. Use the
    weights with `[plugins.trap] weights = "PATH"`. See docs/trap-tagger.md.
    """
    import torch

    from curator.plugins.trap.train import TrainSettings, train

    if threads:
        torch.set_num_threads(threads)
    settings = TrainSettings(
        epochs=epochs,
        batch=batch,
        learning_rate=learning_rate,
        window_seconds=window_seconds,
        seed=seed,
    )
    command = shlex.join(["curator", "trap-train", *sys.argv[2:]])
    with interruptible("nothing written; run the command again"), progress_bar("training") as bar:
        weights = train(corpus, out, settings, command, lambda what, d, t: bar(d, t, what))
    test = weights.report.get("test") or weights.report["valid"]
    console.print(
        f"wrote {weights.path} (version {weights.version}); on "
        f"{'held-out' if 'test' in weights.report else 'validation'} clips: drum and bass "
        f"macro ROC AUC {test['drum_and_bass_macro_roc_auc']}, snare vs clap balanced "
        f"accuracy {test['snare_vs_clap_balanced_accuracy']}"
    )
