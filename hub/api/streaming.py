"""The one WebSocket pump both live streams use (the console's /api/live, a responder's /api/responder/live).

Why it reads as well as writes: a browser that closes its socket is only noticed by a read, so a task
drains (and ignores) what the client sends while messages go out; whichever ends first ends the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect


async def pump(websocket: WebSocket, get: Callable[[], Awaitable[dict[str, Any] | None]]) -> None:
    """Send what ``get`` yields until it yields None or the client goes away."""
    receiver = asyncio.create_task(_drain(websocket))
    try:
        while True:
            getter = asyncio.ensure_future(get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver in done:
                getter.cancel()
                break
            message = getter.result()
            if message is None:
                break
            await websocket.send_json(message)
    finally:
        receiver.cancel()


async def _drain(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()
