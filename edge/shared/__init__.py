"""Helpers both sides use. The hub imports from ``edge`` only the contract (``edge.protocol``, the node
config models in ``edge.config`` with ``edge.errors``) and this package; tests/contract/test_boundaries.py holds it
to that, so the hub never grows a dependency on the node agent's internals."""
