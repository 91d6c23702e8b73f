"""Sensitive periods (issue 20 part 3) in the hub, with a controllable clock: bad windows refused with a
sentence in both languages and nothing stored; escalation after the period's 30 s in its grids and the usual
60 s elsewhere; the profile pushed once as a signed config.update (a restarted scheduler does not push it
again), the previous config pushed back at the end; the 08:00 report written and POSTed to a real local
webhook, once; the live message for the banner; audit rows for each change."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from edge.protocol import Command, Event, Topics, utcnow
from hub.app import create_app
from hub.config import load_settings
from hub.ingest.writer import Incoming
from hub.sensitive.scheduler import Scheduler
from hub.store.schema import alarms, audit, grids, nodes, sensitive_periods, sensitive_pushes, sensitive_reports
from tests.fake_transport import FakeTransport

TZ = ZoneInfo("Asia/Shanghai")
_mid = iter(range(1, 1_000_000))
BASE = {"node": {"id": "pole-a", "kind": "alarm_post", "grid": "G01", "place": "North gate"},
        "vision": {"zones": [{"name": "lane", "points": [[0, 0], [1, 0], [1, 1]], "schedule": ["22:00-06:00"],
                              "loiter_s": 120}]}}


class Webhook:
    """A real HTTP server on localhost that keeps what is POSTed to it."""

    def __init__(self) -> None:
        got: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                answer = b'{"errcode": 0, "errmsg": "ok"}'  # what a WeCom/DingTalk robot answers
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.got = got
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def hub(tmp_path: Path):
    hook = Webhook()
    settings = load_settings(data_dir=tmp_path, mqtt_enabled=True, escalation_webhook=hook.url, sensitive_tick_s=60)
    fake = FakeTransport()
    fake.connected = True
    app = create_app(settings, transport=fake)
    state = app.state.hub
    state.auth.add_user("boss", "correct horse battery", "admin")
    state.auth.add_user("li", "correct horse battery", "operator")
    with state.engine.begin() as conn:
        for g in ("G01", "G02"):
            conn.execute(grids.insert().values(name=g, geometry={"type": "Polygon", "coordinates": []},
                                               imported_at=utcnow()))
    state.service.register_node("pole-a", grid="G01")
    state.service.register_node("pole-b", grid="G02")
    published: list[dict[str, Any]] = []
    state.sensitive.publish = published.extend
    with TestClient(app) as client:
        token = client.post("/api/login", json={"username": "boss", "password": "correct horse battery"}).json()
        client.headers["Authorization"] = f"Bearer {token['token']}"
        yield type("Hub", (), {"state": state, "client": client, "fake": fake, "hook": hook, "live": published,
                               "dir": tmp_path})
    hook.close()


def feed(state: Any, *events: Event) -> None:
    state.ingest.handle_batch([Incoming(Topics.events(e.node), e.to_bytes(), next(_mid), 1, utcnow())
                               for e in events])


def local(dt: datetime) -> str:
    return dt.astimezone(TZ).strftime("%Y-%m-%dT%H:%M")


def next_eight(now: datetime) -> datetime:
    """The first 08:00 district time after ``now``."""
    day = now.astimezone(TZ).date()
    at = datetime(day.year, day.month, day.day, 8, 0, tzinfo=TZ)
    return at if at > now else at + timedelta(days=1)


def stored(state: Any) -> int:
    with state.engine.connect() as conn:
        return len(conn.execute(select(sensitive_periods)).all())


@pytest.mark.parametrize("change, words", [
    ({"start": "+2h", "end": "+1h"}, ("must be after the start", "必须晚于开始时间")),
    ({"start": "-3h", "end": "+1h"}, ("is in the past", "已过去")),
    ({"end": "+40d"}, ("at most 31 days", "最长 31 天")),
    ({"grids": ["G01", "G99"]}, ("no grid G99", "没有网格 G99")),
    ({"end": "tomorrow"}, ("is not a date and time", "格式不对")),
    ({"end": "9999-12-31T23:00-05:00"}, ("out of range", "超出范围")),
    ({"escalate_after_s": 90}, ("between 5 s and the usual 60 s", "升级时间")),
    ({"profile": {"night_schedule": ["18:00-7:00"]}}, ("not 'HH:MM-HH:MM'", "不是 HH:MM-HH:MM")),
])
def test_a_bad_window_or_scope_is_a_clear_422_and_nothing_is_stored(hub, change, words) -> None:
    now = utcnow()
    body: dict[str, Any] = {"end": local(now + timedelta(hours=3)), "reason": "festival", "grids": ["G01"]}
    for key, value in change.items():
        if isinstance(value, str) and value[0] in "+-":
            unit = {"h": "hours", "d": "days"}[value[-1]]
            value = local(now + int(value[:-1]) * timedelta(**{unit: 1}))
        body[key] = value
    r = hub.client.post("/api/sensitive-periods", json=body)
    assert r.status_code == 422, r.text
    text = json.dumps(r.json(), ensure_ascii=False)
    assert all(w in text for w in words), text
    assert stored(hub.state) == 0


def test_an_overlapping_period_is_refused_and_an_operator_may_read_but_not_create(hub) -> None:
    now = utcnow()
    first = hub.client.post("/api/sensitive-periods", json={"end": local(now + timedelta(days=1)), "reason": "a",
                                                            "grids": ["G01"]})
    assert first.status_code == 201, first.text
    clash = hub.client.post("/api/sensitive-periods", json={"start": local(now + timedelta(hours=5)),
                                                            "end": local(now + timedelta(days=2)), "reason": "b"})
    assert clash.status_code == 422 and "overlaps period" in clash.text and "重叠" in clash.text
    other_grid = hub.client.post("/api/sensitive-periods", json={"end": local(now + timedelta(days=1)), "reason": "c",
                                                                 "grids": ["G02"]})
    assert other_grid.status_code == 201, other_grid.text
    assert stored(hub.state) == 2
    op = hub.client.post("/api/login", json={"username": "li", "password": "correct horse battery"}).json()["token"]
    as_op = {"Authorization": f"Bearer {op}"}
    assert hub.client.get("/api/sensitive-periods", headers=as_op).status_code == 200
    assert hub.client.post("/api/sensitive-periods", headers=as_op,
                           json={"end": local(now + timedelta(days=5)), "reason": "x",
                                 "grids": ["G02"]}).status_code == 403
    assert hub.client.post(f"/api/sensitive-periods/{first.json()['id']}/cancel", headers=as_op).status_code == 403


def test_alarms_in_scope_escalate_after_30_s_and_others_after_60_s(hub) -> None:
    now = utcnow()
    r = hub.client.post("/api/sensitive-periods", json={"end": local(now + timedelta(hours=2)), "reason": "visit",
                                                        "grids": ["G01"], "escalate_after_s": 30})
    assert r.status_code == 201, r.text
    feed(hub.state, Event.make("pole-a", "alarm.pressed", {}), Event.make("pole-b", "alarm.pressed", {}))
    with hub.state.engine.connect() as conn:
        raised = max(conn.execute(select(alarms.c.raised_at)).scalars())
    esc = hub.state.escalator
    assert esc.check(raised + timedelta(seconds=20)) == []
    first = esc.check(raised + timedelta(seconds=31))
    assert [a["node"] for a in first] == ["pole-a"]  # G01 is in the period
    second = esc.check(raised + timedelta(seconds=61))
    assert [a["node"] for a in second] == ["pole-b"]  # G02 keeps the usual 60 s
    with hub.state.engine.connect() as conn:
        details = {row.detail["node"]: row.detail["after_s"] for row in conn.execute(
            select(audit).where(audit.c.action == "alarm.escalate"))}
    assert details == {"pole-a": 30.0, "pole-b": 60.0}
    # cancelled: back to 60 s for G01 too
    hub.client.post(f"/api/sensitive-periods/{r.json()['id']}/cancel")
    feed(hub.state, Event.make("pole-a", "alarm.pressed", {"note": "again"}))
    with hub.state.engine.connect() as conn:
        newest = max(conn.execute(select(alarms.c.raised_at).where(alarms.c.node == "pole-a")).scalars())
    assert esc.check(newest + timedelta(seconds=40)) == []


def _applied(hub, node: str, command_id: str) -> None:
    """The pole says it applied the config.update (as edge/agent/updates.py reports after its trial)."""
    feed(hub.state, Event.make(node, "config.applied", {"command_id": command_id, "boots": 1}))


def _config_commands(hub, node: str) -> list[Command]:
    out = []
    for topic, payload in hub.fake.published:
        if topic == Topics.commands(node):
            cmd = Command.model_validate_json(payload)
            if cmd.name == "config.update":
                out.append(cmd)
    return out


def test_the_profile_is_pushed_once_even_after_a_restart_and_reverted_at_the_end(hub) -> None:
    state, client = hub.state, hub.client
    with state.engine.begin() as conn:
        conn.execute(nodes.update().values(state="online"))
    base_text = yaml.safe_dump(BASE, sort_keys=False)
    r = client.post("/api/nodes/pole-a/config", json={"yaml": base_text})
    assert r.status_code == 202, r.text
    _applied(hub, "pole-a", r.json()["command_id"])
    now = utcnow()
    p = client.post("/api/sensitive-periods", json={
        "end": local(now + timedelta(hours=3)), "reason": "summit", "grids": ["G01", "G02"],
        "profile": {"loiter_s": 20, "night_schedule": ["18:00-07:00"]}}).json()
    state.sensitive.tick(now + timedelta(seconds=1))
    pushes = client.get(f"/api/sensitive-periods/{p['id']}").json()["pushes"]
    by_node = {x["node"]: x for x in pushes}
    assert by_node["pole-a"]["state"] == "sent" and by_node["pole-a"]["outcome"] == "sent"
    assert by_node["pole-b"]["state"] == "skipped" and "never pushed" in by_node["pole-b"]["reason"]
    [apply] = _config_commands(hub, "pole-a")[1:]
    zone = yaml.safe_load(apply.args["yaml"])["vision"]["zones"][0]
    assert zone["loiter_s"] == 20 and zone["schedule"] == ["18:00-07:00"]
    assert apply.operator == f"sensitive-period:{p['id']}"
    assert hub.live and hub.live[-1]["type"] == "sensitive" and hub.live[-1]["active"][0]["id"] == p["id"]

    # the hub restarts mid-period: a new scheduler over the same store pushes nothing again
    again = Scheduler(state.periods, state.service, state.sensitive.reports, connected=lambda: True)
    again.tick(now + timedelta(minutes=5))
    state.sensitive.tick(now + timedelta(minutes=6))
    assert len(_config_commands(hub, "pole-a")) == 2
    _applied(hub, "pole-a", apply.id)

    # the end: the previous config goes back, the same way, once; the banner goes
    state.sensitive.tick(now + timedelta(hours=3, seconds=1))
    again.tick(now + timedelta(hours=3, seconds=2))
    cmds = _config_commands(hub, "pole-a")
    assert len(cmds) == 3 and cmds[2].args["yaml"] == base_text
    detail = client.get(f"/api/sensitive-periods/{p['id']}").json()
    assert detail["state"] == "ended"
    revert = [x for x in detail["pushes"] if x["phase"] == "revert" and x["node"] == "pole-a"]
    assert revert[0]["state"] == "sent" and revert[0]["command_id"] == cmds[2].id
    assert hub.live[-1] == {"type": "sensitive", "active": []}
    assert client.get("/api/sensitive-periods/active").json() == []
    # the node page lists both pushes (the existing config path)
    ups = client.get("/api/nodes/pole-a/config/updates").json()
    assert [u["operator"] for u in ups][:2] == [f"sensitive-period:{p['id']}"] * 2
    with state.engine.connect() as conn:
        actions = [r.action for r in conn.execute(select(audit).where(audit.c.action.like("sensitive.%")))]
        rows = conn.execute(select(sensitive_pushes)).all()
    for action in ("sensitive.create", "sensitive.start", "sensitive.apply.pending", "sensitive.apply.sent",
                   "sensitive.apply.skipped", "sensitive.end", "sensitive.revert.pending", "sensitive.revert.sent"):
        assert action in actions, (action, actions)
    assert len(rows) == 3  # pole-a apply + revert, pole-b apply (skipped)


def test_an_offline_pole_stays_pending_and_gets_the_profile_when_it_is_back(hub) -> None:
    state, client = hub.state, hub.client
    with state.engine.begin() as conn:
        conn.execute(nodes.update().values(state="online"))
    r = client.post("/api/nodes/pole-a/config", json={"yaml": yaml.safe_dump(BASE)})
    _applied(hub, "pole-a", r.json()["command_id"])
    with state.engine.begin() as conn:
        conn.execute(nodes.update().values(state="offline"))
    p = client.post("/api/sensitive-periods", json={"end": local(utcnow() + timedelta(hours=1)), "reason": "x",
                                                    "profile": {"loiter_s": 30}}).json()
    state.sensitive.tick()
    [push] = [x for x in client.get(f"/api/sensitive-periods/{p['id']}").json()["pushes"] if x["node"] == "pole-a"]
    assert push["state"] == "pending" and len(_config_commands(hub, "pole-a")) == 1
    with state.engine.begin() as conn:
        conn.execute(nodes.update().values(state="online"))
    state.sensitive.tick()
    assert len(_config_commands(hub, "pole-a")) == 2


def test_the_0800_report_is_written_and_posted_to_the_webhook_once(hub) -> None:
    state, client = hub.state, hub.client
    now = utcnow()
    p = client.post("/api/sensitive-periods", json={"end": local(now + timedelta(days=3)), "reason": "exams"}).json()
    eight = next_eight(now)
    tomorrow = eight.date()
    state.sensitive.tick(eight - timedelta(minutes=1))
    assert hub.hook.got == []
    state.sensitive.tick(eight + timedelta(seconds=5))
    Scheduler(state.periods, state.service, state.sensitive.reports).tick(eight + timedelta(minutes=1))  # restart
    state.sensitive.tick(eight + timedelta(minutes=2))
    assert len(hub.hook.got) == 1
    body = hub.hook.got[0]
    assert body["type"] == "sensitive.report" and body["day"] == tomorrow.isoformat()
    assert body["period"]["id"] == p["id"] and "totals" in body["summary"]
    assert body["from"] == (eight - timedelta(days=1)).isoformat()
    [report] = client.get(f"/api/sensitive-periods/{p['id']}").json()["reports"]
    assert report["webhook_status"] == 200 and report["webhook_error"] is None
    assert report["notified"] == {"webpush": {"skipped": 1}}  # through hub/notify: the admin has no subscription
    saved = json.loads(Path(report["path"]).read_text())
    assert saved == body and Path(report["path"]).is_relative_to(hub.dir)
    with state.engine.connect() as conn:
        assert len(conn.execute(select(sensitive_reports)).all()) == 1
        assert conn.execute(select(audit).where(audit.c.action == "sensitive.report")).first() is not None


def test_a_dead_webhook_is_recorded_and_the_file_still_written(hub) -> None:
    hub.hook.close()
    state = hub.state
    p = state.periods.create(start=None, end=local(utcnow() + timedelta(days=2)), grids=["G01"], reason="r",
                             actor="t")
    state.sensitive.tick((next_eight(utcnow()) + timedelta(minutes=1)).astimezone(UTC))
    [report] = state.sensitive.reports.listed(p["id"])
    assert report["webhook_status"] is None and report["webhook_error"]
    saved = json.loads(Path(report["path"]).read_text())
    assert [g["grid"] for g in saved["scope"]] == ["G01"]  # a grid period's report leads with its grids


def test_pushes_are_paced_a_few_poles_a_round(hub) -> None:
    """A district's poles are not all restarted for their trial in the same second."""
    state, client = hub.state, hub.client
    with state.engine.begin() as conn:
        conn.execute(nodes.update().values(state="online"))
    for node, grid in (("pole-a", "G01"), ("pole-b", "G02")):
        text = yaml.safe_dump({**BASE, "node": {**BASE["node"], "id": node, "grid": grid}})
        _applied(hub, node, client.post(f"/api/nodes/{node}/config", json={"yaml": text}).json()["command_id"])
    client.post("/api/sensitive-periods", json={"end": local(utcnow() + timedelta(hours=1)), "reason": "x",
                                                "profile": {"loiter_s": 30}})
    state.sensitive.max_pushes = 1
    state.sensitive.tick()
    assert len(_config_commands(hub, "pole-a")) + len(_config_commands(hub, "pole-b")) == 3
    state.sensitive.tick()
    assert len(_config_commands(hub, "pole-a")) + len(_config_commands(hub, "pole-b")) == 4


