"""Every plotly figure the app draws: catalogue, tag map, rebalance, jobs."""
