"""Rental doors end to end on real servers: mosquitto, ``pingan-hub serve`` and ``pingan-edge run`` door
nodes with mock pins and the in-process R30x simulator on a pty (the real driver talks to it).

Enrol at one door (two scans), the encrypted template synced to the block's other door, a finger there
opens it; remote unlock; revoke everywhere; the audit log and its CSV; a reader that answers garbage
is one clear fault and the agent keeps running; after a kill the relay comes back de-energised."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import yaml

from hub.transport.broker import Broker
from tests.conftest import NodeProc, wait_for

BLOCK_KEY = "block-b01-test-key-not-for-production"
DOOR = {"door": {"unlock_s": 3}, "reader": {"port": "sim", "timeout": 0.5}}


@pytest.fixture()
def door_factory(tmp_path, sim_dir):
    """Like conftest's door_factory, for rental_door nodes (mock pins, simulated reader on a pty)."""
    made: list[NodeProc] = []

    def make(node: str, broker_url: str, key: str | None, **overrides) -> NodeProc:
        n = NodeProc(tmp_path, node, broker_url, sim_dir, key, **overrides)
        cfg = yaml.safe_load(n.config_path.read_text())
        cfg["node"].update(kind="rental_door", place="Block 1 gate")
        n.config_path.write_text(yaml.safe_dump(cfg))
        made.append(n)
        return n.start()

    yield make
    for n in made:
        n.stop()


