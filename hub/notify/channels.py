"""The delivery channels: Web Push (VAPID), the WeCom and DingTalk group robots, an SMS gateway over HTTP.

Each channel answers, per recipient, ``None`` (delivered to the channel's service) or a reason why not.
A reason starting with ``skip:`` means the channel cannot reach that person at all (no subscription, no
phone number): recorded as *skipped*, not *failed*. The robots are *group* channels: one request covers
every recipient, each @-mentioned by mobile number, so 50 responders cost one message in the group (and
stay under the robots' rate limits, 20 messages a minute for DingTalk). Timeouts are the Notifier's
(hub/notify/service.py): a channel never decides how long it may hang.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx

from hub.notify.models import Notice, Recipient, fill_json_template

log = logging.getLogger(__name__)
SKIP = "skip:"


class Channel(ABC):
    name: str = ""
    timeout_s: float | None = None  # this channel's bound, when not the Notifier's

    @abstractmethod
    async def send(self, client: httpx.AsyncClient, recipients: list[Recipient],
                   notice: Notice) -> dict[str, str | None]:
        """username -> None (sent) or why not (``skip:...`` when it cannot reach that person)."""


def _http_problem(resp: httpx.Response) -> str | None:
    if resp.status_code // 100 != 2:
        return f"HTTP {resp.status_code}: {resp.text[:200]}"
    return None


def _robot_answer(resp: httpx.Response) -> str | None:
    """Both robots answer HTTP 200 with {"errcode": 0, "errmsg": "ok"}; a refusal is a non-zero errcode."""
    problem = _http_problem(resp)
    if problem:
        return problem
    try:
        body = resp.json()
    except ValueError:
        return f"not a robot's answer (not JSON): {resp.text[:200]}"
    if not isinstance(body, dict) or body.get("errcode") != 0:
        return f"refused: {json.dumps(body, ensure_ascii=False)[:200]}"
    return None


def robot_text(notice: Notice) -> str:
    lines = [f"【平安】{notice.headline()}"]
    if notice.text:
        lines.append(notice.text)
    if notice.url:
        lines.append(f"处理 / Open: {notice.url}")
    if notice.snapshot_url:
        lines.append(f"现场照片 / Snapshot: {notice.snapshot_url}")
    return "\n".join(lines)[:1800]  # WeCom's text content: at most 2048 bytes... of UTF-8; keep well below


class WeComRobot(Channel):
    """企业微信 group robot: POST {"msgtype": "text", "text": {"content", "mentioned_mobile_list"}}."""

    name = "wecom"

    def __init__(self, webhook: str) -> None:
        self.webhook = webhook

    async def send(self, client: httpx.AsyncClient, recipients: list[Recipient],
                   notice: Notice) -> dict[str, str | None]:
        body = {"msgtype": "text", "text": {"content": robot_text(notice),
                                            "mentioned_mobile_list": [r.phone for r in recipients if r.phone]}}
        why = _robot_answer(await client.post(self.webhook, json=body))
        return {r.username: why for r in recipients}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature: base64(HMAC-SHA256(key=secret, "timestamp\\nsecret")), URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


class DingTalkRobot(Channel):
    """钉钉 robot: POST {"msgtype": "text", "text": {"content"}, "at": {"atMobiles"}}, signed when it has a secret."""

    name = "dingtalk"

    def __init__(self, webhook: str, secret: str | None, clock: Callable[[], float] = time.time) -> None:
        self.webhook = webhook
        self.secret = secret
        self.clock = clock

    def url(self) -> str:
        if not self.secret:
            return self.webhook
        ts = int(self.clock() * 1000)  # DingTalk refuses a timestamp more than an hour off its clock
        return f"{self.webhook}&timestamp={ts}&sign={dingtalk_sign(self.secret, ts)}"

    async def send(self, client: httpx.AsyncClient, recipients: list[Recipient],
                   notice: Notice) -> dict[str, str | None]:
        mobiles = [r.phone for r in recipients if r.phone]
        content = robot_text(notice)
        if mobiles:  # DingTalk shows the @ only when the number is in the text too
            content += "\n" + " ".join(f"@{m}" for m in mobiles)
        body = {"msgtype": "text", "text": {"content": content}, "at": {"atMobiles": mobiles, "isAtAll": False}}
        why = _robot_answer(await client.post(self.url(), json=body))
        return {r.username: why for r in recipients}


class SmsGateway(Channel):
    """An SMS gateway over HTTP: the configured JSON body per phone, 2xx = accepted by the gateway."""

    name = "sms"

    def __init__(self, url: str, token: str | None, template: str, body: str) -> None:
        self.url, self.token, self.template, self.body = url, token, template, body

    def message(self, notice: Notice) -> str:
        return " ".join(self.template.format(**notice.fields()).split())[:300]

    async def send(self, client: httpx.AsyncClient, recipients: list[Recipient],
                   notice: Notice) -> dict[str, str | None]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        message = self.message(notice)

        async def one(r: Recipient) -> str | None:
            if not r.phone:
                return f"{SKIP} no phone number"
            body = fill_json_template(self.body, {"phone": r.phone, "message": message})
            return _http_problem(await client.post(self.url, json=body, headers=headers))

        results = await asyncio.gather(*(one(r) for r in recipients), return_exceptions=True)
        return {r.username: (describe(res) if isinstance(res, BaseException) else res)
                for r, res in zip(recipients, results, strict=True)}


def push_payload(notice: Notice) -> bytes:
    """What hub/web/push-sw.js shows: title, body, the page a tap opens, and a tag so a repeat replaces it."""
    return json.dumps({"title": f"平安 {notice.headline()}", "body": notice.text, "url": notice.url,
                       "alarm": notice.alarm, "tag": notice.alarm or notice.id}, ensure_ascii=False).encode()


class WebPush(Channel):
    """Web Push with VAPID (RFC 8030/8291/8292): payload encrypted by pywebpush, JWT signed by py_vapid.

    A recipient's every browser subscription is tried; one accepted is a delivery. A subscription the
    push service says is gone (404/410) is dropped."""

    name = "webpush"

    def __init__(self, key_file: Path, subject: str, subscriptions: Any) -> None:
        self.vapid = load_or_make_vapid(key_file)
        self.subject = subject
        self.subscriptions = subscriptions  # hub.notify.service.Subscriptions

    @property
    def public_key(self) -> str:
        return vapid_public_key(self.vapid)

    async def send(self, client: httpx.AsyncClient, recipients: list[Recipient],
                   notice: Notice) -> dict[str, str | None]:
        subs = await asyncio.to_thread(self.subscriptions.of_users, [r.username for r in recipients])
        payload = push_payload(notice)

        async def one(r: Recipient) -> str | None:
            mine = subs.get(r.username, [])
            if not mine:
                return f"{SKIP} no browser subscribed"
            problems = []
            for sub in mine:
                problem = await self._post(client, sub, payload)
                if problem is None:
                    await asyncio.to_thread(self.subscriptions.mark_ok, sub["endpoint"])
                    return None
                problems.append(problem)
            return "; ".join(problems)

        results = await asyncio.gather(*(one(r) for r in recipients), return_exceptions=True)
        return {r.username: (describe(res) if isinstance(res, BaseException) else res)
                for r, res in zip(recipients, results, strict=True)}

    async def _post(self, client: httpx.AsyncClient, sub: dict[str, str], payload: bytes) -> str | None:
        from urllib.parse import urlparse

        from pywebpush import WebPusher  # type: ignore[import-untyped]

        info = {"endpoint": sub["endpoint"], "keys": {"p256dh": sub["p256dh"], "auth": sub["auth"]}}
        encoded = WebPusher(info).encode(payload, "aes128gcm")
        u = urlparse(sub["endpoint"])
        claims = {"sub": self.subject, "aud": f"{u.scheme}://{u.netloc}", "exp": int(time.time()) + 12 * 3600}
        headers = {**self.vapid.sign(claims), "Content-Encoding": "aes128gcm", "TTL": "600", "Urgency": "high",
                   "Content-Type": "application/octet-stream"}
        resp = await client.post(sub["endpoint"], content=encoded["body"], headers=headers)
        if resp.status_code in (404, 410):
            await asyncio.to_thread(self.subscriptions.remove, sub["endpoint"])
            return f"subscription gone (HTTP {resp.status_code}), removed"
        return _http_problem(resp)


def load_or_make_vapid(key_file: Path) -> Any:
    """The hub's VAPID key: made once (0600 in a 0700 folder) and kept; browsers subscribed with its public half."""
    from py_vapid import Vapid02  # type: ignore[import-untyped]

    from edge.shared.securefs import private_dir

    if not key_file.exists():
        private_dir(key_file.parent)
        v = Vapid02()
        v.generate_keys()
        v.save_key(str(key_file))
        key_file.chmod(0o600)
        log.info("made a new VAPID key in %s", key_file)
    try:
        return Vapid02.from_file(str(key_file))
    except Exception as exc:  # noqa: BLE001 - any parse failure is the same settings problem
        from hub.errors import SettingsError

        raise SettingsError(f"PINGAN_NOTIFY_VAPID_KEY_FILE: {key_file} is not a VAPID private key (PEM): "
                            f"{exc}") from None


def vapid_public_key(vapid: Any) -> str:
    """The applicationServerKey a browser subscribes with: the uncompressed P-256 point, base64url."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def describe(exc: BaseException) -> str:
    """An exception as the operator reads it in the delivery record."""
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {exc}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]
