"""Reports against fixture data with known answers (centre time zone Asia/Shanghai, UTC+8)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from hub.alarms.escalation import escalations
from hub.app import create_app
from hub.config import load_settings
from hub.reports.service import Reports, csv_cell, parse_range, stats
from hub.store.schema import alarms, events, nodes

TZ = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 3, 2, tzinfo=TZ)  # a Monday


def at(hour: int, minute: int = 0, day: int = 0) -> datetime:
    return (DAY + timedelta(days=day, hours=hour, minutes=minute)).astimezone(UTC)


def add_alarm(conn, node: str, kind: str, raised: datetime, *, ack=None, dispatch=None, scene=None, resolve=None,
              by: str = "wang", outcome: str | None = None, note: str | None = None, to: str | None = None) -> str:
    aid = str(uuid.uuid4())
    s = lambda x: None if x is None else raised + timedelta(seconds=x)  # noqa: E731
    state = "resolved" if resolve is not None else "on_scene" if scene else "dispatched" if dispatch else \
        "acknowledged" if ack else "open"
    conn.execute(alarms.insert().values(
        id=aid, node=node, kind=kind, state=state, count=1, node_ts=raised, raised_at=raised, acked_at=s(ack),
        acked_by=by if ack else None, dispatched_at=s(dispatch), dispatched_to=to, on_scene_at=s(scene),
        resolved_at=s(resolve), resolved_by=by if resolve is not None else None, outcome=outcome, note=note))
    return aid


def add_event(conn, node: str, kind: str, when: datetime) -> None:
    conn.execute(events.insert().values(id=str(uuid.uuid4()), node=node, kind=kind, ts=when, received_at=when,
                                        data={}, snapshot=False, delayed=False))


@pytest.fixture()
def env(tmp_path: Path):
    app = create_app(load_settings(data_dir=tmp_path, mqtt_enabled=False, timezone="Asia/Shanghai"))
    state = app.state.hub
    for node, grid, kind in (("pole-01", "G01", "alarm_post"), ("pole-02", "G01", "alarm_post"),
                             ("pole-03", "G02", "alarm_post"), ("door-01", "G02", "rental_door")):
        state.service.register_node(node, grid=grid, kind=kind, place=f"{node} place")
    ids = {}
    with state.engine.begin() as conn:
        conn.execute(nodes.update().values(created=datetime(2026, 2, 1, tzinfo=UTC)))
        ids["a1"] = add_alarm(conn, "pole-01", "alarm.pressed", at(8), ack=10, dispatch=40, scene=300, resolve=420,
                              outcome="assisted", to="=HYPERLINK(\"http://x\")")
        ids["a2"] = add_alarm(conn, "pole-01", "alarm.pressed", at(9, 30), ack=20, dispatch=60, scene=200,
                              resolve=600, outcome="false_alarm", note="-2 kids playing; @home +1")
        ids["a3"] = add_alarm(conn, "pole-03", "tamper.opened", at(9, 45), ack=30, resolve=100, outcome="other")
        ids["a4"] = add_alarm(conn, "pole-02", "node.offline", at(20), resolve=7200, by="system", outcome="recovered")
        ids["test"] = add_alarm(conn, "pole-01", "alarm.test", at(10))
        ids["a6"] = add_alarm(conn, "door-01", "door.forced", at(23, 30))
        ids["a7"] = add_alarm(conn, "door-01", "node.offline", at(22))
        # outside the day: the evening before (its offline span reaches 01:00 into the day) and the next midnight
        add_alarm(conn, "pole-03", "node.offline", at(23, day=-1), resolve=7200, by="system", outcome="recovered")
        add_alarm(conn, "pole-01", "alarm.pressed", at(0, day=1), ack=5)
        conn.execute(escalations.insert().values(alarm_id=ids["a6"], escalated_at=at(23, 31)))
        for kind, n in (("door.granted", 3), ("door.denied", 2), ("door.forced", 1)):
            for i in range(n):
                add_event(conn, "door-01", kind, at(12, i))
        add_event(conn, "door-01", "door.granted", at(23, 59, day=-1))
        add_event(conn, "pole-01", "detection.person", at(12))
    yield SimpleNamespace(app=app, state=state, ids=ids)


def test_day_summary_known_answers(env) -> None:
    state = env.state
    start, end, _ = parse_range("Asia/Shanghai", "2026-03-02", "2026-03-02")
    assert (start, end) == (DAY, DAY + timedelta(days=1))
    r = Reports(state.engine, "Asia/Shanghai").summary(start, end, now=end + timedelta(hours=1))
    assert r["totals"] == {"alarms": 6, "tests": 1, "escalated": 1, "open": 2,
                           "by_kind": {"alarm.pressed": 2, "tamper.opened": 1, "node.offline": 2, "door.forced": 1},
                           "by_outcome": {"assisted": 1, "false_alarm": 1, "other": 1, "recovered": 1}}
    assert [(n["node"], n["alarms"]) for n in r["per_node"]] == [("door-01", 2), ("pole-01", 2), ("pole-02", 1),
                                                                 ("pole-03", 1)]
    assert r["per_grid"] == [{"grid": "G01", "alarms": 3}, {"grid": "G02", "alarms": 3}]
    expected_hours = [0] * 24
    for h, n in ((8, 1), (9, 2), (20, 1), (22, 1), (23, 1)):
        expected_hours[h] = n
    assert r["per_hour"] == expected_hours
    assert r["response"] == {
        "acknowledge": {"n": 3, "median_s": 20, "p90_s": 30, "skipped": 0},
        "dispatch": {"n": 2, "median_s": 50, "p90_s": 60, "skipped": 1},  # a3 went from acknowledged to resolved
        "arrive": {"n": 2, "median_s": 250, "p90_s": 300, "skipped": 1},
        "resolve": {"n": 3, "median_s": 420, "p90_s": 600, "skipped": 0},  # the node's own recovery is no response
    }
    up = {u["node"]: u for u in r["uptime"]}
    assert up["pole-01"]["uptime_pct"] == 100
    assert up["pole-02"]["downtime_s"] == 7200 and up["pole-02"]["uptime_pct"] == pytest.approx(91.667)
    assert up["pole-03"]["downtime_s"] == 3600 and up["pole-03"]["uptime_pct"] == pytest.approx(95.833)
    assert up["door-01"]["downtime_s"] == 7200  # still offline at the end of the day
    assert r["doors"] == {"granted": 3, "denied": 2, "forced": 1, "held_open": 0, "lockout": 0}
    g1, g2 = r["scorecard"]
    assert (g1["grid"], g1["nodes"], g1["alarms"], g1["false_alarms"], g1["escalated"]) == ("G01", 2, 3, 1, 0)
    assert g1["ack"]["median_s"] == 15 and g1["resolve"]["median_s"] == 510
    assert g1["uptime_pct"] == pytest.approx((100 + 91.667) / 2, abs=0.001)
    assert (g2["grid"], g2["nodes"], g2["alarms"], g2["false_alarms"], g2["escalated"]) == ("G02", 2, 3, 0, 1)
    assert g2["ack"]["median_s"] == 30 and g2["uptime_pct"] == pytest.approx(93.75)
    assert g2["doors"] == {"granted": 3, "denied": 2, "forced": 1, "held_open": 0, "lockout": 0}


def test_ranges_today_and_week_in_the_centre_zone() -> None:
    now = datetime(2026, 3, 4, 1, 30, tzinfo=TZ)  # Wednesday 01:30 in Shanghai, still Tuesday in UTC
    s, e, label = parse_range("Asia/Shanghai", period="today", now=now)
    assert (s, e, label) == (datetime(2026, 3, 4, tzinfo=TZ), datetime(2026, 3, 5, tzinfo=TZ), "today")
    s, e, label = parse_range("Asia/Shanghai", period="week", now=now)
    assert (s, e) == (DAY, DAY + timedelta(days=7))


def test_week_includes_monday_to_sunday_only(env) -> None:
    state = env.state
    s, e, _ = parse_range("Asia/Shanghai", period="week", now=DAY + timedelta(hours=12))
    r = Reports(state.engine, "Asia/Shanghai").summary(s, e, now=DAY + timedelta(days=2))
    assert r["totals"]["alarms"] == 7  # the next midnight's press is in this week; the Sunday night offline is not


def test_stats_definitions() -> None:
    assert stats([]) == {"n": 0, "median_s": None, "p90_s": None}
    assert stats([5, 1, 3, 2, 4, 6, 7, 8, 9, 10]) == {"n": 10, "median_s": 5.5, "p90_s": 9}


def test_csv_cells_are_escaped() -> None:
    for raw, safe in (("=1+2", "'=1+2"), ("+86 110", "'+86 110"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
                      ("plain", "plain"), (None, ""), (12.5, "12.5")):
        assert csv_cell(raw) == safe


def test_api_summary_and_csv(env) -> None:
    app, state, ids = env.app, env.state, env.ids
    state.auth.add_user("zhao", "installer-pass-1", "installer")
    with TestClient(app) as client:
        token = client.post("/api/login", json={"username": "zhao", "password": "installer-pass-1"}).json()["token"]
        client.cookies.clear()
        h = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/reports/summary?from=2026-03-02&to=2026-03-02").status_code == 401
        body = client.get("/api/reports/summary?from=2026-03-02&to=2026-03-02", headers=h).json()
        assert body["totals"]["alarms"] == 6 and body["timezone"] == "Asia/Shanghai"
        assert body["from"] == "2026-03-02T00:00:00+08:00"
        assert client.get("/api/reports/summary?from=2026-13-40", headers=h).status_code == 422
        r = client.get("/api/reports/alarms.csv?from=2026-03-02&to=2026-03-02", headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert len(rows) == 7  # the test alarm is listed too (kind alarm.test), apart from the counts
    by_id = {row["id"]: row for row in rows}
    assert by_id[ids["a1"]]["dispatched_to"] == "'=HYPERLINK(\"http://x\")"
    assert by_id[ids["a2"]]["note"] == "'-2 kids playing; @home +1"
    assert by_id[ids["a1"]]["raised_at"] == "2026-03-02T08:00:00+08:00"
    assert by_id[ids["a1"]]["ack_s"] == "10.0" and by_id[ids["a6"]]["escalated"] == "yes"
    for row in rows:
        for value in row.values():
            assert not value or value[0] not in "=+-@", row


def test_rolled_up_days_give_the_same_answers_as_the_events(env) -> None:
    state = env.state
    reports = Reports(state.engine, "Asia/Shanghai")
    start, end = DAY - timedelta(days=1), DAY + timedelta(days=2)
    direct = reports._door_counts(start, end, now=DAY + timedelta(hours=12))  # the days are still open
    # the first call rolled up 1 March (closed by then); now 2 and 3 March are closed too
    assert reports.roll_up(now=DAY + timedelta(days=3)) == 2
    rolled = reports._door_counts(start, end, now=DAY + timedelta(days=3))
    assert sorted(direct) == sorted(rolled) == [("door-01", "door.denied", 2), ("door-01", "door.forced", 1),
                                                ("door-01", "door.granted", 4)]
    # a range with partial days at both ends mixes the roll-up with the events
    partial = reports._door_counts(at(12, 1), at(12, 1, day=1), now=DAY + timedelta(days=3))
    assert sorted(partial) == [("door-01", "door.denied", 1), ("door-01", "door.granted", 2)]  # from 12:01
    assert reports.roll_up(now=DAY + timedelta(days=3)) == 0  # idempotent


def test_an_alarm_resolved_unacknowledged_counts_as_skipped_not_timed(env) -> None:
    """issue 17: the CSV showed ack_s 217.8 for an alarm nobody acknowledged (resolve stamped the ack)."""
    state = env.state
    raised = datetime.now(UTC) - timedelta(seconds=217.8)
    with state.engine.begin() as conn:
        aid = add_alarm(conn, "pole-02", "alarm.pressed", raised)
    state.service.advance(aid, "resolved", "wang", outcome="false_alarm")
    reports = Reports(state.engine, "Asia/Shanghai")
    start, end = raised - timedelta(minutes=1), datetime.now(UTC) + timedelta(minutes=1)
    response = reports.summary(start, end)["response"]
    assert response["acknowledge"] == {"n": 0, "median_s": None, "p90_s": None, "skipped": 1}
    assert response["dispatch"]["skipped"] == response["arrive"]["skipped"] == 1
    assert response["resolve"]["n"] == 1 and response["resolve"]["skipped"] == 0
    row, = csv.DictReader(io.StringIO(reports.alarms_csv(start, end)))
    assert (row["acked_at"], row["acked_by"], row["ack_s"]) == ("", "", "skipped")
    assert float(row["resolve_s"]) == pytest.approx(217.8, abs=5)
