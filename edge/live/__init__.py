"""Live view and talk-back on a node: one shared H.264 encoder per camera, WebRTC sessions (aiortc)
signalled over the signed command channel, the pole's microphone and speaker. See docs/live-view.md."""
