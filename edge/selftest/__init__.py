"""The node's self-test (issue 20, docs/selftest.md): checks, the tone loop, the schedule."""
