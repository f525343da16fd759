"""Curator: curate, review and rebalance tagged audio datasets for music-generation fine-tuning."""

__version__ = "0.1.0"

import pluggy

# Plugins write `from curator import hookimpl` and decorate their hook functions with it.
hookimpl = pluggy.HookimplMarker("curator")

__all__ = ["__version__", "hookimpl"]
