"""One error hierarchy for the node agent; messages tell the user what to do."""


class PinganError(Exception):
    """Base of every error the agent expects and reports without a traceback."""


class ConfigError(PinganError, ValueError):
    """The node's config file is missing, unreadable or invalid.

    ``problems`` lists each finding as ``{"loc", "line", "msg", "type"}`` so an API can answer with
    the same field and line an installer sees on the command line."""

    def __init__(self, message: str, problems: list[dict] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class HardwareError(PinganError, RuntimeError):
    """A device is absent, busy or answers nonsense."""


class LinkError(PinganError, RuntimeError):
    """The broker cannot be reached or refused us."""
