"""Live view and talk-back at the hub: signalling API, session audit, MJPEG fallback. See docs/live-view.md."""
