"""Training and generation jobs. Empty on purpose: `python -m curator.jobs.launcher`
must start in milliseconds, so importing the package pulls in nothing."""
