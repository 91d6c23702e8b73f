"""Registration with the city platform, and its keepalive: the state the console, /api/health and /metrics show.

REGISTER -> 401 -> REGISTER with digest -> 200; refreshed at 2/3 of the granted lifetime; a keepalive
MESSAGE every PINGAN_GB_KEEPALIVE_S; three keepalives unanswered make the platform ``offline`` and the hub
registers again with exponential backoff (1 s doubling, capped). A 403, or a 401 that answers our digest
(a wrong password or realm), is ``refused`` ("the city platform refused our credentials"): retried with
the same backoff, and logged once per change of state or error, never per try (no log flood while a
district waits for the city to fix its side). Shutdown unregisters (Expires: 0).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from hub.gb28181 import digest, manscdp
from hub.gb28181.sip import SipMessage, new_call_id, new_tag
from hub.gb28181.ua import UserAgent
from hub.runtime import metrics

log = logging.getLogger(__name__)
State = Literal["unregistered", "registered", "refused", "offline"]
STATES: tuple[State, ...] = ("unregistered", "registered", "refused", "offline")
MISSED_FOR_OFFLINE = 3
REFUSED = "the city platform refused our credentials"


@dataclass
class RegistrationState:
    state: State = "unregistered"
    since: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    last_error: str | None = None
    registrations: int = 0
    failures: int = 0
    keepalives_sent: int = 0
    keepalives_missed: int = 0


class Registration:
    def __init__(self, ua: UserAgent, *, password: str, expires_s: int, keepalive_s: float,
                 backoff_base_s: float = 1.0, backoff_cap_s: float = 60.0, answer_timeout_s: float = 8.0) -> None:
        self.ua = ua
        self.password = password
        self.expires_s = expires_s
        self.keepalive_s = keepalive_s
        self.backoff_base_s, self.backoff_cap_s = backoff_base_s, backoff_cap_s
        self.answer_timeout_s = answer_timeout_s
        self.status = RegistrationState()
        self._call_id = new_call_id(ua.hub_id)
        self._from_tag = new_tag()
        self._cseq = 0
        self._challenge: dict[str, str] | None = None
        self._nc = 0
        self.registered = asyncio.Event()
        for s in STATES:
            metrics.gb_state.labels(s).set(1 if s == "unregistered" else 0)

    # --- state

    def _set(self, state: State, error: str | None = None) -> None:
        st = self.status
        error = error[:300] if error else error  # may carry the platform's reason phrase
        if state != st.state or error != st.last_error:
            if state == "registered":
                log.info("GB28181: registered with the city platform %s", self.ua.upstream.uri)
            elif error is not None:
                log.warning("GB28181: %s: %s (retrying with backoff; logged again only when this changes)",
                            state, error)
            else:
                log.info("GB28181: %s", state)
        if state != st.state:
            st.since = datetime.now(UTC).isoformat()
            for s in STATES:
                metrics.gb_state.labels(s).set(1 if s == state else 0)
        st.state, st.last_error = state, error
        if state == "registered":
            self.registered.set()
        else:
            self.registered.clear()

    # --- one REGISTER exchange

    def _register_request(self, expires: int) -> SipMessage:
        self._cseq += 1
        req = self.ua.request("REGISTER", call_id=self._call_id, cseq=self._cseq, from_tag=self._from_tag,
                              uri=f"sip:{self.ua.upstream.server_id}@{self.ua.upstream.domain}",
                              to=f"<{self.ua.from_uri}>")
        req.add("Contact", self.ua.contact())
        req.add("Expires", str(expires))
        return req

    def _authorize(self, req: SipMessage) -> None:
        if self._challenge is None:
            return
        self._nc += 1
        req.add("Authorization", digest.authorization(
            self._challenge, method="REGISTER", uri=req.uri or "", username=self.ua.hub_id,
            password=self.password, nc=self._nc))

    async def register(self, expires: int | None = None) -> tuple[bool, int]:
        """One registration (or, with ``expires=0``, unregistration); (ok, granted seconds)."""
        expires = self.expires_s if expires is None else expires
        req = self._register_request(expires)
        self._authorize(req)  # a known challenge first (a refresh); a fresh one on 401
        resp = await self.ua.transport.request(req, self.answer_timeout_s)
        if resp is not None and resp.status == 401:
            try:
                self._challenge = digest.parse_challenge(resp.get("WWW-Authenticate") or "")
            except digest.DigestError as exc:
                self._fail("refused", f"{REFUSED}: {exc}")
                return False, 0
            self._nc = 0
            req = self._register_request(expires)
            self._authorize(req)
            resp = await self.ua.transport.request(req, self.answer_timeout_s)
        if resp is None:
            self._fail("offline", "no answer from the city platform to REGISTER")
            return False, 0
        if resp.status == 200:
            granted = resp.get("Expires")
            contact = resp.get("Contact") or ""
            from hub.gb28181.sip import params

            value = granted if granted and granted.isdigit() else params(contact).get("expires", "")
            return True, int(value) if value.isdigit() else expires
        if resp.status in (401, 403):
            self._fail("refused", f"{REFUSED} ({resp.status} {resp.reason[:80]}); check PINGAN_GB_ID and "
                                  "PINGAN_GB_PASSWORD with the city platform's operators")
            self._challenge = None
            return False, 0
        self._fail("offline", f"the city platform answered REGISTER with {resp.status} {resp.reason[:80]}")
        return False, 0

    def _fail(self, state: State, error: str) -> None:
        self.status.failures += 1
        metrics.gb_failures.labels("register").inc()
        self._set(state, error)

    async def keepalive(self) -> bool:
        body = manscdp.render("Notify", [("CmdType", "Keepalive"), ("SN", self.ua.sn()),
                                         ("DeviceID", self.ua.hub_id), ("Status", "OK")])
        req = self.ua.request("MESSAGE", body=body)
        self.status.keepalives_sent += 1
        metrics.gb_messages.labels("keepalive").inc()
        resp = await self.ua.transport.request(req, min(self.answer_timeout_s, self.keepalive_s))
        return resp is not None and resp.status is not None and 200 <= resp.status < 300

    # --- the loop

    async def run(self) -> None:
        attempt = 0
        while True:
            ok, granted = await self.register()
            if not ok:
                # start afresh (new Call-ID, new challenge): the platform may have dropped what it knew of us
                self._call_id, self._from_tag, self._challenge = new_call_id(self.ua.hub_id), new_tag(), None
                delay = min(self.backoff_cap_s, self.backoff_base_s * 2 ** min(attempt, 16))
                attempt += 1
                await asyncio.sleep(delay)
                continue
            attempt = 0
            self.status.registrations += 1
            metrics.gb_registrations.inc()
            self._set("registered")
            await self._stay_registered(granted)

    async def _stay_registered(self, granted: int) -> None:
        """Keepalives until the refresh is due (2/3 of the lifetime) or the platform stops answering."""
        refresh_at = time.monotonic() + max(5.0, granted * 2 / 3)
        missed = 0
        while True:
            left = refresh_at - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(self.keepalive_s, left))
            if time.monotonic() >= refresh_at:
                return
            if await self.keepalive():
                missed = 0
                continue
            missed += 1
            self.status.keepalives_missed += 1
            metrics.gb_failures.labels("keepalive").inc()
            if missed >= MISSED_FOR_OFFLINE:
                self._set("offline", f"{missed} keepalives in a row unanswered")
                return

    async def unregister(self) -> None:
        if self.status.state != "registered":
            return
        try:
            await asyncio.wait_for(self.register(0), 3)
        except (TimeoutError, OSError):
            pass
        self._set("unregistered")
