"""The hub process itself: replicas and their leader, metrics, memory hand-back."""
