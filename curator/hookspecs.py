"""Every hook a plugin can implement: typed signatures and their documentation, nothing else."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from curator.api import Analyzer, Embedder, Exporter, Migration, PromptWriter, Tagger

hookspec = pluggy.HookspecMarker("curator")


@hookspec
def register_taggers(register: Callable[[Tagger], None]) -> None:
    """Contribute taggers: call ``register(tagger)`` once per Tagger instance.

    :param register: takes a :class:`curator.api.Tagger`; its ``name`` must be unique.
        Construct cheaply: load models in ``Tagger.setup``, which runs once per run.
    """


@hookspec
def register_analyzers(register: Callable[[Analyzer], None]) -> None:
    """Contribute analyzers (tempo, key, loudness, ...): call ``register(analyzer)``.

    :param register: takes a :class:`curator.api.Analyzer`; its ``name`` must be unique.
    """


@hookspec
def register_embedders(register: Callable[[Embedder], None]) -> None:
    """Contribute text or audio encoders other features can reuse, e.g. for the tag map.

    :param register: takes a :class:`curator.api.Embedder`; its ``name`` must be unique.
    """


@hookspec
def register_prompt_writers(register: Callable[[PromptWriter], None]) -> None:
    """Contribute prompt writers that turn a segment's tags into a training prompt.

    :param register: takes a :class:`curator.api.PromptWriter`; its ``name`` must be unique.
    """


@hookspec
def register_exporters(register: Callable[[Exporter], None]) -> None:
    """Contribute exporters that write a selection in a trainer's format.

    :param register: takes a :class:`curator.api.Exporter`; its ``name`` must be unique.
    """


@hookspec
def register_migrations(register: Callable[[Migration], None]) -> None:
    """Contribute the plugin's own tables: call ``register(migration)`` once per step.

    :param register: takes a :class:`curator.api.Migration` whose ``scope`` is the plugin's
        name (``"curator"`` is the core's) and whose ``number`` counts from 1 within it.
        Before the plugin's tagger, analyzer, ... runs, the steps not yet recorded in the
        catalogue's applied-migrations table are applied, each once, in number order.
    """
