"""Curator: curate, review and rebalance tagged audio datasets for music-generation fine-tuning."""

__version__ = "0.1.0"
