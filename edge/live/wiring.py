"""Builds a node's live-view manager from its config (kept out of edge/agent.py, which only calls it)."""

from __future__ import annotations

from typing import Any

from edge.live.session import LiveManager
from edge.live.video import SharedVideoEncoder, box_overlay
from edge.protocol import Reply, Topics


def make_live(agent: Any) -> LiveManager:
    """One shared encoder over the agent's camera thread, replies on the node's replies topic."""
    cfg = agent.cfg
    worker = agent.worker
    overlay = box_overlay(worker.pipeline) if cfg.live.overlay_boxes and worker.pipeline is not None else None
    encoder = SharedVideoEncoder(worker, width=cfg.camera.width, height=cfg.camera.height, fps=cfg.live.fps,
                                 bitrate_kbps=cfg.live.bitrate_kbps, keyframe_s=cfg.live.keyframe_s,
                                 overlay=overlay)

    def send_reply(reply: Reply) -> None:
        agent.link.publish(Topics.replies(cfg.node.id), reply.to_bytes(), 1)

    return LiveManager(cfg.live, encoder, agent.guard, send_reply, clock=agent.clock, emit=agent.role.emit,
                       on_talk=agent.role.on_talk)
