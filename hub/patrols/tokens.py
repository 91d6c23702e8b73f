"""Signed per-pole patrol tokens: what a pole's QR sticker carries.

A token is ``P1.<key id>.<node>.<issued, unix s>.<mac>``, the MAC HMAC-SHA256 over the part before it
with the hub's patrol key, cut to 128 bits (base64url). It names its pole and when it was printed, so:

* **forged**: a MAC that does not verify (someone wrote their own, or changed the pole's name);
* **foreign**: a key id this hub never had (another district's sticker) or a pole this hub does not know;
* **stale**: older than ``patrol_token_max_age_days``, signed with a retired key, or printed before the
  pole's last reprint with ``--revoke-older`` (a sticker copied or torn off: print a new one, the old
  copies stop working).

Key rotation: the keys live in ``<data_dir>/patrol/keys.json`` (0600, never in the database or a
backup of it). ``pingan-hub nodes qr-key --rotate`` makes a new current key: new stickers are signed
with it, old stickers stay valid, so the district reprints at its own pace; ``--retire KID`` then
refuses every sticker of the old key (as stale), e.g. after the key file may have leaked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edge.shared.securefs import private_dir
from edge.shared.yamlconfig import atomic_write
from hub.errors import HubError

PREFIX = "P1"
TOKEN = re.compile(r"^P1\.([a-z0-9]{1,16})\.([a-z0-9][a-z0-9-]{0,62})\.([0-9]{1,12})\.([A-Za-z0-9_-]{22})$")
FUTURE_SLACK = timedelta(minutes=5)


class TokenRefused(HubError):
    """A scanned token that records nothing; ``reason`` is forged, foreign, stale or malformed."""

    def __init__(self, reason: str, detail: str, node: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.node = node


@dataclass(frozen=True)
class Sticker:
    node: str
    key_id: str
    issued: datetime


def _mac(secret: bytes, message: str) -> str:
    return base64.urlsafe_b64encode(hmac.new(secret, message.encode(), hashlib.sha256).digest()[:16]).rstrip(
        b"=").decode()


class PatrolKeys:
    """The hub's patrol signing keys (see the module's docstring); the file is read again on every use,
    so a rotation by the CLI is seen by a running hub at once."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "patrol" / "keys.json"

    def _load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"current": None, "keys": {}, "not_before": {}}
        try:
            data: dict[str, Any] = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise HubError(f"{self.path}: unreadable patrol keys ({exc}); restore it from its backup") from None
        data.setdefault("not_before", {})
        return data

    def _save(self, data: dict[str, Any]) -> None:
        private_dir(self.path.parent)
        atomic_write(self.path, json.dumps(data, indent=1).encode(), mode=0o600)

    def _current(self, data: dict[str, Any]) -> str:
        if not data["current"]:
            self._add_key(data)
            self._save(data)
        return str(data["current"])

    @staticmethod
    def _add_key(data: dict[str, Any]) -> str:
        kid = f"k{len(data['keys']) + 1}"
        data["keys"][kid] = {"secret": secrets.token_hex(32), "created": datetime.now(UTC).isoformat(),
                             "retired": None}
        data["current"] = kid
        return kid

    def rotate(self) -> str:
        data = self._load()
        kid = self._add_key(data)
        self._save(data)
        return kid

    def retire(self, kid: str) -> None:
        data = self._load()
        if kid not in data["keys"]:
            raise HubError(f"no patrol key {kid!r}; keys: {', '.join(data['keys']) or 'none'}")
        if kid == data["current"]:
            raise HubError(f"{kid} is the current key: rotate first (pingan-hub nodes qr-key --rotate), reprint, "
                           "then retire it")
        data["keys"][kid]["retired"] = datetime.now(UTC).isoformat()
        self._save(data)

    def list(self) -> list[dict[str, Any]]:
        data = self._load()
        return [{"id": k, "created": v["created"], "retired": v["retired"], "current": k == data["current"]}
                for k, v in data["keys"].items()]

    def sign(self, node: str, *, issued: datetime | None = None, revoke_older: bool = False) -> str:
        data = self._load()
        kid = self._current(data)
        data = self._load()
        ts = int((issued or datetime.now(UTC)).timestamp())
        if revoke_older:  # every earlier sticker of this pole is stale from now on
            data["not_before"][node] = ts
            self._save(data)
        body = f"{PREFIX}.{kid}.{node}.{ts}"
        return f"{body}.{_mac(bytes.fromhex(data['keys'][kid]['secret']), body)}"

    def verify(self, token: str, *, now: datetime, max_age: timedelta) -> Sticker:
        """The sticker's pole and print time, or :class:`TokenRefused` saying why not."""
        m = TOKEN.fullmatch(token.strip())
        if not m:
            raise TokenRefused("malformed", "not a patrol sticker's code / 不是巡逻签到码")
        kid, node, ts, mac = m.groups()
        data = self._load()
        key = data["keys"].get(kid)
        if key is None:
            raise TokenRefused("foreign", "this sticker is from another hub / 此签到码不属于本中心", node)
        body = f"{PREFIX}.{kid}.{node}.{ts}"
        if not hmac.compare_digest(_mac(bytes.fromhex(key["secret"]), body), mac):
            raise TokenRefused("forged", "this sticker's signature is wrong / 签到码签名无效", node)
        issued = datetime.fromtimestamp(int(ts), UTC)
        if issued > now + FUTURE_SLACK:
            raise TokenRefused("forged", "this sticker claims to be printed in the future / 签到码时间无效", node)
        if key.get("retired"):
            raise TokenRefused("stale", "this sticker's key was retired: print a new one / 签到码已停用，请重新打印",
                               node)
        if now - issued > max_age or int(ts) < int(data["not_before"].get(node, 0)):
            raise TokenRefused("stale", "this sticker is out of date: print a new one / 签到码已过期，请重新打印", node)
        return Sticker(node=node, key_id=kid, issued=issued)
