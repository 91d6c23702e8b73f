"""The console's new routes against a real app and SQLite file: the map (tile source, grid boundaries from
GeoJSON, the CSP that lets the tiles in), the history search, staff accounts and the audit log."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.config import load_settings
from hub.errors import SettingsError
from hub.store.schema import alarms, clips, events, snapshots

ROOT = Path(__file__).resolve().parents[2]
SQUARE = [[[118.10, 24.47], [118.12, 24.47], [118.12, 24.49], [118.10, 24.49], [118.10, 24.47]]]


def grids_file(path: Path, features: list[dict]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False), "utf-8")
    return path


def grid(name: str, coords=SQUARE, kind: str = "Polygon", key: str = "name") -> dict:
    return {"type": "Feature", "properties": {key: name}, "geometry": {"type": kind, "coordinates": coords}}


def login(client: TestClient, user: str, password: str) -> None:
    token = client.post("/api/login", json={"username": user, "password": password}).json()["token"]
    client.headers["Authorization"] = f"Bearer {token}"
    client.cookies.clear()


@pytest.fixture()
def hub(tmp_path: Path):
    def make(**settings):
        app = create_app(load_settings(data_dir=tmp_path, mqtt_enabled=False, **settings))
        state = app.state.hub
        if "boss" not in {u["username"] for u in state.auth.list_users()}:
            state.auth.add_user("boss", "admin-pass-1", "admin")
            state.auth.add_user("wang", "operator-pass-1", "operator")
        return app, state
    return make


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], capture_output=True, text=True, timeout=120,
                          env={"PINGAN_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_grids_import_from_the_cli_draws_them_and_a_bad_file_stores_nothing(hub, tmp_path: Path) -> None:
    good = grids_file(tmp_path / "grids.geojson", [grid("G01"), grid("G02", [SQUARE], "MultiPolygon", "code")])
    r = cli(tmp_path, "grids", "import", str(good))
    assert r.returncode == 0, r.stderr
    assert "imported 2 grids" in r.stdout and "已导入 2 个网格" in r.stdout
    bad = grids_file(tmp_path / "bad.geojson", [
        grid("G03"), grid("G04", [[[118.1, 24.4], [118.2, 24.4], [118.1, 24.4]]]),  # too few positions
        grid("G05", [[[12_000_000, 2_800_000], [1, 1], [2, 2], [12_000_000, 2_800_000]]]),  # projected metres
        grid("G03"), {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [1, 2]}}])
    r = cli(tmp_path, "grids", "import", str(bad))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    for said in ("nothing imported", "未导入任何网格", "feature 2 (G04)", "at least 4 positions",
                 "feature 3 (G05)", "outside lon/lat", "feature 4 (G03): the same grid twice",
                 "feature 5: no grid name", "Polygon or MultiPolygon"):
        assert said in r.stderr, (said, r.stderr)
    for text, said in [("{not json", "not JSON"), ('{"type": "Feature"}', "not a GeoJSON FeatureCollection")]:
        (tmp_path / "x.geojson").write_text(text)
        r = cli(tmp_path, "grids", "import", str(tmp_path / "x.geojson"))
        assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr
    r = cli(tmp_path, "grids", "import", str(tmp_path / "missing.geojson"))
    assert r.returncode == 2 and "cannot read" in r.stderr
    app, _ = hub()
    with TestClient(app) as client:
        login(client, "wang", "operator-pass-1")
        body = client.get("/api/map").json()
    assert body["tiles"] is None  # the default: no base layer, grids and nodes only
    assert [f["properties"]["name"] for f in body["grids"]["features"]] == ["G01", "G02"]  # the good file's


def test_the_tile_source_is_a_setting_and_the_csp_lets_only_it_in(hub) -> None:
    app, _ = hub(map_tiles="tianditu", map_tianditu_key="0123456789abcdef")
    with TestClient(app) as client:
        login(client, "wang", "operator-pass-1")
        r = client.get("/api/map")
    layers = r.json()["tiles"]["layers"]
    assert len(layers) == 2 and all("tianditu.gov.cn" in u and "tk=0123456789abcdef" in u for u in layers)
    assert "img-src 'self' https://t0.tianditu.gov.cn" in r.headers["content-security-policy"]
    app, _ = hub(map_tiles="http://tiles.lan:8080/{z}/{x}/{y}.png")
    with TestClient(app) as client:
        login(client, "wang", "operator-pass-1")
        r = client.get("/api/map")
    assert r.json()["tiles"]["layers"] == ["http://tiles.lan:8080/{z}/{x}/{y}.png"]
    assert "img-src 'self' http://tiles.lan:8080;" in r.headers["content-security-policy"]
    app, _ = hub()
    with TestClient(app) as client:
        assert "img-src 'self';" in client.get("/").headers["content-security-policy"]
    with pytest.raises(SettingsError, match="PINGAN_MAP_TIANDITU_KEY"):
        load_settings(map_tiles="tianditu")
    with pytest.raises(SettingsError, match=r"\{z\}, \{x\} and \{y\}"):
        load_settings(map_tiles="ftp://tiles.lan/tiles")


def _seed_history(state) -> tuple[str, str]:
    now = datetime.now(UTC)
    state.service.register_node("pole-01", grid="G01", place="Market")
    state.service.register_node("pole-02", grid="G02", place="School")
    ids = []
    with state.engine.begin() as conn:
        for i, (node, kind, age_days) in enumerate([("pole-01", "alarm.pressed", 0), ("pole-02", "door.forced", 3),
                                                    ("pole-01", "alarm.pressed", 10)]):
            aid = str(uuid.uuid4())
            at = now - timedelta(days=age_days)
            conn.execute(alarms.insert().values(id=aid, node=node, kind=kind, state="resolved", count=1, node_ts=at,
                                                raised_at=at, resolved_at=at, resolved_by="wang", outcome="assisted"))
            conn.execute(events.insert().values(id=aid, node=node, kind=kind, ts=at, received_at=at, data={},
                                                snapshot=i == 0))
            ids.append(aid)
        conn.execute(snapshots.insert().values(event_id=ids[0], node="pole-01", jpeg=b"\xff\xd8", received_at=now))
        for n in range(3):
            conn.execute(clips.insert().values(event_id=ids[0], n=n, node="pole-01", jpeg=b"\xff\xd8", received_at=now))
        conn.execute(alarms.insert().values(id=str(uuid.uuid4()), node="pole-01", kind="alarm.pressed", state="open",
                                            count=1, node_ts=now, raised_at=now))
    return ids[0], ids[2]


def test_history_finds_closed_alarms_and_events_by_node_kind_grid_and_time(hub) -> None:
    app, state = hub()
    recent, old = _seed_history(state)
    with TestClient(app) as client:
        login(client, "wang", "operator-pass-1")
        page = client.get("/api/history/alarms").json()
        assert page["total"] == 3  # the open one is not history
        first = page["items"][0]
        assert first["id"] == recent and first["snapshots"] == 1 and first["clip_frames"] == 3
        assert client.get("/api/history/alarms", params={"grid": "G02"}).json()["items"][0]["kind"] == "door.forced"
        by_node = client.get("/api/history/alarms", params={"node": "pole-01", "kind": "alarm.pressed"}).json()
        assert by_node["total"] == 2
        since = (datetime.now(UTC) - timedelta(days=5)).isoformat()
        assert client.get("/api/history/alarms", params={"since": since}).json()["total"] == 2
        until = (datetime.now(UTC) - timedelta(days=5)).isoformat()
        assert [a["id"] for a in client.get("/api/history/alarms", params={"until": until}).json()["items"]] == [old]
        paged = client.get("/api/history/alarms", params={"limit": 1, "offset": 1}).json()
        assert paged["total"] == 3 and len(paged["items"]) == 1
        assert client.get("/api/history/events", params={"grid": "G01"}).json()["total"] == 2
        assert client.get("/api/history/alarms", params={"since": "yesterday"}).status_code == 422
        assert client.get("/api/history/alarms", params={"limit": 0}).status_code == 422


def test_admins_manage_staff_and_read_the_audit_log(hub) -> None:
    app, _ = hub()
    with TestClient(app) as client:
        login(client, "wang", "operator-pass-1")
        assert client.post("/api/users", json={"username": "li", "role": "operator",
                                               "password": "pass-pass-1"}).status_code == 403
        assert client.get("/api/audit").status_code == 403
        login(client, "boss", "admin-pass-1")
        assert client.post("/api/users", json={"username": "li", "role": "operator", "password": "pass-pass-1"}
                           ).status_code == 201
        r = client.post("/api/users", json={"username": "li", "role": "operator", "password": "pass-pass-1"})
        assert r.status_code == 409 and "已存在" in r.json()["detail"]
        assert client.post("/api/users", json={"username": "zh", "role": "chief", "password": "pass-pass-1"}
                           ).status_code == 422
        assert client.post("/api/users", json={"username": "zh", "role": "admin", "password": "short"}
                           ).status_code == 422
        with TestClient(app) as other:  # li logs in; a new role ends the session (it carried the old role)
            login(other, "li", "pass-pass-1")
            assert other.get("/api/me").json()["role"] == "operator"
            assert client.post("/api/users/li", json={"role": "installer"}).json()["role"] == "installer"
            assert other.get("/api/me").status_code == 401
        r = client.post("/api/users/li", json={"password": "new-pass-22"})
        assert r.status_code == 200 and r.json()["role"] == "installer"
        assert client.post("/api/login", json={"username": "li", "password": "pass-pass-1"}).status_code == 401
        assert client.post("/api/users/li", json={"disabled": True}).json()["disabled"] is True
        assert client.post("/api/users/li", json={"password": "newer-pass-3"}).json()["disabled"] is True  # stays off
        assert client.post("/api/login", json={"username": "li", "password": "newer-pass-3"}).status_code == 401
        r = client.post("/api/users/boss", json={"disabled": True})
        assert r.status_code == 409 and "不能停用" in r.json()["detail"]
        assert client.post("/api/users/nobody", json={"disabled": True}).status_code == 404
        log = client.get("/api/audit", params={"target": "li"}).json()
        assert [a["action"] for a in log["items"]] == ["user.password", "user.disable", "user.password",
                                                           "user.role", "user.add"]
        assert all(a["actor"] == "boss" for a in log["items"])
        assert client.get("/api/audit", params={"action": "user.", "actor": "boss", "limit": 2}).json()["total"] == 5
        csv = client.get("/api/audit.csv", params={"target": "li", "action": "user.disable"})
        assert csv.headers["content-type"].startswith("text/csv")
        lines = csv.text.lstrip("\ufeff").splitlines()
        assert lines[0] == "at,actor,action,target,detail" and len(lines) == 2 and ",boss,user.disable,li," in lines[1]


def test_a_node_is_added_from_the_console_with_its_bundle_and_removed(hub) -> None:
    import io
    import tarfile

    import yaml

    app, state = hub()
    pole = {"id": "pole-77", "kind": "alarm_post", "grid": "G07", "place": "北门", "lat": 24.48, "lon": 118.11,
            "broker_url": "mqtts://hub.district.lan:8883"}
    with TestClient(app) as client:
        login(client, "wang", "operator-pass-1")
        assert client.post("/api/nodes", json=pole).status_code == 403  # installers and admins only
        login(client, "boss", "admin-pass-1")
        for bad, said in [({"broker_url": "mqtt://hub.district.lan:1883"}, "mqtts://"),
                          ({"broker_url": "hub.district.lan"}, "mqtts://HOST"),
                          ({"lon": None}, "both lat and lon"), ({"id": "../etc"}, "node id"),
                          ({"kind": "rental_door"}, "block's key")]:
            r = client.post("/api/nodes", json={**pole, **bad})
            assert r.status_code == 422 and said in r.text, (bad, r.text)
        assert not [n for n in state.service.list_nodes() if n["id"] == "pole-77"]  # nothing made by a refusal
        r = client.post("/api/nodes", json=pole)
        assert r.status_code == 201 and r.headers["content-type"] == "application/gzip"
        assert "broker config" in r.headers["x-pingan-note"] and r.headers["cache-control"] == "no-store"
        with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
            names = tar.getnames()
            config = yaml.safe_load(tar.extractfile("pole-77/node.yaml").read())
        assert {"pole-77/node.yaml", "pole-77/credentials/node-key", "pole-77/credentials/mqtt-password"} <= set(names)
        assert config["node"]["location"] == {"lat": 24.48, "lon": 118.11}
        assert config["mqtt"]["url"] == "mqtts://hub.district.lan:8883"
        assert client.post("/api/nodes", json=pole).status_code == 409
        assert not (state.settings.data_dir / "bundles").exists()  # the secrets were not kept on the hub
        r = client.delete("/api/nodes/pole-77")
        assert r.status_code == 200 and r.json()["state"] == "removed"
        assert [n["state"] for n in state.service.list_nodes() if n["id"] == "pole-77"] == ["removed"]
        assert client.delete("/api/nodes/pole-nope").status_code == 404
        log = client.get("/api/audit", params={"target": "pole-77"}).json()["items"]
        assert "node.remove" in [a["action"] for a in log] and all(a["actor"] == "boss" for a in log
                                                                      if a["action"] == "node.remove")


def test_a_node_added_from_the_console_trusts_the_hubs_broker_and_may_log_in_with_a_certificate(
        hub, tmp_path: Path) -> None:
    """With PINGAN_BROKER_DIR (the folder of `pingan-hub broker config`): every bundle carries the broker's ca.crt
    (a node added in the console trusted only the system's CAs, so it could not reach the hub's own TLS
    listener), and ``auth: cert`` gives the node a client certificate from that CA and no password. Without the
    folder, a certificate is refused in both languages and nothing is made."""
    import io
    import tarfile

    import yaml
    from cryptography import x509

    from hub.nodes.pki import ensure_ca

    pole = {"id": "pole-78", "kind": "alarm_post", "broker_url": "mqtts://hub.district.lan:8884", "auth": "cert"}
    app, state = hub()
    with TestClient(app) as client:
        login(client, "boss", "admin-pass-1")
        r = client.post("/api/nodes", json=pole)
        assert r.status_code == 422 and "PINGAN_BROKER_DIR" in r.text and "客户端证书需要中心的 CA" in r.text
        assert not [n for n in state.service.list_nodes() if n["id"] == "pole-78"]
    broker_dir = tmp_path / "broker"
    ensure_ca(broker_dir)
    ca_crt = broker_dir / "ca.crt"
    app, state = hub(broker_dir=broker_dir)
    with TestClient(app) as client:
        login(client, "boss", "admin-pass-1")
        r = client.post("/api/nodes", json={**pole, "broker_url": "mqtt://127.0.0.1:1883"})
        assert r.status_code == 422 and "mqtts://" in r.text
        r = client.post("/api/nodes", json=pole)
        assert r.status_code == 201, r.text
        with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
            files = {name.split("/", 1)[1]: tar.extractfile(name).read() for name in tar.getnames()}
        config = yaml.safe_load(files["node.yaml"])
        assert files["ca.crt"] == ca_crt.read_bytes()
        assert config["mqtt"]["ca_file"] == "/etc/pingan/ca.crt"
        assert config["mqtt"]["client_cert"] == "/etc/pingan/mqtt-client.crt"
        assert "credentials/mqtt-password" not in files and "credentials/mqtt-client-key" in files
        cert = x509.load_pem_x509_certificate(files["mqtt-client.crt"])
        ca = x509.load_pem_x509_certificate(ca_crt.read_bytes())
        assert cert.issuer == ca.subject and "pole-78" in cert.subject.rfc4514_string()
        # a password node gets the CA too
        r = client.post("/api/nodes", json={**pole, "id": "pole-79", "auth": "password"})
        with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
            names = {name.split("/", 1)[1] for name in tar.getnames()}
        assert {"ca.crt", "credentials/mqtt-password"} <= names and "mqtt-client.crt" not in names
