"""Staff login, sessions, and the access policy every HTTP and WebSocket route goes through.

Default deny: :class:`AuthMiddleware` wraps the whole application, so a route added later by any
router (``app.include_router``, ``app.add_route``, a mount) is protected without doing anything:

* anonymous callers get 401 everywhere except :data:`PUBLIC_PATHS` / :data:`PUBLIC_PREFIXES`;
* a route's roles come from :func:`requires` on its endpoint; without it, reads (GET/HEAD and
  WebSockets) are open to every staff role and changes (POST/PUT/PATCH/DELETE) to admins only;
* a change made with the browser's cookie must come from our own origin (Origin header);
* a WebSocket authenticates with the cookie, an Authorization header or a single-use ``?ticket=``
  (``POST /api/live/ticket``), never ``?token=``: a URL lands in proxies' access logs;
* ``/metrics`` takes ``Authorization: Bearer $PINGAN_METRICS_TOKEN`` and nothing else.

Sessions are random tokens (only their SHA-256 is stored), sliding: each use pushes the expiry
``session_ttl_s`` further, so an open console stays logged in through the night shift.

Login limits (design.md "Login"; they hold under concurrency, across replicas and restarts):

* **Failures live in the database** (``login_failures``, one row per failure). An attempt is
  counted *before* its password is hashed: one write transaction (SQLite's BEGIN IMMEDIATE, a
  PostgreSQL advisory lock on the IP) counts the recent failures and inserts the attempt's row;
  a correct password deletes that (username, IP)'s rows again. So 30 concurrent guesses let at
  most ``max_failures`` reach the hasher, on one replica or many, before and after a restart.
  Callers already over a limit are refused (429) by a read, without the write lock.
* **Two limits**: ``max_failures`` per (username, IP) and ``max_ip_failures`` per IP whatever the
  username (random usernames from one address hit it). Rows older than the window are purged by
  every new attempt, so the table holds at most ``max_ip_failures`` rows per address per window.
* **Audit, throttled**: a failure is audited (``login.failed``) only when it is the first from its
  IP in the window; a failure that makes a (username, IP) or the IP reach its limit is audited as
  ``login.limited``. At most ``1 + max_ip_failures / max_failures + 1`` rows per IP per window, not
  one per guess; the rows in ``login_failures`` hold the rest until the window ends.
* **Hashing is bounded**: argon2 takes ~64 MiB per hash, so at most ``hash_concurrency`` hashes
  (verify, rehash, new password) run at once; the login route admits at most ``hash_concurrency +
  hash_queue`` logins in flight and answers 503 with Retry-After at once beyond that, without a
  thread. An unknown username is verified against a dummy hash of the same cost through the same
  gate: it takes as long as a known one, and no more memory.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import HTTPException
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.engine import Connection, Engine

from hub.errors import HubError
from hub.store.engine import add_audit, now_utc
from hub.store.schema import login_failures, sessions, users

ROLES = ("operator", "installer", "admin", "responder")
# the centre's staff; a responder (issue 18: grid staff, volunteers, patrols on their phones) is not among them,
# so a route without @requires("responder") is never open to one (reads default to ALL_STAFF)
ALL_STAFF = frozenset({"operator", "installer", "admin"})
ALL_ROLES = frozenset(ROLES)
ADMIN_ONLY = frozenset({"admin"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PATHS = frozenset({"/", "/api/health", "/api/login", "/docs", "/docs/oauth2-redirect", "/openapi.json",
                          "/redoc", "/favicon.ico",
                          # the responder's phone app shell (hub/web/responder.html): its login screen, manifest
                          # and service worker load before a login; everything it shows comes from /api/responder
                          "/r", "/r/", "/r/manifest.webmanifest", "/r/sw.js"})
PUBLIC_PREFIXES = ("/static/",)
METRICS_PATH = "/metrics"
COOKIE = "pingan_session"
USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,64}$"
LIVE_TICKET_TTL_S = 30  # a /api/live ticket: single use, this long (Auth.new_ticket)





class AuthError(HubError):
    """A user could not be created or changed."""


@dataclass(frozen=True)
class User:
    username: str
    role: str
    via: str = "token"  # "token" (Authorization header), "cookie", or "ticket" (a WebSocket's ?ticket=)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _ticket_digest(ticket: str) -> str:
    """A live ticket's key in ``sessions``: hashed apart from session tokens, so neither passes for the other."""
    return hashlib.sha256(b"pingan-live-ticket:" + ticket.encode()).hexdigest()


