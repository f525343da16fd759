"""Rebalancing: a selection of segment copies whose tags are evenly represented."""