def register_door(hub, node: str) -> str:
    tmp = hub.data_dir.parent
    out = subprocess.run([sys.executable, "-m", "hub.cli", "nodes", "add", node, "--kind", "rental_door",
                          "--grid", "G01", "--place", "Block 1", "--out", str(tmp / "bundles"),
                          "--block-key-file", str(tmp / "block-1.key")],
                         env=hub.env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def events(hub, node: str, kind: str) -> list[dict]:
    return hub.get("/api/events", node=node, kind=kind, limit=100)


def state(node) -> dict:
    return node.control(cmd="state")["state"]


@pytest.mark.slow
def test_enrol_sync_unlock_revoke_audit(broker: Broker, hub_factory, door_factory,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINGAN_BLOCK_KEY", BLOCK_KEY)
    hub = hub_factory(broker.url)
    a_id, b_id = "door-b01-01", "door-b01-02"
    keys = {n: register_door(hub, n) for n in (a_id, b_id)}
    a = door_factory(a_id, broker.url, keys[a_id], **DOOR)
    b = door_factory(b_id, broker.url, keys[b_id], **DOOR)
    assert hub.post("/api/doors/blocks", {"id": "b01", "name": "Block 1", "units": ["101", "102"]}).status_code == 201
    for n in (a_id, b_id):
        assert hub.post("/api/doors", {"node": n, "block": "b01", "name": n}).status_code == 201
    wait_for(lambda: {n["id"] for n in hub.get("/api/nodes") if n["state"] == "online"} >= {a_id, b_id},
             message="both doors online")

    now = datetime.now(UTC)
    r = hub.post("/api/doors/tenants", {"name": "=HYPERLINK(\"x\")", "phone": "13800000000", "block": "b01",
                                        "unit": "101", "id_number": "35020319900101123X",  # GB 11643 valid
                                        "lease_start": (now - timedelta(days=1)).isoformat(),
                                        "lease_end": (now + timedelta(days=180)).isoformat()})
    assert r.status_code == 201, r.text
    tenant = r.json()
    tid = tenant["id"]
    assert tenant["id_number"].endswith("123X") and tenant["id_number"].startswith("*")

    # enrol at door A: the tenant scans the same finger twice
    r = hub.post(f"/api/doors/tenants/{tid}/enrol", {"door": a_id})
    assert r.status_code == 202 and r.json()["state"] == "pending", r.text
    wait_for(lambda: state(a)["enrol_prompt"] == "place", message="door A asks for a finger")
    a.control(cmd="finger", finger=42, hold_s=0.6)
    wait_for(lambda: (s := state(a))["enrol_steps"] >= 3 and s["enrol_prompt"] == "place",
             message="door A asks for the second scan")
    a.control(cmd="finger", finger=42, hold_s=0.6)

    def enrolled() -> list[dict] | None:
        rows = hub.get("/api/doors/enrolments", tenant=tid)
        return rows if len(rows) == 2 and all(e["state"] == "enrolled" for e in rows) else None

    rows = wait_for(enrolled, 30, 0.2, "enrolled at both doors (template synced to B)")
    by_door = {e["door"]: e for e in rows}
    assert by_door[a_id]["source"] == "scan" and by_door[b_id]["source"] == "sync"
    assert "template_enc" not in rows[0]  # the API never shows the ciphertext
    cmds = [hub.get(f"/api/doors/commands/{e['command_id']}") for e in rows]
    assert all("template_enc" not in c["args"] or c["args"]["template_enc"].startswith("(") for c in cmds)
    assert [e["tenant_id"] for e in state(b)["access"]] == [tid]

    # the finger opens door B, which never scanned it
    b.control(cmd="finger", finger=42)
    granted = wait_for(lambda: events(hub, b_id, "door.granted"), message="door.granted at B")
    assert granted[0]["data"]["tenant_id"] == tid and granted[0]["data"]["remote"] is False

    # remote unlock at A, for a named operator, audited by the door
    r = hub.post(f"/api/doors/{a_id}/unlock", {"operator": "li", "reason": "tenant lost a finger"})
    assert r.status_code == 202, r.text
    remote = wait_for(lambda: [e for e in events(hub, a_id, "door.granted") if e["data"]["remote"]],
                      message="remote door.granted at A")
    assert remote[0]["data"]["operator"] in ("li", "admin")
    assert hub.get(f"/api/doors/commands/{r.json()['command_id']}")["ok"] is True
    cmd = hub.get(f"/api/doors/commands/{r.json()['command_id']}")
    expiry = datetime.fromisoformat(cmd["expires_at"]) - datetime.fromisoformat(cmd["issued_at"])
    assert expiry <= timedelta(seconds=10)

    # revoke: every door deletes the template and the entry
    assert hub.post(f"/api/doors/tenants/{tid}/revoke", {}).status_code == 202
    wait_for(lambda: all(e["state"] == "revoked" for e in hub.get("/api/doors/enrolments", tenant=tid)),
             30, 0.2, "revoked at both doors")
    assert state(a)["access"] == [] and state(b)["access"] == []
    b.control(cmd="finger", finger=42)
    denied = wait_for(lambda: events(hub, b_id, "door.denied"), message="door.denied at B")
    assert denied[0]["data"]["reason"] == "unknown_finger"

    # the audit log: door events and staff actions, by tenant, and as a CSV a spreadsheet will not run
    log = hub.get("/api/doors/audit", tenant=tid)
    kinds = {(x["source"], x["kind"]) for x in log}
    assert {("door", "door.granted"), ("staff", "tenant.add"), ("staff", "access.enrol"),
            ("staff", "access.revoke")} <= kinds
    at_a = hub.get("/api/doors/audit", door=a_id)
    assert any(x["kind"] == "door.unlock" and x["source"] == "staff" for x in at_a)
    r = httpx.get(f"{hub.url}/api/doors/audit.csv", params={"tenant": tid}, headers=hub.headers, timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    names = {row["tenant"] for row in table if row["tenant"]}
    assert names == {"'=HYPERLINK(\"x\")"}

    # a reader answering garbage: one clear node.fault, the agent keeps running and recovers
    a.control(cmd="reader", garbage=True, wait_s=1.0)
    fault = wait_for(lambda: [e for e in events(hub, a_id, "node.fault") if e["data"].get("fault") == "reader"],
                     message="reader fault at the hub")
    assert "garbage" in fault[0]["data"]["detail"] and a.alive()
    a.control(cmd="reader", garbage=False, wait_s=1.0)
    assert state(a)["reader"] == "ok" and a.alive()
    assert len([e for e in events(hub, a_id, "node.fault") if e["data"].get("fault") == "reader"]) == 1


def test_relay_is_de_energised_after_a_kill(broker: Broker, door_factory) -> None:
    door = door_factory("door-b02-01", broker.url, None, **{**DOOR, "door": {"unlock_s": 60}})
    st = door.control(cmd="exit")["state"]
    assert st["relay"] == "energised" and st["lock"] == "released"  # fail_secure: released = powered
    door.kill()
    door.start()
    st = state(door)
    assert st["relay"] == "de-energised" and st["lock"] == "locked"


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, timeout=60,
                          env=env)


def test_sim_cli_acts_on_a_door(broker: Broker, door_factory) -> None:
    door = door_factory("door-b03-01", broker.url, None, **DOOR)
    sock = str(door.socket)
    out = _cli("sim", "door", "door-b03-01", "open", "--socket", sock)
    assert out.returncode == 0 and "door open, lock locked" in out.stdout, out
    assert _cli("sim", "door", "door-b03-01", "close", "--socket", sock).returncode == 0
    out = _cli("sim", "finger", "door-b03-01", "unknown", "--socket", sock)
    assert out.returncode == 0 and "denials 1" in out.stdout, out
    out = _cli("sim", "fire", "door-b03-01", "on", "--socket", sock)
    assert "lock released" in out.stdout
    out = _cli("sim", "finger", "door-b03-01", "seven", "--socket", sock)
    assert out.returncode == 2 and out.stderr.startswith("error: ")
    events = door.outbox_ids()
    assert len(events) >= 3  # door.forced, door.denied, door.fire_release (no hub here to take them)


def test_several_doors_in_one_process(tmp_path, sim_dir) -> None:
    """The demo's way: one process, several complete door agents; SIGTERM stops them all, relays off."""
    import os
    import signal as sig

    from hub.transport.broker import free_port

    paths = []
    for n in ("door-b04-01", "door-b04-02"):
        cfg = {"node": {"id": n, "kind": "rental_door"}, "mqtt": {"url": f"mqtt://127.0.0.1:{free_port()}"},
               "pins": {"factory": "mock"}, "door": {"unlock_s": 60}, "reader": {"port": "sim"},
               "key_env": f"KEY_{n.replace('-', '_').upper()}", "data_dir": str(tmp_path / n)}
        (tmp_path / f"{n}.yaml").write_text(yaml.safe_dump(cfg))
        paths.append(str(tmp_path / f"{n}.yaml"))
    env = {**os.environ, "PINGAN_SIM_DIR": str(sim_dir), "GPIOZERO_PIN_FACTORY": "mock"}
    log = open(tmp_path / "multi.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "edge.sim.multi", *paths], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        from edge.sim.control import send_control

        socks = [sim_dir / "door-b04-01.sock", sim_dir / "door-b04-02.sock"]
        wait_for(lambda: all(s.exists() for s in socks), 30, message="both control sockets")
        a = send_control(socks[0], {"cmd": "exit"})["state"]
        b = send_control(socks[1], {"cmd": "state"})["state"]
        assert a["lock"] == "released" and b["lock"] == "locked" and a["node"] != b["node"]
        proc.send_signal(sig.SIGTERM)
        assert proc.wait(15) == 0
        assert not any(s.exists() for s in socks)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


@pytest.mark.slow
def test_lease_ends_at_the_door_while_the_network_is_down(broker: Broker, hub_factory, door_factory,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINGAN_BLOCK_KEY", BLOCK_KEY)
    hub = hub_factory(broker.url)
    node = "door-b05-01"
    door = door_factory(node, broker.url, register_door(hub, node), **DOOR)
    hub.post("/api/doors/blocks", {"id": "b05"})
    hub.post("/api/doors", {"node": node, "block": "b05"})
    hub.wait_online(node)
    now = datetime.now(UTC)
    lease_end = now + timedelta(seconds=20)
    tid = hub.post("/api/doors/tenants", {"name": "Short Stay", "phone": "13800000009", "block": "b05",
                                          "lease_start": (now - timedelta(days=1)).isoformat(),
                                          "lease_end": lease_end.isoformat()}).json()["id"]
    hub.post(f"/api/doors/tenants/{tid}/enrol", {"door": node})
    wait_for(lambda: state(door)["enrol_prompt"] == "place", message="asks for a finger")
    door.control(cmd="finger", finger=7, hold_s=0.6)
    wait_for(lambda: (s := state(door))["enrol_steps"] >= 3 and s["enrol_prompt"] == "place", message="2nd scan")
    door.control(cmd="finger", finger=7, hold_s=0.6)
    wait_for(lambda: state(door)["access"], message="enrolled at the door")
    assert door.control(cmd="finger", finger=7)["state"]["grants"] == 1

    broker.stop()  # the network is down from here on
    wait_for(lambda: datetime.now(UTC) > lease_end + timedelta(seconds=0.5), 30, 0.2, "the lease's end")
    st = door.control(cmd="finger", finger=7)["state"]
    assert st["grants"] == 1 and st["denials"] == 1 and st["lock"] == "locked"
    assert door.outbox_ids()  # the denial waits in the outbox for the hub

    broker.start()
    denied = wait_for(lambda: events(hub, node, "door.denied"), 60, 0.2, "the denial reaches the hub")
    assert denied[0]["data"]["reason"] == "expired" and denied[0]["data"]["tenant_id"] == tid
