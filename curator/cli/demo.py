"""`curator demo-data`."""

from __future__ import annotations

from pathlib import Path

import click

from curator.cli.common import console, progress_bar


def register(cli: click.Group) -> None:
    cli.add_command(demo_data)


@click.command("demo-data")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--n",
    "count",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Number of beats to render.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Same seed and --n give byte-identical files.",
)
def demo_data(out: Path, count: int, seed: int) -> None:
    """Render N trap-like beats (45-90 s WAV) with known tempo, key and instruments into OUT.

    The instruments and drum kits are MuseScore General's samples played by fluidsynth (the
    soundfont the trap tagger never trains on), with synthesised 808s, subs and some drums.
    OUT/truth.json records each beat's tempo, key, scale, instruments, hi-hat division,
    genre and mood, so taggers and analyzers can be checked against ground truth.
    """
    from curator.demo import render_demo_dataset

    with progress_bar("Rendering beats") as update:
        paths = render_demo_dataset(out, count, seed=seed, progress=lambda i, n: update(i, n, ""))
    console.print(f"Wrote {len(paths)} beats and truth.json to [bold]{out}[/]")
