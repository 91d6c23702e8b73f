"""Take the pole's H.264 access units from the hub's WebRTC receiver as they arrive, without decoding them.

The node already encodes H.264 (one encoder per camera, edge/live/video.py) and the city wants H.264: decoding
it at the hub only to encode it again would cost a core per few poles and add a keyframe interval of delay.
aiortc's ``RTCRtpReceiver`` reassembles each frame (depacketised to Annex B, RTP timestamps mapped to 90 kHz from
0) and hands ``(codec, JitterFrame)`` to its decoder thread through a ``queue.Queue``. We put our own queue there
before the receiver starts: frames go to our sink instead of the decoder, and the ``None`` that ends the thread
still reaches it. This reads one private attribute of aiortc (checked here against the installed version, and
by tests/hub/test_gb28181_media.py end to end); if aiortc renames it, :func:`tap_encoded_video` raises a clear
error instead of silently decoding.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

_QUEUE_ATTR = "_RTCRtpReceiver__decoder_queue"
_THREAD_ATTR = "_RTCRtpReceiver__decoder_thread"

EncodedSink = Callable[[str, bytes, int], None]  # (codec name, Annex B access unit, 90 kHz timestamp)


class TapChanged(RuntimeError):
    """The installed aiortc no longer has the seam this module uses."""


class _EncodedTap(queue.Queue[Any]):
    """Stands in for the receiver's decoder queue. ``put`` is called on the event loop (the receiver's RTP
    handler), so the sink runs there too."""

    def __init__(self, sink: EncodedSink) -> None:
        super().__init__()
        self.sink = sink

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:  # the receiver stops: let its decoder thread end (it ends the track)
            super().put(None, block, timeout)
            return
        codec, frame = item
        self.sink(str(codec.name), bytes(frame.data), int(frame.timestamp))


def tap_encoded_video(pc: Any, sink: EncodedSink) -> None:
    """Route the video receiver's reassembled frames to ``sink``; call after the offer, before the answer."""
    taps = 0
    for transceiver in pc.getTransceivers():
        if transceiver.kind != "video":
            continue
        receiver = transceiver.receiver
        if not isinstance(getattr(receiver, _QUEUE_ATTR, None), queue.Queue) or not hasattr(receiver, _THREAD_ATTR):
            raise TapChanged("aiortc's RTCRtpReceiver has no decoder queue to tap: this aiortc version is not "
                             "supported by hub/gb28181/media/tap.py")
        if getattr(receiver, _THREAD_ATTR) is not None:
            raise TapChanged("the video receiver already runs: tap it before the answer is accepted")
        setattr(receiver, _QUEUE_ATTR, _EncodedTap(sink))
        taps += 1
    if not taps:
        raise TapChanged("no video transceiver to tap (make the offer first)")


def nal_types(access_unit: bytes) -> list[int]:
    """The NAL unit types in an Annex B access unit (5 = IDR slice, 7 = SPS, 8 = PPS)."""
    types = []
    pos = access_unit.find(b"\x00\x00\x01")
    while pos >= 0 and pos + 3 < len(access_unit):
        types.append(access_unit[pos + 3] & 0x1F)
        pos = access_unit.find(b"\x00\x00\x01", pos + 3)
    return types


def split_nals(access_unit: bytes) -> list[bytes]:
    """The NAL units of an Annex B access unit, without start codes."""
    out = []
    for part in access_unit.split(b"\x00\x00\x01"):
        part = part.rstrip(b"\x00")  # the leading zero of the next 4-byte start code (a NAL never ends in 0x00)
        if part:
            out.append(part)
    return out
