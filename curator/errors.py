"""Errors a curator can read: each names the file or setting at fault and why."""


class CuratorError(Exception):
    """A problem the user can fix; the CLI prints it without a traceback."""


class ProjectNotFound(CuratorError):
    """No `curator.toml` in the given folder or any folder above it."""


class SettingsError(CuratorError):
    """`curator.toml` is malformed or holds an unknown key or a bad value."""


class CatalogBusy(CuratorError):
    """Another process held the catalogue for longer than the lock timeout."""


class AudioError(CuratorError):
    """An audio file could not be used; the message says which file and why."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class InvalidInput(CuratorError):
    """A value from a file, a page or an option that cannot enter the catalogue; says where."""


class PromptRejected(CuratorError):
    """A writer could not write an acceptable prompt for one segment; the others go on.

    Any other CuratorError a writer raises (server unreachable, model missing) stops the run.
    """
