"""Nodes' self-tests on the hub (issue 20, docs/selftest.md): history, faults, fleet view, requests."""
