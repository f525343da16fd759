"""Exporting a selection as a training-set folder that stable-audio-tools reads."""