def test_back_to_back_periods_hand_the_pole_over_and_the_last_restores_its_own_config(hub) -> None:
    state, client = hub.state, hub.client
    with state.engine.begin() as conn:
        conn.execute(nodes.update().values(state="online"))
    base_text = yaml.safe_dump(BASE, sort_keys=False)
    _applied(hub, "pole-a", client.post("/api/nodes/pole-a/config", json={"yaml": base_text}).json()["command_id"])
    now = utcnow()
    turn = now + timedelta(hours=1)
    first = client.post("/api/sensitive-periods", json={
        "end": turn.isoformat(), "reason": "one", "grids": ["G01"],
        "profile": {"loiter_s": 20, "night_schedule": ["18:00-07:00"]}}).json()
    second = client.post("/api/sensitive-periods", json={
        "start": turn.isoformat(), "end": (turn + timedelta(hours=1)).isoformat(), "reason": "two",
        "profile": {"loiter_s": 40}})
    assert second.status_code == 201, second.text  # adjacent windows do not overlap
    state.sensitive.tick(now + timedelta(seconds=1))
    _applied(hub, "pole-a", _config_commands(hub, "pole-a")[-1].id)
    state.sensitive.tick(turn + timedelta(seconds=1))
    cmds = _config_commands(hub, "pole-a")
    assert len(cmds) == 3  # the second period's profile, on the pole's own config; no revert in between
    zone = yaml.safe_load(cmds[2].args["yaml"])["vision"]["zones"][0]
    assert zone["loiter_s"] == 40 and zone["schedule"] == ["22:00-06:00"]
    revert = [p for p in client.get(f"/api/sensitive-periods/{first['id']}").json()["pushes"] if p["phase"] == "revert"]
    assert revert[0]["state"] == "skipped" and second.json()["id"] in revert[0]["reason"]
    _applied(hub, "pole-a", cmds[2].id)
    state.sensitive.tick(turn + timedelta(hours=1, seconds=1))
    cmds = _config_commands(hub, "pole-a")
    assert len(cmds) == 4 and cmds[3].args["yaml"] == base_text


