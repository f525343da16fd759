"""Exploring the catalogue: the map of every segment's embedding and what colours it."""
