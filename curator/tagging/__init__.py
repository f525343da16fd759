"""The engine that runs taggers and analyzers over the catalogue: decode, shard, merge, resume."""