def test_the_report_goes_through_a_notification_channel_to_a_real_robot(tmp_path: Path) -> None:
    """With a WeCom robot configured (hub/notify), the admins get the day's figures there; each delivery recorded."""
    hook, robot = Webhook(), Webhook()
    settings = load_settings(data_dir=tmp_path, mqtt_enabled=False, escalation_webhook=hook.url, sensitive_tick_s=60,
                             notify_order="wecom", notify_wecom_webhook=robot.url)
    app = create_app(settings)
    state = app.state.hub
    state.auth.add_user("boss", "correct horse battery", "admin")
    try:
        with TestClient(app):
            p = state.periods.create(start=None, end=(utcnow() + timedelta(days=2)).isoformat(), grids=None,
                                     reason="国庆安保", actor="boss")
            state.sensitive.tick(next_eight(utcnow()) + timedelta(minutes=1))
            [report] = state.sensitive.reports.listed(p["id"])
    finally:
        hook.close()
        robot.close()
    assert report["notified"] == {"wecom": {"sent": 1}}
    [message] = robot.got
    text = message["text"]["content"]
    assert "敏感时期日报" in text and "报警 0 起" in text and "国庆安保" in text
    assert len(hook.got) == 1 and report["webhook_status"] == 200


def test_a_hub_stopped_between_claiming_and_recording_a_push_neither_loses_nor_repeats_it(hub) -> None:
    state, client = hub.state, hub.client
    with state.engine.begin() as conn:
        conn.execute(nodes.update().values(state="online"))
    _applied(hub, "pole-a", client.post("/api/nodes/pole-a/config", json={"yaml": yaml.safe_dump(BASE)})
             .json()["command_id"])
    now = utcnow()
    p = client.post("/api/sensitive-periods", json={"end": local(now + timedelta(hours=1)), "reason": "x",
                                                    "grids": ["G01"], "profile": {"loiter_s": 30}}).json()
    now = utcnow()
    state.sensitive.tick(now)
    [apply] = _config_commands(hub, "pole-a")[1:]
    # stopped after the push went out, before it was recorded: found in the commands table, not sent again
    with state.engine.begin() as conn:
        conn.execute(sensitive_pushes.update().values(state="sending", command_id=None, updated_at=now))
    state.sensitive.tick(now + timedelta(seconds=10))
    assert len(_config_commands(hub, "pole-a")) == 2  # still claimed: too early to tell
    state.sensitive.tick(now + timedelta(minutes=1))
    [row] = [x for x in client.get(f"/api/sensitive-periods/{p['id']}").json()["pushes"] if x["node"] == "pole-a"]
    assert row["state"] == "sent" and row["command_id"] == apply.id and len(_config_commands(hub, "pole-a")) == 2
    # stopped before the push went out: pending again, and sent once
    with state.engine.begin() as conn:
        conn.execute(sensitive_pushes.delete())
        conn.execute(sensitive_pushes.insert().values(period_id=p["id"], node="pole-a", phase="apply", state="sending",
                                                      base_command=_config_commands(hub, "pole-a")[0].id,
                                                      updated_at=now + timedelta(minutes=1)))
    state.sensitive.tick(now + timedelta(minutes=3))
    assert len(_config_commands(hub, "pole-a")) == 3
