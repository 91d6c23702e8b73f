"""Pingan hub: the district monitoring centre's service (ingest, store, API, live, dashboard)."""

from edge import __version__

__all__ = ["__version__"]
