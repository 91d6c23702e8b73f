"""Socket options for paho clients.

paho does not set TCP_NODELAY: a snapshot published right after its event then waits for the
broker's delayed ACK (Nagle), tens of milliseconds on an alarm's path.
"""

from __future__ import annotations

import socket
from typing import Any


def nodelay(client: Any, userdata: Any, sock: Any) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # not a TCP socket (websockets, unix): nothing to do
        pass
