"""Live video and talk-back from a pole, relayed to browsers (WebRTC, MJPEG)."""
