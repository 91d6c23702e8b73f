"""The wiring picture (issue 20): the SVG's pins and labels for a pole and a door, and a clear error for
each mis-wiring, through the real ``pingan-edge wiring`` command."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

NS = "{http://www.w3.org/2000/svg}"


def _run(tmp_path: Path, cfg: dict[str, Any], svg: bool = True) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(cfg))
    args = [sys.executable, "-m", "edge.cli", "wiring", str(path)] + (["--svg", str(tmp_path / "w.svg")] if svg else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env={**os.environ})


def _labels(svg_path: Path) -> dict[int, str]:
    root = ET.parse(svg_path).getroot()
    return {int(t.get("data-pin", 0)): t.text or "" for t in root.iter(NS + "text") if t.get("data-conn")}


POLE = {"node": {"id": "pole-07", "kind": "alarm_post"}, "pins": {"factory": "mock", "button_test_drive": 5,
                                                                  "siren_feedback": 6},
        "camera": {"source": "picamera2"}}


def test_a_pole_is_drawn_with_every_connection_on_its_physical_pin(tmp_path: Path) -> None:
    done = _run(tmp_path, POLE)
    assert done.returncode == 0, done.stderr
    labels = _labels(tmp_path / "w.svg")
    # BCM 17 → pin 11, 27 → 13, 22 → 15, 23 → 16, 5 → 29, 6 → 31
    assert set(labels) == {11, 13, 15, 16, 29, 31}
    assert "alarm button" in labels[11] and "GPIO17" in labels[11] and "报警按钮" in labels[11]
    assert "status LED" in labels[13] and "siren relay" in labels[15] and "enclosure switch" in labels[16]
    assert "button test drive" in labels[29] and "siren feedback" in labels[31]
    root = ET.parse(tmp_path / "w.svg").getroot()
    assert len([c for c in root.iter(NS + "circle")]) == 40
    assert any("CSI" in (t.text or "") for t in root.iter(NS + "text") if t.get("data-off-header"))
    assert " 11  GPIO17  in    alarm button" in done.stdout


def test_a_door_with_its_reader_on_the_uart(tmp_path: Path) -> None:
    cfg = {"node": {"id": "door-01", "kind": "rental_door"}, "pins": {"factory": "mock"}, "door": {},
           "reader": {"port": "/dev/serial0"}}
    done = _run(tmp_path, cfg)
    assert done.returncode == 0, done.stderr
    labels = _labels(tmp_path / "w.svg")
    assert "reader RX" in labels[8] and "reader TX" in labels[10]
    assert "lock relay" in labels[18] and "door contact" in labels[22] and "exit button" in labels[36]
    assert "fire input" in labels[38]


@pytest.mark.parametrize(("cfg", "message"), [
    ({"node": {"id": "door-01", "kind": "rental_door"}, "pins": {"factory": "mock"}, "door": {"exit_button": 14},
      "reader": {"port": "/dev/serial0"}}, "door.exit_button: GPIO14 (pin 8) is the reader's UART"),
    ({**POLE, "pins": {"factory": "mock", "status_led": 0}}, "pins.status_led: GPIO0 (pin 27) is ID_SD"),
    ({**POLE, "pins": {"factory": "mock", "alarm_button": 3, "button_pull_up": False}},
     "GPIO3 has a fixed pull-up"),
    ({**POLE, "pins": {"factory": "mock", "siren": 17}}, "pins.siren and pins.alarm_button both use GPIO17"),
])
def test_each_miswiring_is_a_clear_error(tmp_path: Path, cfg: dict[str, Any], message: str) -> None:
    done = _run(tmp_path, cfg)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "w.svg").exists()
