"""Errors the user can fix. They print as one line and exit non-zero, never as a traceback."""


class LauncherError(Exception):
    """A problem with the user's input or machine; `str(err)` is the whole message."""

    exit_code = 2


class ConfigError(LauncherError):
    """The composed configuration is invalid; the message names the full key."""

    def __init__(self, key: str, problem: str, fix: str = ""):
        self.key = key
        message = f"{key}: {problem}" if key else problem
        super().__init__(f"{message}. {fix}" if fix else message)


class NotFound(LauncherError):
    """An id or prefix that matches no invocation."""


class MissingHostVariable(LauncherError):
    """A host variable the config passes to the containers is not set."""

    def __init__(self, name: str, action: str = "run"):
        self.name = name
        super().__init__(
            f"host environment variable {name} is not set (named in the config to pass to the "
            f"container); export {name}=... and {action} again"
        )
