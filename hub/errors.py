"""The hub's errors; messages say what to do."""

from edge.errors import PinganError


class HubError(PinganError):
    """Base of the hub's expected failures."""


class SettingsError(HubError, ValueError):
    """A PINGAN_* setting is missing or wrong."""


class NotFound(HubError, LookupError):
    pass


class Conflict(HubError):
    """The request does not fit the current state (e.g. resolving an alarm twice)."""
