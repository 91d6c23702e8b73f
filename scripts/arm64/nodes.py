"""Real nodes for the arm64 check (scripts/arm64-check.sh), run inside the arm64 chroot.

    nodes.py door --broker URL   a door (pingan[door] venv) whose reader is the R30x simulator in its own
                                 process on a pty (``pingan-edge sim reader``): it comes online at the
                                 broker, and an unknown finger put on the simulator's glass is refused
                                 and its door.denied event arrives at the broker.
    nodes.py pole --broker URL   a pole (pingan[pole] venv) on mock pins: ``pingan-edge sim press`` presses
                                 its button, and alarm.pressed plus its JPEG snapshot arrive at the broker.
    nodes.py onnx                onnxruntime makes a session and runs it (it segfaulted on the host's
                                 cpuinfo under qemu; the check bind-mounts a Cortex-A72 one).

Only the node's command line (``pingan-edge run/sim``) and the topic layout are used, never edge's
internals, so moving modules inside edge/ does not break this. The broker is watched with paho (a core
dependency, so it is in both venvs) subscribed to everything: a message is recognised by its JSON
``kind`` and ``node``, not by a topic spelled here.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import yaml

BIN = Path(sys.executable).parent
TIMEOUT = 120.0  # emulated Python starts slowly: a node's first start takes ~10-20 s under qemu


class Watcher:
    """Every message on the broker, as (topic, payload), in a queue."""

    def __init__(self, url: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        u = urlparse(url)
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.seen: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"arm64-check-{os.getpid()}")
        self.client.on_connect = lambda c, *_: c.subscribe("#", qos=1)
        self.client.on_message = lambda c, u_, m: self.messages.put((m.topic, m.payload))
        self.client.connect(u.hostname or "127.0.0.1", u.port or 1883)
        self.client.loop_start()

    def wait(self, what: str, match, timeout: float = TIMEOUT, alive=None) -> tuple[str, bytes]:
        deadline = time.monotonic() + timeout
        for topic, payload in self.seen:
            if match(topic, payload):
                return topic, payload
        while time.monotonic() < deadline:
            if alive is not None:
                alive()
            try:
                topic, payload = self.messages.get(timeout=0.5)
            except queue.Empty:
                continue
            self.seen.append((topic, payload))
            if match(topic, payload):
                return topic, payload
        raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}; the broker saw: "
                         f"{sorted({t for t, _ in self.seen})}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def as_json(payload: bytes) -> dict:
    try:
        value = json.loads(payload)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def event(node: str, kind: str):
    return lambda topic, payload: node in topic and as_json(payload).get("kind") == kind


def online(node: str):
    return lambda topic, payload: (node in topic and topic.endswith("/status")
                                   and as_json(payload).get("state") == "online")


class Node:
    """``pingan-edge run`` on a generated config with mock pins, its output in a log file."""

    def __init__(self, tmp: Path, cfg: dict, env: dict[str, str]) -> None:
        self.node = cfg["node"]["id"]
        self.config = tmp / f"{self.node}.yaml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.log = tmp / f"{self.node}.log"
        self.env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PINGAN_SIM_DIR": str(tmp / "sim"), **env}
        (tmp / "sim").mkdir(exist_ok=True)
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen([str(BIN / "pingan-edge"), "run", str(self.config)], env=self.env,
                                         stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise SystemExit(f"{self.node} exited with {self.proc.returncode}:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def sim(self, *args: str) -> str:
        out = subprocess.run([str(BIN / "pingan-edge"), "sim", *args], env=self.env, capture_output=True,
                             text=True, timeout=TIMEOUT)
        if out.returncode:
            raise SystemExit(f"pingan-edge sim {' '.join(args)} failed: {out.stderr}\n{self.output()}")
        return out.stdout.strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def base_config(node: str, kind: str, broker: str, tmp: Path) -> dict:
    return {
        "node": {"id": node, "kind": kind, "place": "arm64 check", "grid": "G01",
                 "location": {"lat": 24.48, "lon": 118.11}},
        "mqtt": {"url": broker},
        "pins": {"factory": "mock"},
        "data_dir": str(tmp / node),
        "heartbeat_s": 5,
    }


def check_door(broker: str, tmp: Path) -> None:
    # the reader simulator in its own process, as on a bench: it prints its pty first, then obeys stdin
    reader = subprocess.Popen([str(BIN / "pingan-edge"), "sim", "reader", "--enrolled", "1"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, bufsize=1, start_new_session=True)
    assert reader.stdin is not None and reader.stdout is not None
    pty = reader.stdout.readline().strip()
    if not pty.startswith("/dev/"):
        raise SystemExit(f"the reader simulator printed {pty!r}, not a pty path")
    print(f"  reader simulator on {pty}")

    def say(line: str) -> str:
        reader.stdin.write(line + "\n")
        answer = reader.stdout.readline().strip()
        if not answer.startswith("ok"):
            raise SystemExit(f"reader simulator: {line!r} -> {answer!r}")
        return answer

    cfg = base_config("door-arm64", "rental_door", broker, tmp)
    cfg.update(door={"unlock_s": 3}, reader={"port": pty, "timeout": 1.0})
    watcher = Watcher(broker)
    door = Node(tmp, cfg, {"PINGAN_BLOCK_KEY": "block-arm64-check-key-not-for-production"})
    try:
        t = time.monotonic()
        watcher.wait("the door online", online(door.node), alive=door.alive)
        print(f"  door online at the broker after {time.monotonic() - t:.1f} s")
        say("finger 9")  # nobody enrolled finger 9: the real driver reads it through the pty, the door refuses it
        t = time.monotonic()
        _, payload = watcher.wait("door.denied from the door", event(door.node, "door.denied"), alive=door.alive)
        say("lift")
        print(f"  door.denied at the broker {time.monotonic() - t:.1f} s after the finger: {as_json(payload)['data']}")
        print(f"  door state: {door.sim('state', door.node)[:200]!s}".replace("\n", " "))
    finally:
        door.stop()
        watcher.close()
        reader.terminate()
        reader.wait(30)
    if "Traceback" in door.output():
        raise SystemExit(f"the door logged a traceback:\n{door.output()}")


def check_pole(broker: str, tmp: Path) -> None:
    cfg = base_config("pole-arm64", "alarm_post", broker, tmp)
    cfg["camera"] = {"source": "synthetic", "width": 320, "height": 240}
    watcher = Watcher(broker)
    pole = Node(tmp, cfg, {})
    try:
        t = time.monotonic()
        watcher.wait("the pole online", online(pole.node), alive=pole.alive)
        print(f"  pole online at the broker after {time.monotonic() - t:.1f} s")
        t = time.monotonic()
        print("  " + pole.sim("press", pole.node))  # the mock pin goes low and high again, as a finger does
        _, payload = watcher.wait("alarm.pressed from the pole", event(pole.node, "alarm.pressed"), alive=pole.alive)
        ev = as_json(payload)
        print(f"  alarm.pressed at the broker {time.monotonic() - t:.1f} s after the press: {ev['data']}")
        if ev.get("snapshot"):
            topic, jpeg = watcher.wait("the alarm's snapshot",
                                       lambda tp, p: pole.node in tp and ev["id"] in tp and p[:2] == b"\xff\xd8",
                                       alive=pole.alive)
            print(f"  snapshot at the broker: {len(jpeg)} bytes of JPEG")
        else:
            raise SystemExit("the alarm came without a snapshot (OpenCV on aarch64?)\n" + pole.output())
    finally:
        pole.stop()
        watcher.close()
    if "Traceback" in pole.output():
        raise SystemExit(f"the pole logged a traceback:\n{pole.output()}")


def _pb_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _pb(field: int, value: int | bytes | str) -> bytes:
    """One protobuf field: an int as a varint, bytes/str/messages length-delimited."""
    if isinstance(value, int):
        return _pb_varint(field << 3) + _pb_varint(value)
    raw = value.encode() if isinstance(value, str) else value
    return _pb_varint(field << 3 | 2) + _pb_varint(len(raw)) + raw


def tiny_onnx_model() -> bytes:
    """A one-node ONNX model (y = Relu(x), float[1,4]) written as protobuf by hand: no `onnx` package on a pole."""
    tensor = _pb(1, _pb(1, 1) + _pb(2, _pb(1, _pb(1, 1)) + _pb(1, _pb(1, 4))))  # TypeProto{tensor_type{FLOAT, [1,4]}}
    graph = (_pb(1, _pb(1, "x") + _pb(2, "y") + _pb(4, "Relu"))  # NodeProto
             + _pb(2, "g") + _pb(11, _pb(1, "x") + _pb(2, tensor)) + _pb(12, _pb(1, "y") + _pb(2, tensor)))
    return _pb(1, 8) + _pb(7, graph) + _pb(8, _pb(1, "") + _pb(2, 13))  # ir_version 8, graph, opset 13


def check_onnx() -> None:
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(tiny_onnx_model(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": np.array([[-1.0, 0.5, -2.0, 3.0]], dtype=np.float32)})
    assert y.tolist() == [[0.0, 0.5, 0.0, 3.0]], y
    print(f"  onnxruntime {ort.__version__}: Relu session ran on {session.get_providers()}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("door", "pole", "onnx"))
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    args = p.parse_args()
    if args.what == "onnx":
        check_onnx()
        return
    tmp = Path(tempfile.mkdtemp(prefix=f"arm64-{args.what}-"))
    try:
        (check_door if args.what == "door" else check_pole)(args.broker, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
