"""What the hub does with ``selftest.result`` events: they are stored as every event (the events table is
their history, no table of their own), a failed one raises one hub ``node.fault`` while an earlier one is
still open (a scheduled run that the node will retry waits for the retry's result: ``retry_at``), and the
fleet view and the daily report read the newest result per pole and per door.

Why one fault and not one per check: staff work faults as alarms; a pole whose speaker died fails the
same check every night, and one open fault naming the failing checks is what a technician needs.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from edge.protocol import Event
from hub.store.schema import alarms, events, nodes

FAULT_PREFIX = "self-test failed: "
NOT_TESTED_AFTER = timedelta(days=3)  # EN 81-28 asks lift alarms to test themselves at least every 3 days


def failed_checks(data: dict[str, Any]) -> list[str]:
    return [str(c.get("name")) for c in data.get("checks", []) if isinstance(c, dict) and c.get("status") == "fail"]


# Checks whose failure says the hub or the broker was unreachable, not that the node is broken: the result's
# arrival proves the way is open again, and a hub outage at 03:00 must not become one fault per node (the
# outage is the hub's own incident). They stay in the history and count as failing in the fleet view.
NOT_A_NODE_FAULT = frozenset({"uplink"})


def fault_for(conn: Connection, result: Event) -> Event | None:
    """The hub's node.fault for a failed self-test, or None (passed, only the uplink failed, or a self-test
    fault is still open)."""
    failed = [name for name in failed_checks(result.data) if name not in NOT_A_NODE_FAULT]
    if not failed and (result.data.get("ok", True) or failed_checks(result.data)):
        return None
    if result.data.get("retry_at"):
        return None  # the node tries the failed checks again (edge/selftest/runner.py): its retry decides
    open_faults = select(alarms.c.id).where(alarms.c.node == result.node, alarms.c.kind == "node.fault",
                                            alarms.c.state != "resolved")
    for data in conn.execute(select(events.c.data).where(events.c.id.in_(open_faults))).scalars():
        if str((data or {}).get("reason", "")).startswith(FAULT_PREFIX):
            return None  # still being worked: one open fault per pole
    reason = (FAULT_PREFIX + ", ".join(failed or ["?"]))[:200]
    return Event.make(result.node, "node.fault", {"reason": reason, "raised_by": "hub", "fault": "selftest",
                                                  "event_id": str(result.id), "severity": "warning"})


def history(conn: Connection, node: str, limit: int = 30) -> list[dict[str, Any]]:
    rows = conn.execute(select(events.c.id, events.c.ts, events.c.received_at, events.c.data)
                        .where(events.c.node == node, events.c.kind == "selftest.result")
                        .order_by(events.c.seq.desc()).limit(limit)).all()
    return [{"id": r.id, "ts": r.ts, "received_at": r.received_at, "ok": bool((r.data or {}).get("ok")),
             "trigger": (r.data or {}).get("trigger"), "duration_s": (r.data or {}).get("duration_s"),
             "checks": (r.data or {}).get("checks", [])} for r in rows]


def latest_per_node(conn: Connection) -> dict[str, tuple[datetime, bool]]:
    newest = (select(events.c.node, func.max(events.c.seq).label("seq"))
              .where(events.c.kind == "selftest.result").group_by(events.c.node).subquery())
    rows = conn.execute(select(events.c.node, events.c.received_at, events.c.data)
                        .join(newest, events.c.seq == newest.c.seq)).all()
    return {r.node: (r.received_at, bool((r.data or {}).get("ok"))) for r in rows}


_COLUMNS = {"alarm_post": ("poles", "passing", "failing", "untested"),
            "rental_door": ("doors", "doors_passing", "doors_failing", "doors_untested")}


def fleet(conn: Connection, now: datetime) -> dict[str, Any]:
    """Per grid, poles and doors apart (their check lists differ): how many, passing (newest result ok and
    within 3 days), failing, untested (none in 3 days)."""
    latest = latest_per_node(conn)
    grids: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "poles": 0, "passing": 0, "failing": 0, "untested": [],
        "doors": 0, "doors_passing": 0, "doors_failing": 0, "doors_untested": []})
    for node_id, grid, kind in conn.execute(select(nodes.c.id, nodes.c.grid, nodes.c.kind)
                                            .where(nodes.c.kind.in_(list(_COLUMNS))).order_by(nodes.c.id)).all():
        count, passing, failing, untested = _COLUMNS[kind]
        g = grids[grid or ""]
        g[count] += 1
        seen = latest.get(node_id)
        if seen is None or now - seen[0] > NOT_TESTED_AFTER:
            g[untested].append(node_id)
        elif seen[1]:
            g[passing] += 1
        else:
            g[failing] += 1
    return {"grids": [{"grid": k, **v} for k, v in sorted(grids.items())],
            "not_tested_days": NOT_TESTED_AFTER.days}


def not_tested(conn: Connection, now: datetime) -> list[str]:
    """Poles and doors with no self-test result in the last 3 days (the daily report lists them)."""
    return sorted(n for g in fleet(conn, now)["grids"] for n in g["untested"] + g["doors_untested"])
