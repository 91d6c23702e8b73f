"""The node's durable outbox: nothing leaves it until the hub says it is stored.

Every event and snapshot is committed here (SQLite WAL, synchronous=FULL, so a power cut after
the commit keeps it) before it is published. An entry is deleted only on the hub's end-to-end
receipt, not on the broker's PUBACK: a broker can still lose what it acknowledged.

Priority classes (``edge.protocol.Priority``): alarm > audit > detection > telemetry. Entries go
out by class, then in order of arrival. The store is bounded by ``max_bytes``; to make room it
evicts telemetry first, then detections, and never an alarm or an audit entry (those are kept
even past the bound). When the disk itself is full, a reserve file is released so an alarm can
still be written; if even that fails the caller sends the alarm from memory.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from edge.protocol import Priority, clip_ref
from edge.shared.securefs import private_sqlite

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    key      TEXT NOT NULL UNIQUE,
    priority INTEGER NOT NULL,
    topic    TEXT NOT NULL,
    payload  BLOB NOT NULL,
    qos      INTEGER NOT NULL DEFAULT 1,
    created  REAL NOT NULL,
    size     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_order ON outbox (priority, seq);
CREATE TABLE IF NOT EXISTS dead_letter (
    key     TEXT PRIMARY KEY,
    topic   TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason  TEXT NOT NULL,
    at      REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

EVICTABLE = (Priority.TELEMETRY, Priority.DETECTION)  # in eviction order
DISK_HEADROOM = 512 * 1024  # freed at once when the disk is full
DISK_LOW_WATER = 512 * 1024  # below this much free disk only alarms and audit entries are written


def _disk_full(exc: Exception) -> bool:
    text = str(exc).lower()
    return "full" in text or "disk i/o" in text or "no space" in text


class OutboxFull(Exception):
    """Even after releasing the reserve the entry could not be written (disk full)."""


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    key: str
    priority: int
    topic: str
    payload: bytes
    qos: int


def event_key(event_id: str) -> str:
    return f"e:{event_id}"


def snapshot_key(event_id: str) -> str:
    return f"s:{event_id}"


def clip_key(event_id: str, n: int) -> str:
    return clip_ref_key(clip_ref(event_id, n))


def clip_ref_key(ref: str) -> str:
    """The outbox key of a receipt's clip (``Receipt.clips``: ``clip_ref(event_id, n)``)."""
    return f"c:{ref}"


