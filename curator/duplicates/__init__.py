"""The same music more than once: fingerprints (the same recording), embedding matches (the
same loop or sample), and the groups every other feature respects (rebalance, split, export,
review)."""