class LoginBusy(HTTPException):
    """Too many logins in flight: 503 with Retry-After, answered at once."""

    DETAIL = "too many logins at once; try again in a moment"

    def __init__(self) -> None:
        super().__init__(503, self.DETAIL, headers={"Retry-After": "1"})


class Auth:
    """Users, sessions and the login limits (see the module's docstring). ``clock`` is injectable for tests."""

    def __init__(self, engine: Engine, *, session_ttl_s: float = 12 * 3600, max_failures: int = 5,
                 window_s: float = 300, max_ip_failures: int = 20, hash_concurrency: int = 1,
                 hash_queue: int = 8, metrics_token: str | None = None,
                 clock: Callable[[], datetime] = now_utc) -> None:
        self.engine = engine
        self.session_ttl = timedelta(seconds=session_ttl_s)
        self.max_failures = max_failures
        self.max_ip_failures = max(max_ip_failures, max_failures)
        self.window = timedelta(seconds=window_s)
        self.metrics_token = metrics_token
        self.clock = clock
        self.hasher = PasswordHasher()
        self._hashing = threading.BoundedSemaphore(hash_concurrency)  # argon2: ~64 MiB each
        self._admit_limit = hash_concurrency + hash_queue
        self._admitted = 0
        self._admit_lock = threading.Lock()
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))  # same cost as a user's hash

    def busy(self) -> bool:
        """Whether a login now would get 503 (the middleware's fast path; :meth:`admit` decides)."""
        return self._admitted >= self._admit_limit

    @contextmanager
    def admit(self) -> Iterator[None]:
        """One login in flight, or :class:`LoginBusy` at once when ``hash_concurrency + hash_queue`` are."""
        with self._admit_lock:
            if self._admitted >= self._admit_limit:
                raise LoginBusy()
            self._admitted += 1
        try:
            yield
        finally:
            with self._admit_lock:
                self._admitted -= 1

    def _hash(self, password: str) -> str:
        with self._hashing:
            return self.hasher.hash(password)

    def _verify(self, pw_hash: str, password: str) -> bool:
        with self._hashing:
            try:
                return self.hasher.verify(pw_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

    # --- users ---------------------------------------------------------------------------------
    def add_user(self, username: str, password: str, role: str, *, actor: str = "cli", replace: bool = False) -> None:
        import re

        if not re.match(USERNAME_PATTERN, username):
            raise AuthError(f"bad username {username!r}: use letters, digits and . _ @ - (at most 64)")
        if role not in ROLES:
            raise AuthError(f"role must be one of {', '.join(ROLES)}")
        if len(password) < 8:
            raise AuthError("the password must have at least 8 characters")
        pw_hash = self._hash(password)
        with self.engine.begin() as conn:
            exists = conn.execute(select(users.c.username).where(users.c.username == username)).first()
            if exists and not replace:
                raise AuthError(f"user {username} exists (use `pingan-hub users passwd {username}`)")
            if exists:
                conn.execute(update(users).where(users.c.username == username).values(
                    password_hash=pw_hash, role=role, disabled=False))
                conn.execute(delete(sessions).where(sessions.c.username == username))
            else:
                conn.execute(users.insert().values(username=username, password_hash=pw_hash, role=role,
                                                   disabled=False, created=self.clock()))
            add_audit(conn, actor, "user.set" if exists else "user.add", username, {"role": role})

    def set_password(self, username: str, password: str, *, actor: str = "cli") -> None:
        """A new password (an admin's reset from the console): role and disabled stay, sessions end."""
        if len(password) < 8:
            raise AuthError("the password must have at least 8 characters")
        pw_hash = self._hash(password)
        with self.engine.begin() as conn:
            if not conn.execute(update(users).where(users.c.username == username)
                                .values(password_hash=pw_hash)).rowcount:
                raise AuthError(f"no user {username}")
            conn.execute(delete(sessions).where(sessions.c.username == username))
            add_audit(conn, actor, "user.password", username)

    def set_role(self, username: str, role: str, *, actor: str = "cli") -> None:
        """A new role, the password kept; the user's sessions end (they carry the old role)."""
        if role not in ROLES:
            raise AuthError(f"role must be one of {', '.join(ROLES)}")
        with self.engine.begin() as conn:
            if not conn.execute(update(users).where(users.c.username == username).values(role=role)).rowcount:
                raise AuthError(f"no user {username}")
            conn.execute(delete(sessions).where(sessions.c.username == username))
            add_audit(conn, actor, "user.role", username, {"role": role})

    def set_disabled(self, username: str, disabled: bool, *, actor: str = "cli") -> None:
        with self.engine.begin() as conn:
            if not conn.execute(update(users).where(users.c.username == username)
                                .values(disabled=disabled)).rowcount:
                raise AuthError(f"no user {username}")
            if disabled:
                conn.execute(delete(sessions).where(sessions.c.username == username))
            add_audit(conn, actor, "user.disable" if disabled else "user.enable", username)

    def list_users(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [{"username": r.username, "role": r.role, "disabled": r.disabled, "created": r.created.isoformat()}
                    for r in conn.execute(select(users).order_by(users.c.username))]

    # --- login ---------------------------------------------------------------------------------
    def _counts(self, conn: Connection, user_key: str, ip: str, cutoff: datetime) -> tuple[int, int, datetime | None]:
        """Failures in the window: for (user_key, ip), for ip, and when the oldest one that limits ends."""
        recent = (login_failures.c.ip == ip) & (login_failures.c.at >= cutoff)
        n_ip, first_ip = conn.execute(select(func.count(), func.min(login_failures.c.at)).where(recent)).one()
        n_user, first_user = conn.execute(select(func.count(), func.min(login_failures.c.at))
                                          .where(recent & (login_failures.c.username == user_key))).one()
        if n_user >= self.max_failures:
            return n_user, n_ip, first_user
        return n_user, n_ip, first_ip

    def _refuse_if_limited(self, n_user: int, n_ip: int, oldest: datetime | None) -> None:
        if n_user >= self.max_failures or n_ip >= self.max_ip_failures:
            retry = int(((oldest or self.clock()) + self.window - self.clock()).total_seconds()) + 1
            raise HTTPException(429, "too many failed logins; try again later",
                                headers={"Retry-After": str(max(retry, 1))})

    def _reserve(self, user_key: str, ip: str) -> tuple[int, int]:
        """Count this attempt as a failure before hashing (429 when over a limit); the counts before it."""
        now = self.clock()
        cutoff = now - self.window
        with self.engine.connect() as conn:  # over the limit already (a flood): refused by a read
            self._refuse_if_limited(*self._counts(conn, user_key, ip, cutoff))
        with self.engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE serialises the count and the insert
            if conn.dialect.name == "postgresql":  # replicas: one reservation per IP at a time
                key = int.from_bytes(hashlib.sha256(f"pingan-login:{ip}".encode()).digest()[:8], "big", signed=True)
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            conn.execute(delete(login_failures).where(login_failures.c.at < cutoff))
            n_user, n_ip, oldest = self._counts(conn, user_key, ip, cutoff)
            self._refuse_if_limited(n_user, n_ip, oldest)
            conn.execute(login_failures.insert().values(username=user_key, ip=ip, at=now))
        return n_user, n_ip

    def _audit_failure(self, username: str, ip: str, n_user: int, n_ip: int) -> None:
        """Throttled: the IP's first failure in the window, and the failure that reaches a limit."""
        if n_user + 1 >= self.max_failures or n_ip + 1 >= self.max_ip_failures:
            action = "login.limited"
        elif n_ip == 0:
            action = "login.failed"
        else:
            return
        with self.engine.begin() as conn:
            add_audit(conn, username[:64] or "-", action, ip,
                      {"failures": n_user + 1, "ip_failures": n_ip + 1,
                       "window_s": int(self.window.total_seconds())})

    def login(self, username: str, password: str, ip: str) -> tuple[str, User]:
        """A new session token, or HTTPException 401 (bad credentials) / 429 (too many failures)."""
        ip = ip[:64]
        user_key = username.lower()[:64]
        n_user, n_ip = self._reserve(user_key, ip)
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        ok = self._verify(row.password_hash if row else self._dummy_hash, password)  # unknown: same cost
        if not ok or row is None or row.disabled:
            self._audit_failure(username, ip, n_user, n_ip)  # the reserved row stays: it was a failure
            raise HTTPException(401, "wrong username or password")
        token = secrets.token_urlsafe(32)
        now = self.clock()
        new_hash = self._hash(password) if self.hasher.check_needs_rehash(row.password_hash) else None
        with self.engine.begin() as conn:
            conn.execute(delete(login_failures).where((login_failures.c.username == user_key)
                                                      & (login_failures.c.ip == ip)))
            if new_hash:
                conn.execute(update(users).where(users.c.username == username).values(password_hash=new_hash))
            conn.execute(sessions.insert().values(token_hash=_digest(token), username=username, created=now,
                                                  last_seen=now, expires_at=now + self.session_ttl, ip=ip))
            conn.execute(delete(sessions).where(sessions.c.expires_at < now))
            add_audit(conn, username, "login", ip)
        return token, User(username, row.role)

    def session_user(self, token: str, via: str = "token") -> User | None:
        """The user behind a live session (sliding its expiry), or None."""
        now = self.clock()
        digest = _digest(token)
        with self.engine.connect() as conn:
            row = conn.execute(select(sessions.c.expires_at, sessions.c.last_seen, users.c.username, users.c.role,
                                      users.c.disabled)
                               .join(users, users.c.username == sessions.c.username)
                               .where(sessions.c.token_hash == digest)).first()
        if row is None or row.disabled or row.expires_at <= now:
            return None
        if (now - row.last_seen).total_seconds() >= 30:  # slide, at most one write per 30 s per session
            with self.engine.begin() as conn:
                conn.execute(update(sessions).where(sessions.c.token_hash == digest).values(
                    last_seen=now, expires_at=now + self.session_ttl))
        return User(row.username, row.role, via)

    # --- WebSocket tickets ----------------------------------------------------------------------
    def new_ticket(self, user: User, ip: str) -> str:
        """A single-use ticket for one ``/api/live?ticket=`` connection, valid :data:`LIVE_TICKET_TTL_S`.

        A URL lands in proxies' access logs, so it never carries the session token (``?token=`` is
        refused); a ticket is spent by the connection that uses it and dies within seconds anyway.
        Kept in the ``sessions`` table (no new table, no migration), under :func:`_ticket_digest`: a
        ticket is not a session token and a session token is not a ticket, any replica redeems it,
        and disabling the user or a password change ends it with the user's sessions."""
        ticket = secrets.token_urlsafe(32)
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.expires_at < now))
            conn.execute(sessions.insert().values(token_hash=_ticket_digest(ticket), username=user.username,
                                                  created=now, last_seen=now,
                                                  expires_at=now + timedelta(seconds=LIVE_TICKET_TTL_S),
                                                  ip=ip[:64]))
        return ticket

    def redeem_ticket(self, ticket: str) -> User | None:
        """The ticket's user, once: the first caller deletes the row, later ones (and expired tickets) get None."""
        now = self.clock()
        digest = _ticket_digest(ticket)
        with self.engine.begin() as conn:
            row = conn.execute(select(sessions.c.expires_at, users.c.username, users.c.role, users.c.disabled)
                               .join(users, users.c.username == sessions.c.username)
                               .where(sessions.c.token_hash == digest)).first()
            spent = conn.execute(delete(sessions).where(sessions.c.token_hash == digest)).rowcount
        if row is None or spent != 1 or row.disabled or row.expires_at <= now:
            return None
        return User(row.username, row.role, "ticket")

    def logout(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.token_hash == _digest(token)))

    def metrics_allowed(self, header: str | None) -> bool:
        if not self.metrics_token or not header or not header.lower().startswith("bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self.metrics_token.encode())


