"""The hub as a SIP user agent towards the city platform: how its requests are addressed and headed.

Every request carries ``X-GB-Ver: 3.0`` (GB/T 28181-2022 section 9.1's version header); platforms
that only speak 2016 ignore the header.
"""

from __future__ import annotations

import itertools

from hub.gb28181.manscdp import CONTENT_TYPE
from hub.gb28181.sip import SipMessage, Upstream, new_branch, new_call_id, new_tag
from hub.gb28181.transport import SipTransport

GB_VERSION = "3.0"


class UserAgent:
    def __init__(self, hub_id: str, upstream: Upstream, transport: SipTransport) -> None:
        self.hub_id = hub_id
        self.upstream = upstream
        self.transport = transport
        self._sn = itertools.count(1)

    def sn(self) -> int:
        """MANSCDP sequence numbers of the hub's own commands."""
        return next(self._sn)

    @property
    def from_uri(self) -> str:
        return f"sip:{self.hub_id}@{self.hub_id[:10]}"

    @property
    def to_uri(self) -> str:
        return f"sip:{self.upstream.server_id}@{self.upstream.domain}"

    def contact(self) -> str:
        host, port = self.transport.local_addr()
        return f"<sip:{self.hub_id}@{host}:{port}>"

    def request(self, method: str, *, call_id: str | None = None, cseq: int = 1, from_tag: str | None = None,
                uri: str | None = None, to: str | None = None, body: bytes = b"",
                content_type: str = CONTENT_TYPE) -> SipMessage:
        host, port = self.transport.local_addr()
        msg = SipMessage(method=method, uri=uri or self.upstream.uri)
        msg.add("Via", f"SIP/2.0/{self.transport.transport_name} {host}:{port};rport;branch={new_branch()}")
        msg.add("From", f"<{self.from_uri}>;tag={from_tag or new_tag()}")
        msg.add("To", to or f"<{self.to_uri}>")
        msg.add("Call-ID", call_id or new_call_id(host))
        msg.add("CSeq", f"{cseq} {method}")
        msg.add("Max-Forwards", "70")
        msg.add("User-Agent", "Pingan hub")
        msg.add("X-GB-Ver", GB_VERSION)
        if body:
            msg.add("Content-Type", content_type)
            msg.body = body
        return msg
