"""Essentia analyzer plugin: tempo, key, scale and loudness per segment, each with a confidence."""

from __future__ import annotations

import os
from collections.abc import Callable

# essentia-tensorflow loads its own libtensorflow, whose C++ logging reports missing CUDA
# libraries on every CPU machine; setdefault keeps a user's own level.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# essentia must be imported before anything that imports TensorFlow: essentia-tensorflow
# bundles its own libtensorflow, and when the tensorflow package is loaded first the two
# copies clash and abort the process. Importing it here, at the plugin's top, puts it first.
import essentia

# Essentia's INFO lines ("no classifier models were configured") would print on every
# command that loads plugins; warnings and errors still print.
essentia.log.infoActive = False
import essentia.standard  # noqa: E402

from curator import hookimpl  # noqa: E402
from curator.api import Analyzer  # noqa: E402

from .analyzer import EssentiaAnalyzer  # noqa: E402
from .settings import EssentiaSettings  # noqa: E402

__all__ = ["EssentiaAnalyzer", "EssentiaSettings", "register_analyzers"]


@hookimpl
def register_analyzers(register: Callable[[Analyzer], None]) -> None:
    """Contribute the Essentia analyzer (cheap to build: its algorithms load in setup)."""
    register(EssentiaAnalyzer())
