"""stable-audio-tools exporter: an export folder that stable-audio-tools 0.0.20 trains on as is."""

from __future__ import annotations

from collections.abc import Callable

from curator import hookimpl
from curator.api import Exporter

from .exporter import CONFIGS, METADATA_MODULE, StableAudioExporter, dataset_config
from .settings import StableAudioExportSettings

__all__ = [
    "CONFIGS",
    "METADATA_MODULE",
    "StableAudioExportSettings",
    "StableAudioExporter",
    "dataset_config",
    "register_exporters",
]


@hookimpl
def register_exporters(register: Callable[[Exporter], None]) -> None:
    """Contribute the exporter."""
    register(StableAudioExporter())
