"""Builds a node's live view from its config, on demand (kept out of edge/agent/node.py, which only calls it).

aiortc and PyAV cost a node process about 30 MB, so they are imported on the first ``live.*``
command, not at start: a street of simulated poles (the demo) or a pole nobody watches pays nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from edge.link.dispatch import CommandDispatcher
from edge.protocol import Command, Reply

log = logging.getLogger(__name__)
LIVE_COMMANDS = ("live.start", "live.stop", "live.keepalive")


def encoder_kind(live: Any, camera_source: str) -> str:
    """Which H.264 encoder the live view uses: 'picamera2' (the Pi camera's own H264Encoder) or 'software'.

    ``auto`` takes picamera2's whenever the camera is picamera2: on a Pi 4 it is the hardware encoder, and
    the CPU it saves matters more on a pole than detection boxes on the picture (which only the software
    encoder can draw; ``live.encoder: software`` gets them back).
    """
    if live.encoder == "auto":
        return "picamera2" if str(camera_source).strip() == "picamera2" else "software"
    return str(live.encoder)


class LiveOnDemand:
    """The agent's handle on live view; the real ``LiveManager`` is made on first use."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.manager: Any | None = None

    def register(self, commands: CommandDispatcher) -> None:
        commands.register(self.obey, *LIVE_COMMANDS)

    def _build(self) -> Any:
        from edge.live.session import LiveManager
        from edge.live.video import SharedVideoEncoder, box_overlay

        agent, cfg = self.agent, self.agent.cfg
        worker = agent.worker
        encoder: Any
        if encoder_kind(cfg.live, cfg.camera.source) == "picamera2":
            from edge.live.picamera_video import Picamera2VideoEncoder

            encoder = Picamera2VideoEncoder(worker.camera, fps=cfg.live.fps, bitrate_kbps=cfg.live.bitrate_kbps,
                                            keyframe_s=cfg.live.keyframe_s)
            if cfg.live.overlay_boxes and worker.pipeline is not None:
                log.info("live view: picamera2's encoder draws no detection boxes (live.encoder: software does)")
        else:
            overlay = box_overlay(worker.pipeline) if cfg.live.overlay_boxes and worker.pipeline is not None else None
            encoder = SharedVideoEncoder(worker, width=cfg.camera.width, height=cfg.camera.height, fps=cfg.live.fps,
                                         bitrate_kbps=cfg.live.bitrate_kbps, keyframe_s=cfg.live.keyframe_s,
                                         overlay=overlay)
        return LiveManager(cfg.live, encoder, clock=agent.clock, on_talk=agent.role.on_talk)

    async def obey(self, cmd: Command) -> Reply:
        if self.manager is None:
            self.manager = self._build()
        reply: Reply = await self.manager.obey(cmd)
        return reply

    def state(self) -> dict[str, Any]:
        if self.manager is None:
            return {"sessions": [], "encoder_running": False, "viewers": 0, "frames_encoded": 0}
        return self.manager.state()

    async def close(self) -> None:
        if self.manager is not None:
            await self.manager.close()


def make_live(agent: Any) -> LiveOnDemand:
    return LiveOnDemand(agent)
