"""The durable outbox and the receipt-driven sender, on real SQLite files and a fake clock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edge.clock import FakeClock
from edge.link.outbox import Outbox
from edge.link.sender import Sender
from edge.protocol import Priority


def fill(ob: Outbox, prefix: str, n: int, priority: Priority, size: int = 10) -> list[str]:
    keys = [f"e:{prefix}{i}" for i in range(n)]
    for k in keys:
        ob.put(k, "t", b"x" * size, priority)
    return keys


class Broker:
    """Stands in for paho's publish (returns a mid) and records the order of publishing."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.up = True

    def publish(self, topic: str, payload: bytes, qos: int) -> int | None:
        if not self.up:
            return None
        self.sent.append(payload.decode())
        return len(self.sent)


def test_entries_survive_reopen_and_kill(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    code = (f"from edge.link.outbox import Outbox; from edge.protocol import Priority; import os\n"
            f"ob = Outbox({str(path)!r})\n"
            f"for i in range(50): ob.put(f'e:{{i}}', 't', b'p', Priority.ALARM)\n"
            f"os.kill(os.getpid(), 9)\n")
    subprocess.run([sys.executable, "-c", code], check=False)
    ob = Outbox(path)
    assert ob.depth() == 50
    assert [e.key for e in ob.fresh(Priority.ALARM, 0, 100)] == [f"e:{i}" for i in range(50)]


def test_eviction_takes_telemetry_then_detections_never_alarms(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", max_bytes=64 * 1024)
    alarms = fill(ob, "a", 20, Priority.ALARM, 1000)
    fill(ob, "t", 20, Priority.TELEMETRY, 1000)
    fill(ob, "d", 20, Priority.DETECTION, 1000)
    # full now: more alarms push out telemetry first, then detections
    fill(ob, "b", 30, Priority.ALARM, 1000)
    by = ob.depth_by_priority()
    assert by["alarm"] == 50 and "telemetry" not in by and 0 < by["detection"] < 20
    assert ob.counter("evicted") >= 20
    # with nothing left to evict, alarms still go in (past the bound), detections are dropped
    fill(ob, "c", 30, Priority.ALARM, 1000)
    assert ob.depth_by_priority() == {"alarm": 80}
    assert ob.put("e:late-detection", "t", b"x" * 1000, Priority.DETECTION) is False
    assert all(ob.get(k) for k in alarms)


def test_sender_orders_by_class_and_keeps_until_receipt(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    for i in range(5):
        ob.put(f"e:t{i}", "t", f"t{i}".encode(), Priority.TELEMETRY)
    ob.put("e:a0", "t", b"a0", Priority.ALARM)
    br, clock = Broker(), FakeClock()
    s = Sender(ob, br.publish, clock, window=3, resend_after=5)
    s.pump()
    assert br.sent == ["a0", "t0", "t1"]  # the alarm overtakes the backlog; window of 3
    s.pump()
    assert len(br.sent) == 3  # nothing more until receipts
    s.receipted(["e:a0", "e:t0"])
    s.pump()
    assert br.sent[3:] == ["t2", "t3"]
    assert ob.depth() == 4  # t1..t4: only receipts delete


def test_sender_resends_after_timeout_but_not_while_hub_offline(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    ob.put("e:a", "t", b"a", Priority.ALARM)
    br, clock = Broker(), FakeClock()
    s = Sender(ob, br.publish, clock, window=10, resend_after=5)
    s.pump()
    clock.advance(4)
    s.pump()
    assert br.sent == ["a"]
    s.hub_online = False
    clock.advance(10)
    s.pump()
    assert br.sent == ["a"]
    s.hub_online = True
    s.pump()
    assert br.sent == ["a", "a"]
    clock.advance(6)  # backoff doubles: 10 s now
    s.pump()
    assert br.sent == ["a", "a"]
    clock.advance(5)
    s.pump()
    assert br.sent == ["a", "a", "a"]


def test_reconnect_resends_everything_unreceipted(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    fill(ob, "x", 3, Priority.AUDIT)
    br, clock = Broker(), FakeClock()
    s = Sender(ob, br.publish, clock, window=10, resend_after=60)
    s.pump()
    br.up = False
    fill(ob, "y", 2, Priority.AUDIT)
    s.pump()  # broker down: nothing goes, nothing is lost
    br.up = True
    s.reset()
    s.pump()
    assert len(br.sent) == 3 + 5


def test_rejected_entry_goes_to_dead_letters_and_queue_moves_on(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    ob.put("e:bad", "t", b"bad", Priority.AUDIT)
    ob.put("e:good", "t", b"good", Priority.AUDIT)
    br, clock = Broker(), FakeClock()
    s = Sender(ob, br.publish, clock, window=1)
    s.pump()
    assert br.sent == ["bad"]
    s.rejected("e:bad", "invalid event")
    s.pump()
    assert br.sent == ["bad", "good"]
    assert ob.dead_letters() == [("e:bad", "invalid event")]


def test_alarm_is_not_held_back_by_a_full_window(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    fill(ob, "d", 10, Priority.DETECTION)
    br, clock = Broker(), FakeClock()
    s = Sender(ob, br.publish, clock, window=4, resend_after=60)
    s.pump()
    assert len(br.sent) == 4
    ob.put("e:alarm", "t", b"ALARM", Priority.ALARM)
    s.pump()
    assert br.sent[-1] == "ALARM" and len(br.sent) == 5


def test_put_many_is_one_class_in_order_and_survives_reopen(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    ob.put_many([("e:a", "t/e", b"event"), ("s:a", "t/s", b"jpeg"), ("c:a/0", "t/c0", b"f0")], Priority.ALARM)
    assert [e.key for e in ob.fresh(Priority.ALARM, 0, 10)] == ["e:a", "s:a", "c:a/0"]
    ob.close()
    assert Outbox(tmp_path / "o.db").depth() == 3
