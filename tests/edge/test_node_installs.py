"""A door node installs and runs without the pole's vision and video wheels (issue 23, part 4).

The extras in pyproject.toml are checked as data (the door's set holds none of the heavy packages),
and a real door agent runs under an import blocker for them: it comes online, obeys a signed remote
unlock and audits it through the real broker and hub. An import of any of them anywhere on the
door's path fails the test, so a stray ``import cv2`` cannot creep back into the door's code."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from hub.transport.broker import Broker
from tests.conftest import wait_for
from tests.e2e.test_e2e_door import DOOR, door_factory, register_door  # noqa: F401 - door_factory is a fixture

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("numpy", "opencv-python-headless", "onnxruntime", "aiortc", "av", "fastapi", "sqlalchemy")
BLOCKER = '''
import importlib.abc, sys
BLOCKED = {"cv2", "numpy", "onnxruntime", "av", "aiortc", "aioice", "fastapi", "sqlalchemy", "uvicorn"}
class _DoorOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            sys.stderr.write(f"DOOR-ONLY VIOLATION: import {name}\\n")
            raise ImportError(f"{name} is not installed on a door node (pingan[door])")
sys.meta_path.insert(0, _DoorOnly())
'''


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=;! ]", r.strip(), maxsplit=1)[0].lower() for r in requirements}


def test_the_door_extra_brings_no_vision_or_video_wheels() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    door = _names(project["dependencies"]) | _names(project["optional-dependencies"]["door"])
    assert not door & set(HEAVY), door & set(HEAVY)
    assert "pyserial" in door
    pole = _names(project["optional-dependencies"]["pole"])
    assert {"onnxruntime", "opencv-python-headless", "aiortc"} <= pole


def test_a_door_runs_with_only_its_extra(tmp_path: Path, broker: Broker, hub_factory, door_factory,  # noqa: F811
                                         monkeypatch) -> None:
    site = tmp_path / "door-only"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)  # loaded by every Python the door starts (and its execv)
    monkeypatch.setenv("PINGAN_BLOCK_KEY", "block-b01-test-key-not-for-production")
    hub = hub_factory(broker.url)  # the hub runs with everything; only the door is confined
    monkeypatch.setenv("PYTHONPATH", str(site))
    door = door_factory("door-z01", broker.url, register_door(hub, "door-z01"), **DOOR)
    hub.wait_online("door-z01")
    assert hub.post("/api/doors/blocks", {"id": "b01", "name": "Block 1", "units": ["101"]}).status_code == 201
    assert hub.post("/api/doors", {"node": "door-z01", "block": "b01", "name": "Gate"}).status_code == 201
    r = hub.post("/api/doors/door-z01/unlock", {"operator": "li", "reason": "door-only install check"})
    assert r.status_code == 202, r.text
    wait_for(lambda: [e for e in hub.get("/api/events", node="door-z01", kind="door.granted")
                      if e["data"].get("remote")], 30, 0.2, "the remote unlock audited at the hub")
    door.control(cmd="finger", finger=7)  # an unknown finger: the reader path runs too
    wait_for(lambda: hub.get("/api/events", node="door-z01", kind="door.denied"), 30, 0.2, "door.denied")
    assert "DOOR-ONLY VIOLATION" not in door.output(), door.output()[-2000:]
    assert "DOOR-ONLY" not in hub.output()


def test_a_pole_starts_without_the_doors_serial_driver(tmp_path: Path) -> None:
    """pingan[pole] has no pyserial: nothing on a pole's path may import the reader's driver (the arm64
    check found `pingan-edge run` dying with "No module named 'serial'" on a pole)."""
    import subprocess
    import sys

    code = BLOCKER.replace('BLOCKED = {', 'BLOCKED = {"serial", ') .replace(
        '"cv2", "numpy", "onnxruntime", "av", "aiortc", "aioice", ', '') + (
        "import edge.cli, edge.agent.node, edge.agent.updates, edge.roles.alarm_post\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0 and "VIOLATION" not in out.stderr, out.stderr
