"""The hub's side of self-tests (issue 20): results stored as events with a history per node, one hub
node.fault for a failing pole (not one per night), the fleet view per grid with poles not tested in
3 days, and a signed selftest.run sent on request."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from edge.protocol import Command, Event, Receipt, Topics, utcnow
from hub.app import create_app
from hub.config import load_settings
from hub.ingest.writer import Incoming, Ingest
from tests.fake_transport import FakeTransport

_mid = iter(range(1, 1_000_000))


@pytest.fixture()
def hub(tmp_path: Path):
    settings = load_settings(data_dir=tmp_path, mqtt_enabled=True)
    fake = FakeTransport()
    app = create_app(settings, transport=fake)
    state = app.state.hub
    state.auth.add_user("li", "correct horse battery", "operator")
    with TestClient(app) as client:
        token = client.post("/api/login", json={"username": "li", "password": "correct horse battery"}).json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield state, state.ingest, fake, client


def feed(ingest: Ingest, *events: Event, at: Any = None) -> None:
    ingest.handle_batch([Incoming(Topics.events(e.node), e.to_bytes(), next(_mid), 1, at or utcnow()) for e in events])


def result(node: str, ok: bool, failing: tuple[str, ...] = ()) -> Event:
    checks = [{"name": n, "status": "fail", "value": -80.0, "limit": -40.0, "unit": "dBFS", "detail": "not heard"}
              for n in failing] + [{"name": "disk", "status": "pass", "value": 40.0, "limit": 90.0, "unit": "%"}]
    return Event.make(node, "selftest.result", {"ok": ok, "trigger": "schedule", "duration_s": 3.2,
                                                "checks": checks})


def test_results_history_and_one_fault_for_a_failing_pole(hub) -> None:
    state, ingest, fake, client = hub
    state.service.register_node("pole-01", grid="G1")
    feed(ingest, result("pole-01", True))
    feed(ingest, result("pole-01", False, ("audio_loop",)))
    feed(ingest, result("pole-01", False, ("audio_loop",)))  # next night, same broken speaker
    hist = client.get("/api/nodes/pole-01/selftests").json()
    assert [h["ok"] for h in hist] == [False, False, True]
    assert hist[0]["checks"][0] == {"name": "audio_loop", "status": "fail", "value": -80.0, "limit": -40.0,
                                    "unit": "dBFS", "detail": "not heard"}
    faults = [a for a in client.get("/api/alarms").json() if a["kind"] == "node.fault"]
    assert len(faults) == 1
    fault_event = [e for e in client.get("/api/events", params={"kind": "node.fault"}).json()]
    assert fault_event[0]["data"]["reason"] == "self-test failed: audio_loop"
    assert fault_event[0]["data"]["raised_by"] == "hub"
    # resolved → the next failing night raises a fresh one
    client.post(f"/api/alarms/{faults[0]['id']}/ack", json={})
    r = client.post(f"/api/alarms/{faults[0]['id']}/resolve", json={"outcome": "recovered"})
    assert r.status_code < 300, r.text
    feed(ingest, result("pole-01", False, ("button_loop",)))
    faults = [a for a in client.get("/api/alarms").json() if a["kind"] == "node.fault"]
    assert len([a for a in faults if a["state"] != "resolved"]) == 1
    assert client.get("/api/nodes").json()[0]["last_seen"] is not None


def test_the_fleet_view_counts_poles_and_doors_per_grid_and_lists_those_not_tested_in_3_days(hub) -> None:
    state, ingest, fake, client = hub
    for node, grid in (("pole-01", "G1"), ("pole-02", "G1"), ("pole-03", "G2"), ("pole-04", "G2")):
        state.service.register_node(node, grid=grid)
    for node, grid in (("door-01", "G1"), ("door-02", "G1"), ("door-03", "G3")):
        state.service.register_node(node, kind="rental_door", grid=grid)
    feed(ingest, result("pole-01", True))
    feed(ingest, result("pole-02", False, ("camera",)))
    feed(ingest, result("pole-03", True), at=utcnow() - timedelta(days=4))  # too long ago
    feed(ingest, result("door-01", False, ("reader",)))
    feed(ingest, result("door-03", True))
    view = client.get("/api/selftest/fleet").json()
    assert view["not_tested_days"] == 3
    no_doors = {"doors": 0, "doors_passing": 0, "doors_failing": 0, "doors_untested": []}
    assert view["grids"] == [
        {"grid": "G1", "poles": 2, "passing": 1, "failing": 1, "untested": [],
         "doors": 2, "doors_passing": 0, "doors_failing": 1, "doors_untested": ["door-02"]},
        {"grid": "G2", "poles": 2, "passing": 0, "failing": 0, "untested": ["pole-03", "pole-04"], **no_doors},
        {"grid": "G3", "poles": 0, "passing": 0, "failing": 0, "untested": [],
         "doors": 1, "doors_passing": 1, "doors_failing": 0, "doors_untested": []},
    ]


def test_a_probe_is_receipted_with_the_hub_clock_and_never_stored_or_alarmed(hub) -> None:
    state, ingest, fake, client = hub
    state.service.register_node("door-01", kind="rental_door", grid="G1")
    probe = Event.make("door-01", "selftest.probe", {"sent_at": utcnow().isoformat(), "grid": "G1"})
    other = Event.make("door-01", "door.granted", {"slot": 3})
    before = utcnow()
    feed(ingest, probe, other)
    feed(ingest, probe)  # a resend: receipted again, still nothing stored
    receipts = [Receipt.model_validate_json(p) for t, p in fake.published if t == Topics.receipts("door-01")]
    assert [r.ids for r in receipts] == [[str(probe.id), str(other.id)], [str(probe.id)]]
    assert all(r.hub_time is not None and before <= r.hub_time <= utcnow() for r in receipts)
    events_listed = client.get("/api/events", params={"node": "door-01"}).json()
    assert [e["kind"] for e in events_listed] == ["door.granted"]  # the probe is not in the event lists
    assert client.get("/api/alarms").json() == []
    assert client.get("/api/nodes").json()[0]["last_seen"] is not None  # a probe is hearing from the node
    # a receipt for a batch without a probe carries no hub_time (older nodes refuse unknown receipt fields)
    feed(ingest, Event.make("door-01", "door.granted", {"slot": 4}))
    last = Receipt.model_validate_json([p for t, p in fake.published if t == Topics.receipts("door-01")][-1])
    assert last.hub_time is None and b"hub_time" not in [p for t, p in fake.published
                                                         if t == Topics.receipts("door-01")][-1]


def test_a_selftest_request_sends_a_signed_command(hub) -> None:
    state, ingest, fake, client = hub
    key = state.service.register_node("pole-01", grid="G1")
    r = client.post("/api/nodes/pole-01/selftest", json={"checks": ["audio_loop"]})
    assert r.status_code == 202, r.text
    sent = [Command.model_validate_json(p) for t, p in fake.published if t == Topics.commands("pole-01")]
    assert len(sent) == 1 and sent[0].id == r.json()["command_id"]
    assert sent[0].name == "selftest.run" and sent[0].args == {"checks": ["audio_loop"]}
    assert sent[0].signature_ok(key.encode()) and sent[0].operator == "li"
    missing = client.post("/api/nodes/pole-99/selftest", json={})
    assert missing.status_code == 404 and "没有节点" in missing.json()["detail"]
    bad = client.post("/api/nodes/pole-01/selftest", json={"checks": "all"})
    assert bad.status_code == 422


def test_the_daily_report_lists_poles_and_doors_not_tested_in_3_days(hub) -> None:
    state, ingest, fake, client = hub
    for node in ("pole-01", "pole-02"):
        state.service.register_node(node, grid="G1")
    for node in ("door-01", "door-02"):
        state.service.register_node(node, kind="rental_door", grid="G1")
    feed(ingest, result("pole-01", False, ("camera",)))  # tested (failing counts as tested)
    feed(ingest, result("door-01", True))
    report = client.get("/api/reports/summary", params={"period": "today"}).json()
    assert report["selftest"] == {"not_tested": ["door-02", "pole-02"], "not_tested_days": 3}


def test_the_hub_serves_the_wiring_of_the_config_in_effect(hub) -> None:
    import xml.etree.ElementTree as ET

    import yaml
    state, ingest, fake, client = hub
    state.auth.add_user("zhao", "installer password 1", "installer")
    state.service.register_node("pole-01", grid="G1")
    none = client.get("/api/nodes/pole-01/wiring.svg")
    assert none.status_code == 404 and "pingan-edge wiring" in none.json()["detail"]
    assert client.get("/api/nodes/pole-99/wiring.svg").status_code == 404
    inst = TestClient(client.app)
    tok = inst.post("/api/login", json={"username": "zhao", "password": "installer password 1"}).json()["token"]
    inst.headers["Authorization"] = f"Bearer {tok}"
    text = yaml.safe_dump({"node": {"id": "pole-01", "kind": "alarm_post"},
                           "pins": {"button_test_drive": 5, "siren_feedback": 6}})
    fake.connected = True  # as the broker connection is up
    pushed = inst.post("/api/nodes/pole-01/config", json={"yaml": text})
    assert pushed.status_code == 202, pushed.text
    cid = pushed.json()["command_id"]
    assert client.get("/api/nodes/pole-01/wiring.svg").status_code == 404  # sent, not yet applied
    feed(ingest, Event.make("pole-01", "config.applied", {"command_id": cid, "boots": 1}))
    r = client.get("/api/nodes/pole-01/wiring.svg")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(r.text)
    labels = {t.get("data-pin"): t.text for t in root.iter("{http://www.w3.org/2000/svg}text") if t.get("data-conn")}
    assert "button test drive" in labels["29"] and "alarm button" in labels["11"]


def test_a_self_test_that_failed_only_its_uplink_probe_raises_no_fault(hub) -> None:
    """The hub was down at 03:00: every node's probe failed. The results arrive later (so the way is open
    again); that must not become one node.fault per node. Another failing check still raises one."""
    state, ingest, fake, client = hub
    state.service.register_node("door-01", kind="rental_door", grid="G1")
    feed(ingest, result("door-01", False, ("uplink",)))
    assert client.get("/api/alarms").json() == []
    assert [c["name"] for c in client.get("/api/nodes/door-01/selftests").json()[0]["checks"]
            if c["status"] == "fail"] == ["uplink"]  # kept in the history all the same
    feed(ingest, result("door-01", False, ("uplink", "reader")))
    faults = [a for a in client.get("/api/alarms").json() if a["kind"] == "node.fault"]
    assert len(faults) == 1
    assert client.get("/api/events", params={"kind": "node.fault"}).json()[0]["data"]["reason"] == \
        "self-test failed: reader"
