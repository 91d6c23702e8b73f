"""One error hierarchy for the node agent; messages tell the user what to do."""


class PinganError(Exception):
    """Base of every error the agent expects and reports without a traceback."""


class ConfigError(PinganError, ValueError):
    """The node's config file is missing, unreadable or invalid."""


class HardwareError(PinganError, RuntimeError):
    """A device is absent, busy or answers nonsense."""


class LinkError(PinganError, RuntimeError):
    """The broker cannot be reached or refused us."""
