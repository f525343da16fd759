"""An example Curator tagger: scores how bright or dark a segment sounds from its spectrum."""

import itertools

import numpy as np

from curator import hookimpl
from curator.api import SegmentAudio, Tagger, TagResult

BANDS = np.geomspace(40, 8000, 17)  # edges of 16 log-spaced bands, Hz


class BrightnessTagger(Tagger):
    name = "brightness"
    version = "1"
    facets = ("timbre",)
    sample_rate = 16000
    embedding_model = "brightness:bands16"

    def tag_order(self):
        return [("timbre", "bright"), ("timbre", "dark")]

    def tag(self, batch):
        return [self._result(band_energies(segment)) for segment in batch]

    def tag_embeddings(self, embeddings):
        return np.array([self._scores(row) for row in embeddings])

    def _result(self, bands):
        bright, dark = self._scores(bands)
        return TagResult({"timbre": {"bright": bright, "dark": dark}}, embedding=bands)

    def _scores(self, bands):
        # Share of energy above 1 kHz: near 1 for hi-hats and bells, near 0 for 808s.
        high = float(bands[BANDS[:-1] >= 1000].sum() / max(bands.sum(), 1e-12))
        return high, 1.0 - high


def band_energies(segment: SegmentAudio) -> np.ndarray:
    """Energy in 16 log-spaced bands: the segment's embedding, cached by Curator."""
    spectrum = np.abs(np.fft.rfft(segment.audio[:, 0])) ** 2
    freqs = np.fft.rfftfreq(len(segment.audio), 1 / segment.sample_rate)
    bands = [spectrum[(freqs >= lo) & (freqs < hi)].sum() for lo, hi in itertools.pairwise(BANDS)]
    return np.asarray(bands, dtype=np.float32)


@hookimpl
def register_taggers(register):
    register(BrightnessTagger())
