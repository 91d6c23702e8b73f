"""Debounce for contacts, on an injected clock (gpiozero's bounce_time is ignored by MockFactory)."""

from __future__ import annotations


class Debouncer:
    """Accepts a change of a contact once it has been stable for ``debounce_s``.

    A first edge after a quiet period is taken at once (a press must not wait), edges inside
    the window after it are bounce; ``settle`` catches a final state that differs from the
    accepted one once the contact has been quiet long enough.
    """

    def __init__(self, debounce_s: float, initial: bool = False) -> None:
        self.debounce_s = debounce_s
        self.state = initial
        self._raw = initial
        self._raw_at = float("-inf")
        self._accepted_at = float("-inf")

    def feed(self, raw: bool, t: float) -> bool | None:
        """A raw edge at time t; returns the new state when it is accepted, else None."""
        self._raw, self._raw_at = raw, t
        if raw != self.state and t - self._accepted_at >= self.debounce_s:
            return self._accept(raw, t)
        return None

    def settle(self, t: float) -> bool | None:
        if self._raw != self.state and t - self._raw_at >= self.debounce_s \
                and t - self._accepted_at >= self.debounce_s:
            return self._accept(self._raw, t)
        return None

    def _accept(self, state: bool, t: float) -> bool:
        self.state = state
        self._accepted_at = t
        return state
