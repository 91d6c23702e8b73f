"""Checks every command from the hub before the node obeys it.

A command must name this node, carry a valid HMAC-SHA256 signature made with this node's key,
be within its lifetime (an unlock lives at most 10 s, others 10 min) and carry a nonce not
seen before. Nonces are kept on disk until their command expires, so a replay after a reboot
is refused too.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from edge.clock import Clock
from edge.protocol import Command
from edge.shared.securefs import private_sqlite

CLOCK_SKEW_S = 120  # a command "issued" further in the future than this is suspicious


class CommandRefused(Exception):
    def __init__(self, reason: str, command: Command | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.command = command


class CommandGuard:
    def __init__(self, node_id: str, key: bytes | None, db_path: str | Path, clock: Clock) -> None:
        self.node_id = node_id
        self.key = key
        self.clock = clock
        self._db = sqlite3.connect(private_sqlite(db_path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, expires REAL NOT NULL)")

    def check(self, payload: bytes) -> Command:
        """Return the command if it may be obeyed; raise CommandRefused with a reason otherwise."""
        try:
            cmd = Command.model_validate_json(payload)
        except ValidationError as exc:
            raise CommandRefused(f"malformed command: {exc.errors()[0]['msg']}") from None
        if cmd.node != self.node_id:
            raise CommandRefused(f"command is for node {cmd.node}, not {self.node_id}", cmd)
        if self.key is None:
            raise CommandRefused("this node has no command-signing key provisioned", cmd)
        if not cmd.signature_ok(self.key):
            raise CommandRefused("bad signature", cmd)
        now = self.clock.now()
        if cmd.expires_at - cmd.issued_at > cmd.max_ttl():
            raise CommandRefused("lifetime longer than allowed", cmd)
        if now > cmd.expires_at:
            raise CommandRefused("expired", cmd)
        if (cmd.issued_at - now).total_seconds() > CLOCK_SKEW_S:
            raise CommandRefused("issued in the future (check the node's clock)", cmd)
        if not self._remember(cmd.nonce, cmd.expires_at, now):
            raise CommandRefused("replayed (nonce already used)", cmd)
        return cmd

    def _remember(self, nonce: str, expires: datetime, now: datetime) -> bool:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM nonces WHERE expires < ?", (now.timestamp(),))
            cur = self._db.execute("INSERT OR IGNORE INTO nonces (nonce, expires) VALUES (?, ?)",
                                   (nonce, expires.timestamp()))
            return cur.rowcount == 1

    def close(self) -> None:
        self._db.close()
