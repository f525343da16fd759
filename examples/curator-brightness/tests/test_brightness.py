"""The example plugin is installed, registered, and tells a hi-hat from an 808."""

import numpy as np

from curator.api import SegmentAudio
from curator.testing import load_registry


def test_plugin_is_installed() -> None:
    assert "brightness" in load_registry().names("taggers")


def test_hats_are_bright_and_subs_are_dark() -> None:
    tagger = load_registry().tagger("brightness")
    t = np.arange(16000) / 16000
    noise = np.random.default_rng(0).standard_normal(16000)
    hats = SegmentAudio("hats", np.diff(noise, prepend=0)[:, None].astype(np.float32), 16000)
    sub = SegmentAudio("sub", np.sin(2 * np.pi * 50 * t)[:, None].astype(np.float32), 16000)
    bright, dark = tagger.tag([hats, sub])
    assert bright.scores["timbre"]["bright"] > 0.8 > dark.scores["timbre"]["bright"]
