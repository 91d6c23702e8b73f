"""The demo street: broker, hub, simulated alarm poles and rental-block doors as separate processes.

Every part is the real program (mosquitto or amqtt, ``pingan-hub serve``, ``pingan-edge run``);
only the pins (gpiozero MockFactory), the camera (synthetic) and the fingerprint readers (the R30x
simulator on a pty, inside each door's process) are simulated.

Doors: by default 100 doors in 10 blocks (``PINGAN_DEMO_DOORS`` / ``PINGAN_DEMO_BLOCKS`` or the
``doors``/``blocks`` arguments choose fewer). A door agent process costs ~50 MB, so 100 of them would
not fit a 2-core laptop: each block's doors share one process (``python -m edge.sim.multi``), each
still a complete agent with its own MQTT session, outbox, keys and control socket.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from edge.errors import PinganError
from hub.transport.broker import Broker, find_mosquitto

# The seeds' street: 20 poles in crowded, troubled places (names are illustrative).
PLACES = [
    "Market east gate", "Bus terminus", "Night market lane", "Hospital side gate", "Station square",
    "School crossing", "Wholesale market", "Urban village entrance", "Riverside walk", "Ferry pier",
    "Old town lane", "Metro exit B", "Park north gate", "Rental block alley", "Food street",
    "Hotel row", "Underpass", "Shopping plaza", "Night bus stop", "Community square",
]
BASE_LAT, BASE_LON = 24.4872, 118.1121


def pole_id(i: int) -> str:
    return f"pole-{i:02d}"


def node_config(node: str, i: int, broker_url: str, data_dir: Path) -> dict:
    return {
        "node": {"id": node, "kind": "alarm_post", "place": PLACES[(i - 1) % len(PLACES)],
                 "grid": f"G{((i - 1) % 44) + 1:02d}",
                 "location": {"lat": round(BASE_LAT + 0.002 * ((i - 1) % 5), 5),
                              "lon": round(BASE_LON + 0.003 * ((i - 1) // 5), 5)}},
        "mqtt": {"url": broker_url},
        "pins": {"factory": "mock"},
        "camera": {"source": "synthetic"},
        "data_dir": str(data_dir),
    }


def door_id(block: int, n: int) -> str:
    return f"door-b{block:02d}-{n:02d}"


def _env_name(prefix: str, ident: str) -> str:
    return f"{prefix}_{ident.upper().replace('-', '_')}"


def door_config(node: str, block: int, broker_url: str, data_dir: Path) -> dict:
    return {
        "node": {"id": node, "kind": "rental_door", "place": f"Rental block {block}, door {node[-2:]}",
                 "grid": f"G{block:02d}"},
        "mqtt": {"url": broker_url},
        "pins": {"factory": "mock"},
        "door": {"block_key_env": _env_name("PINGAN_BLOCK_KEY", f"b{block:02d}")},
        "reader": {"port": "sim", "poll_s": 0.2},
        "key_env": _env_name("PINGAN_NODE_KEY", node),
        "heartbeat_s": 15,
        "data_dir": str(data_dir),
    }


def split_doors(doors: int, blocks: int) -> list[list[str]]:
    """Door ids per block, as evenly as they go."""
    blocks = max(1, min(blocks, doors)) if doors else 0
    out: list[list[str]] = []
    for b in range(1, blocks + 1):
        count = doors // blocks + (1 if b <= doors % blocks else 0)
        out.append([door_id(b, n) for n in range(1, count + 1)])
    return out


def _wait_http(url: str, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PinganError(f"the hub exited at start (code {proc.returncode}); see its log above")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise PinganError(f"the hub did not answer {url} within {timeout:.0f} s")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(poles: int, port: int, workdir: Path, keep: bool = False, doors: int | None = None,
             blocks: int | None = None) -> None:
    doors = int(os.environ.get("PINGAN_DEMO_DOORS", 100)) if doors is None else doors
    blocks = int(os.environ.get("PINGAN_DEMO_BLOCKS", 10)) if blocks is None else blocks
    block_doors = split_doors(doors, blocks)
    # SIGTERM/SIGHUP must stop the children too, not only Ctrl-C
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    workdir = workdir.resolve()
    if workdir.exists() and not keep:
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    broker: Broker | None = None
    bin_dir = Path(sys.executable).parent
    try:
        if find_mosquitto() is None:
            print("note: mosquitto is not installed; using the embedded amqtt broker (MQTT 3.1.1). "
                  "Production uses mosquitto (apt-get install mosquitto).")
        broker = Broker(workdir / "broker").start()
        print(f"[1/3] broker: {broker.kind} on {broker.url}")

        env = {**os.environ, "PINGAN_MQTT_URL": broker.url, "PINGAN_DATA_DIR": str(workdir / "hub"),
               "PINGAN_HTTP_PORT": str(port), "PINGAN_HTTP_HOST": "127.0.0.1",
               "PINGAN_OFFLINE_GRACE_S": "30"}
        from hub.app import HubState
        from hub.config import load_settings

        state = HubState(load_settings(mqtt_enabled=False, data_dir=workdir / "hub"))
        keys: dict[str, str] = {}
        for i in range(1, poles + 1):
            cfg = node_config(pole_id(i), i, broker.url, workdir / "nodes" / pole_id(i))
            keys[pole_id(i)] = state.service.register_node(
                pole_id(i), kind="alarm_post", place=cfg["node"]["place"], grid=cfg["node"]["grid"],
                lat=cfg["node"]["location"]["lat"], lon=cfg["node"]["location"]["lon"], actor="demo")
        block_keys = {f"b{b:02d}": secrets.token_urlsafe(32) for b in range(1, len(block_doors) + 1)}
        for b, ids in enumerate(block_doors, start=1):
            state.doors.add_block(f"b{b:02d}", name=f"Rental block {b}", grid=f"G{b:02d}",
                                  units_=[f"{floor}{room:02d}" for floor in range(1, 7) for room in range(1, 5)],
                                  actor="demo")
            for node in ids:
                cfg = door_config(node, b, broker.url, workdir / "nodes" / node)
                keys[node] = state.service.register_node(node, kind="rental_door", place=cfg["node"]["place"],
                                                          grid=cfg["node"]["grid"], actor="demo")
                state.doors.add_door(node, f"b{b:02d}", name=cfg["node"]["place"], actor="demo")
        login = ("demo", secrets.token_urlsafe(9))
        try:
            from hub.auth.service import Auth

            Auth(state.engine).add_user(*login, "admin", actor="demo", replace=True)
        except ImportError:  # a build without staff login
            login = ("", "")
        state.engine.dispose()

        hub_log = open(workdir / "hub.log", "ab")
        procs.append(subprocess.Popen([sys.executable, "-m", "hub.cli", "serve", "--exact-port"],
                                      env=env, stdout=hub_log, stderr=subprocess.STDOUT,
                                      start_new_session=True))
        console = f"http://127.0.0.1:{port}"
        _wait_http(f"{console}/api/health", 60, procs[0])
        print(f"[2/3] hub: {console}  (log: {workdir / 'hub.log'})")

        node_env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock"}
        node_env.pop("PINGAN_SIM_DIR", None)
        for i in range(1, poles + 1):
            node = pole_id(i)
            cfg_path = workdir / "nodes" / f"{node}.yaml"
            cfg_path.parent.mkdir(parents=True, exist_ok=True)
            cfg_path.write_text(yaml.safe_dump(node_config(node, i, broker.url, workdir / "nodes" / node)))
            log = open(workdir / "nodes" / f"{node}.log", "ab")
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "edge.cli", "run", str(cfg_path)],
                env={**node_env, "PINGAN_NODE_KEY": keys[node]}, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True))
            print(f"\r[3/3] nodes: started {i}/{poles}", end="", flush=True)
        print()
        door_env = {**node_env, **{_env_name("PINGAN_BLOCK_KEY", b): k for b, k in block_keys.items()}}
        for b, ids in enumerate(block_doors, start=1):
            paths = []
            for node in ids:
                cfg_path = workdir / "nodes" / f"{node}.yaml"
                cfg_path.write_text(yaml.safe_dump(door_config(node, b, broker.url, workdir / "nodes" / node)))
                door_env[_env_name("PINGAN_NODE_KEY", node)] = keys[node]
                paths.append(str(cfg_path))
            log = open(workdir / "nodes" / f"block-b{b:02d}.log", "ab")
            procs.append(subprocess.Popen([sys.executable, "-m", "edge.sim.multi", *paths], env=door_env,
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            print(f"\r[3/3] doors: started block {b}/{len(block_doors)} ({sum(map(len, block_doors[:b]))} doors)",
                  end="", flush=True)
        if block_doors:
            print()
        _wait_nodes_online(console, poles + doors, timeout=180, login=login)
        edge = bin_dir / "pingan-edge"
        print(f"""
