"""Live to the browsers: the WebSocket fan-out of events and alarm changes, and live video."""
