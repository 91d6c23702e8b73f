"""Reaching a responder whose page is closed: pluggable channels with failover, every delivery recorded."""
