"""A door's local access list: reader slot → tenant and lease, on the node's own disk.

The door decides alone: the hub may be unreachable for days, and a lease still ends on time, measured
with the node's clock (door nodes have a real-time clock, design.md "Time"). SQLite in WAL mode with
``synchronous=FULL``, so an enrolment the hub was told about survives a power cut. Only the node's
asyncio loop writes it (one writer).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from edge.shared.securefs import private_sqlite

Verdict = Literal["ok", "unknown", "not_yet_valid", "expired"]


@dataclass(frozen=True, slots=True)
class AccessEntry:
    slot: int
    tenant_id: str
    valid_from: datetime | None
    valid_until: datetime | None
    version: int = 0

    def verdict(self, now: datetime) -> Verdict:
        if self.valid_from is not None and now < self.valid_from:
            return "not_yet_valid"
        if self.valid_until is not None and now >= self.valid_until:
            return "expired"
        return "ok"

    def as_dict(self) -> dict[str, Any]:
        return {"slot": self.slot, "tenant_id": self.tenant_id,
                "valid_from": self.valid_from.isoformat() if self.valid_from else None,
                "valid_until": self.valid_until.isoformat() if self.valid_until else None,
                "version": self.version}


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 time (a date alone means its start, UTC); naive times are taken as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 time (e.g. 2026-12-31T23:59:59+08:00)") from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _ts(dt: datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class AccessList:
    def __init__(self, path: str | Path) -> None:
        self._db = sqlite3.connect(private_sqlite(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS access (slot INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL, "
                         "valid_from REAL, valid_until REAL, version INTEGER NOT NULL DEFAULT 0)")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    # --- reads ---------------------------------------------------------------------------------
    def get(self, slot: int) -> AccessEntry | None:
        row = self._db.execute("SELECT slot, tenant_id, valid_from, valid_until, version FROM access "
                               "WHERE slot = ?", (slot,)).fetchone()
        return None if row is None else AccessEntry(row[0], row[1], _dt(row[2]), _dt(row[3]), row[4])

    def check(self, slot: int, now: datetime) -> tuple[Verdict, AccessEntry | None]:
        entry = self.get(slot)
        return ("unknown", None) if entry is None else (entry.verdict(now), entry)

    def entries(self) -> list[AccessEntry]:
        rows = self._db.execute("SELECT slot, tenant_id, valid_from, valid_until, version FROM access "
                                "ORDER BY slot").fetchall()
        return [AccessEntry(r[0], r[1], _dt(r[2]), _dt(r[3]), r[4]) for r in rows]

    def slots_of(self, tenant_id: str) -> list[int]:
        return [r[0] for r in self._db.execute("SELECT slot FROM access WHERE tenant_id = ? ORDER BY slot",
                                               (tenant_id,))]

    def free_slot(self, capacity: int, also_used: set[int] | frozenset[int] = frozenset()) -> int | None:
        used = {r[0] for r in self._db.execute("SELECT slot FROM access")} | set(also_used)
        return next((s for s in range(capacity) if s not in used), None)

    @property
    def version(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return int(row[0]) if row else 0

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM access").fetchone()[0])

    # --- writes --------------------------------------------------------------------------------
    def put(self, entry: AccessEntry) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT OR REPLACE INTO access (slot, tenant_id, valid_from, valid_until, version) "
                             "VALUES (?, ?, ?, ?, ?)", (entry.slot, entry.tenant_id, _ts(entry.valid_from),
                                                        _ts(entry.valid_until), entry.version))
            self._bump(entry.version)

    def remove(self, slot: int, version: int = 0) -> bool:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            gone = self._db.execute("DELETE FROM access WHERE slot = ?", (slot,)).rowcount == 1
            self._bump(version)
            return gone

    def replace_all(self, entries: list[AccessEntry], version: int) -> None:
        """``access.sync``: the list becomes exactly ``entries`` (one transaction)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM access")
            self._db.executemany(
                "INSERT INTO access (slot, tenant_id, valid_from, valid_until, version) VALUES (?, ?, ?, ?, ?)",
                [(e.slot, e.tenant_id, _ts(e.valid_from), _ts(e.valid_until), e.version) for e in entries])
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('version', ?)", (str(version),))

    def _bump(self, version: int) -> None:
        if version > self.version:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('version', ?)", (str(version),))

    def close(self) -> None:
        self._db.close()

    def __repr__(self) -> str:
        return f"<AccessList entries={len(self)} version={self.version}>"