Pingan demo street is up.
  console   {console}/          API docs {console}/docs
  alarms    {console}/api/alarms   live: ws://127.0.0.1:{port}/api/live
  press a button:   {edge} sim press pole-07
  open a cabinet:   {edge} sim tamper pole-03
  doors:            {doors} rental doors in {len(block_doors)} blocks, one process per block
                    (a door agent costs ~50 MB: a process per door would not fit a 2-core laptop)
  touch a reader:   {edge} sim finger door-b01-01 unknown        (5 in a row: door.lockout)
  force a door:     {edge} sim door door-b01-02 open
  enrol a tenant:   POST {console}/api/doors/tenants, then POST .../tenants/<id>/enrol {{"door": "door-b01-01"}}
                    and touch twice: {edge} sim finger door-b01-01 42
  login:            {login[0] or '(none in this build)'} / {login[1]}
  API token:        TOKEN=$(curl -s {console}/api/login -H 'Content-Type: application/json' \\
                      -d '{{"username": "{login[0]}", "password": "{login[1]}"}}' \\
                      | sed -E 's/.*"token": ?"([^"]+)".*/\\1/')
  list alarms:      curl -s {console}/api/alarms -H "Authorization: Bearer $TOKEN"
  acknowledge:      curl -X POST {console}/api/alarms/<id>/ack -H "Authorization: Bearer $TOKEN" \\
                      -H 'Content-Type: application/json' -d '{{}}'
  (the hub listens on 127.0.0.1 only)
Ctrl-C stops everything this demo started.""", flush=True)
        while all(p.poll() is None for p in procs[:1]):
            time.sleep(0.5)
        print("the hub exited; stopping the demo", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nstopping the demo ...")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
        if broker:
            broker.stop()
        print("demo stopped.")


def _login(console: str, username: str, password: str) -> str | None:
    req = urllib.request.Request(f"{console}/api/login", data=json.dumps(
        {"username": username, "password": password}).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return json.load(r).get("token")
    except OSError:
        return None


def _wait_nodes_online(console: str, expected: int, timeout: float, login: tuple[str, str] = ("", "")) -> None:
    deadline = time.monotonic() + timeout
    online = 0
    token = None
    while time.monotonic() < deadline:
        if login[0] and token is None:  # the hub may be too busy to answer while the nodes start: retry
            token = _login(console, *login)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            req = urllib.request.Request(f"{console}/api/nodes", headers=headers)
            with urllib.request.urlopen(req, timeout=2) as r:
                online = sum(1 for n in json.load(r) if n["state"] == "online")
        except OSError:
            pass
        print(f"\r      nodes online: {online}/{expected}", end="", flush=True)
        if online >= expected:
            break
        time.sleep(0.5)
    print()
