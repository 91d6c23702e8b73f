"""HTTP API of the hub."""
