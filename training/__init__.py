"""Code that runs inside .venv-train (Python 3.10, stable-audio-tools); nothing else imports it."""