class Outbox:
    """Owned by one thread (the node's asyncio loop): SQLite's one-writer rule by construction."""

    def __init__(self, path: str | Path, max_bytes: int = 64 * 1024 * 1024,
                 reserve_bytes: int = 1024 * 1024) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._db = sqlite3.connect(private_sqlite(self.path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        # keep the WAL small and reused: a WAL that grows to fill the SD card cannot be checkpointed
        self._db.execute("PRAGMA wal_autocheckpoint=64")
        self._db.execute("PRAGMA journal_size_limit=1048576")
        # Debian builds SQLite with SECURE_DELETE: zeroing every freed page doubles SD-card writes and
        # makes an eviction on a full disk need more journal space than it frees
        self._db.execute("PRAGMA secure_delete=FAST")
        self._db.executescript(_SCHEMA)
        self._bytes: int = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM outbox").fetchone()[0]
        self._reserve = self.path.with_name(self.path.name + ".reserve")
        self._reserve_bytes = reserve_bytes
        self._lost_counts: dict[str, int] = {}
        self._page_size: int = self._db.execute("PRAGMA page_size").fetchone()[0]
        self._ensure_reserve()

    # --- writing ---------------------------------------------------------------------------
    def _ensure_reserve(self) -> None:
        if self._reserve_bytes and not self._reserve.exists():
            try:
                with open(self._reserve, "wb") as fh:
                    fh.write(b"\0" * self._reserve_bytes)
            except OSError:
                self._reserve.unlink(missing_ok=True)

    def put(self, key: str, topic: str, payload: bytes, priority: Priority, qos: int = 1) -> bool:
        """Store an entry durably. False when a low-priority entry was dropped for lack of room.

        Raises OutboxFull only when an alarm/audit entry cannot be written at all.
        """
        size = len(payload) + len(topic) + 64
        if self._disk_free() < DISK_LOW_WATER:
            # near a full disk: keep the last of it for alarms, and let them write into pages freed
            # inside the file, so that a checkpoint never needs the file to grow
            if priority > Priority.AUDIT:
                self._bump_quietly("dropped")
                log.warning("disk nearly full: dropped new %s entry %s", Priority(priority).name.lower(), key)
                return False
            if self._free_pages_bytes() < size * 4:
                self._evict_for_disk(priority, size)
        if self._bytes + size > self.max_bytes and not self._make_room(size, priority):
            self._bump_quietly("dropped")
            log.warning("outbox full (%d bytes): dropped new %s entry %s", self._bytes,
                        Priority(priority).name.lower(), key)
            return False
        for attempt in (1, 2, 3, 4):
            try:
                with self._db:
                    self._db.execute("BEGIN IMMEDIATE")
                    self._db.execute(
                        "INSERT OR IGNORE INTO outbox (key, priority, topic, payload, qos, created, size)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (key, int(priority), topic, payload, qos, time.time(), size))
                self._bytes += size
                return True
            except sqlite3.OperationalError as exc:
                if not _disk_full(exc):
                    raise
                # the disk is full: make room inside the file by evicting lower classes (an alarm may
                # take a detection's pages); the reserve file is the last resort, for alarms only
                if attempt < 4 and self._evict_for_disk(priority, size):
                    continue
                if priority <= Priority.AUDIT and self._release_reserve():
                    continue
                if priority <= Priority.AUDIT:
                    raise OutboxFull(f"cannot write {key} to the outbox: {exc}") from exc
                self._bump_quietly("dropped")
                log.warning("disk full: dropped new %s entry %s", Priority(priority).name.lower(), key)
                return False
        return False

    def put_many(self, entries: list[tuple[str, str, bytes]], priority: Priority, qos: int = 1) -> None:
        """Several entries of one class in one transaction (one fsync): an alarm, its picture and its
        burst must not each wait for a commit. Near a full disk or the bound, entries go one by one
        through ``put`` with its eviction rules."""
        sizes = [len(payload) + len(topic) + 64 for _key, topic, payload in entries]
        if self._bytes + sum(sizes) <= self.max_bytes and self._disk_free() >= DISK_LOW_WATER + sum(sizes):
            try:
                now = time.time()
                with self._db:
                    self._db.execute("BEGIN IMMEDIATE")
                    self._db.executemany(
                        "INSERT OR IGNORE INTO outbox (key, priority, topic, payload, qos, created, size)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [(key, int(priority), topic, payload, qos, now, size)
                         for (key, topic, payload), size in zip(entries, sizes, strict=True)])
                self._bytes += sum(sizes)
                return
            except sqlite3.OperationalError as exc:
                if not _disk_full(exc):
                    raise
        for key, topic, payload in entries:
            self.put(key, topic, payload, priority, qos)

    def _evict_for_disk(self, for_priority: Priority, needed: int) -> bool:
        """Free pages inside the file for what must be written. Generously (DISK_HEADROOM): once
        the disk is full, a checkpoint that needs the file to grow can never finish, so later
        alarms must find freed pages rather than grow the file."""
        freed = 0
        goal = max(needed * 4, DISK_HEADROOM)
        for victim in (v for v in EVICTABLE if v > for_priority or for_priority <= Priority.AUDIT):
            while freed < goal:
                rows = self._db.execute("SELECT seq, size, key FROM outbox WHERE priority = ? ORDER BY seq LIMIT 16",
                                        (int(victim),)).fetchall()
                if not rows:
                    break
                try:
                    self._delete_rows([r[0] for r in rows])
                except sqlite3.OperationalError:
                    # even a delete needs a little journal space: the reserve buys it, for alarms only
                    if for_priority > Priority.AUDIT or not self._release_reserve():
                        return freed > 0
                    try:
                        self._delete_rows([r[0] for r in rows])
                    except sqlite3.OperationalError:
                        return freed > 0
                for _seq, size, key in rows:
                    self._bytes -= size
                    freed += size
                    log.warning("disk full: evicted %s entry %s", victim.name.lower(), key)
                self._bump_quietly("evicted", len(rows))
                # checkpoint into the freed pages and start the WAL over in the space it already has
                # (TRUNCATE would hand that space back to a full disk)
                self._db.execute("PRAGMA wal_checkpoint(RESTART)")
        return freed > 0

    def _disk_free(self) -> int:
        try:
            st = os.statvfs(self.path.parent)
        except OSError:
            return 1 << 62
        return st.f_bavail * st.f_frsize

    def _free_pages_bytes(self) -> int:
        pages: int = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return pages * self._page_size

    def _delete_rows(self, seqs: list[int]) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(q,) for q in seqs])

    def _bump_quietly(self, name: str, by: int = 1) -> None:
        """Counters are nice to have; on a full disk they must not turn into an error."""
        try:
            self._bump(name, by)
        except sqlite3.OperationalError:
            self._lost_counts[name] = self._lost_counts.get(name, 0) + by

    def _release_reserve(self) -> bool:
        if self._reserve.exists():
            log.error("disk full: releasing the outbox reserve so alarms can still be written")
            self._reserve.unlink(missing_ok=True)
            return True
        return False

    def _make_room(self, needed: int, for_priority: Priority) -> bool:
        """Evict telemetry, then detections, oldest first, never above the new entry's class."""
        for victim in (v for v in EVICTABLE if v >= for_priority):
            while self._bytes + needed > self.max_bytes:
                row = self._db.execute(
                    "SELECT seq, size, key FROM outbox WHERE priority = ? ORDER BY seq LIMIT 1",
                    (int(victim),)).fetchone()
                if row is None:
                    break
                with self._db:
                    self._db.execute("DELETE FROM outbox WHERE seq = ?", (row[0],))
                self._bytes -= row[1]
                self._bump_quietly("evicted")
                log.warning("outbox at its bound: evicted %s entry %s", victim.name.lower(), row[2])
            if self._bytes + needed <= self.max_bytes:
                return True
        # alarms and audit entries are written even past the bound
        return for_priority in (Priority.ALARM, Priority.AUDIT)

    def _bump(self, name: str, by: int = 1) -> None:
        with self._db:
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (name, by))

    # --- reading and removing ----------------------------------------------------------------
    def fresh(self, priority: int, after_seq: int, limit: int) -> list[Entry]:
        rows = self._db.execute(
            "SELECT seq, key, priority, topic, payload, qos FROM outbox "
            "WHERE priority = ? AND seq > ? ORDER BY seq LIMIT ?", (priority, after_seq, limit))
        return [Entry(*row) for row in rows]

    def get(self, key: str) -> Entry | None:
        row = self._db.execute("SELECT seq, key, priority, topic, payload, qos FROM outbox WHERE key = ?",
                               (key,)).fetchone()
        return Entry(*row) if row else None

    def remove(self, keys: list[str]) -> int:
        """Delete entries the hub has stored; returns how many were still here."""
        if not keys:
            return 0
        removed = 0
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for key in keys:
                row = self._db.execute("DELETE FROM outbox WHERE key = ? RETURNING size", (key,)).fetchone()
                if row:
                    removed += 1
                    self._bytes -= row[0]
        if removed and self._bytes < self.max_bytes // 2:
            self._ensure_reserve()
        return removed

    def dead_letter(self, key: str, reason: str) -> Entry | None:
        """Move an entry the hub refused aside, so one bad entry never blocks the queue."""
        entry = self.get(key)
        if entry is None:
            return None
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT OR REPLACE INTO dead_letter (key, topic, payload, reason, at) "
                             "VALUES (?, ?, ?, ?, ?)", (key, entry.topic, entry.payload, reason, time.time()))
            row = self._db.execute("DELETE FROM outbox WHERE key = ? RETURNING size", (key,)).fetchone()
        if row:
            self._bytes -= row[0]
        return entry

    def depth(self) -> int:
        count: int = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        return count

    def depth_by_priority(self) -> dict[str, int]:
        rows = self._db.execute("SELECT priority, COUNT(*) FROM outbox GROUP BY priority")
        return {Priority(p).name.lower(): n for p, n in rows}

    @property
    def bytes(self) -> int:
        return self._bytes

    def counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return (row[0] if row else 0) + self._lost_counts.get(name, 0)

    def dead_letters(self) -> list[tuple[str, str]]:
        return list(self._db.execute("SELECT key, reason FROM dead_letter ORDER BY at"))

    def close(self) -> None:
        self._db.close()
