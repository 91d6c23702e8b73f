"""SIP digest authentication, client side (RFC 2617 / RFC 3261 22.4): MD5, with qop=auth when offered.

GB/T 28181 registration is REGISTER -> 401 (WWW-Authenticate) -> REGISTER with Authorization -> 200.
MD5 is what the standard and every city platform use (2022 allows SHA-256 too; MD5 is answered here,
anything else is refused with a sentence, not a guess).
"""

from __future__ import annotations

import hashlib
import secrets


class DigestError(ValueError):
    """A challenge we cannot answer."""


def parse_challenge(value: str) -> dict[str, str]:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise DigestError(f"the platform asks for {scheme!r} authentication; only Digest is supported")
    out: dict[str, str] = {}
    for part in _split_commas(rest):
        name, sep, val = part.partition("=")
        if sep:
            out[name.strip().lower()] = val.strip().strip('"')
    if "nonce" not in out or "realm" not in out:
        raise DigestError("the platform's challenge has no realm or nonce")
    algorithm = out.get("algorithm", "MD5").upper()
    if algorithm != "MD5":
        raise DigestError(f"the platform asks for digest algorithm {algorithm}; only MD5 is supported")
    return out


def _split_commas(text: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324 - the protocol's algorithm


def authorization(challenge: dict[str, str], *, method: str, uri: str, username: str, password: str,
                  nc: int = 1, cnonce: str | None = None) -> str:
    """The Authorization header value answering ``challenge``."""
    realm, nonce = challenge["realm"], challenge["nonce"]
    ha1 = _md5(f"{username}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    qops = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
    fields = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    if "auth" in qops:
        cnonce = cnonce or secrets.token_hex(8)
        ncs = f"{nc:08x}"
        response = _md5(f"{ha1}:{nonce}:{ncs}:{cnonce}:auth:{ha2}")
        fields += [f'response="{response}"', "algorithm=MD5", "qop=auth", f"nc={ncs}", f'cnonce="{cnonce}"']
    elif qops:
        raise DigestError(f"the platform offers qop {qops}; only auth is supported")
    else:
        response = _md5(f"{ha1}:{nonce}:{ha2}")
        fields += [f'response="{response}"', "algorithm=MD5"]
    if "opaque" in challenge:
        fields.append(f'opaque="{challenge["opaque"]}"')
    return "Digest " + ", ".join(fields)

