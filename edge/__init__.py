"""Pingan node agent: runs on a Raspberry Pi at an alarm pole or a rental-block door."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pingan")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+src"
