"""The wiring picture: the Pi's 40-pin header with every connection a node's config makes, checked.

In edge/shared because both sides use it: the node's CLI draws it, the hub serves it for a node page.

``pingan-edge wiring CONFIG [--svg FILE]`` prints the table and, with ``--svg``, draws the header
(docs/selftest.md "Wiring"). An installer wires from this picture, and ``pingan-edge doctor`` points to it
when the pins do not answer. What is checked, each with a clear error:

* no header pin used twice (the reader's UART included);
* the fingerprint reader on the UART pins (GPIO14 TXD / GPIO15 RXD) when it is on /dev/serial0 or ttyAMA0/ttyS0;
* inputs and outputs only on pins that can do it: GPIO0/1 belong to the HAT EEPROM (ID_SD/ID_SC), and
  GPIO2/3 carry fixed 1.8 kΩ pull-ups to 3.3 V, so an input that needs to rest low cannot go there.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from edge.config import NodeConfig
from edge.errors import ConfigError

# physical pin → BCM GPIO number, or the fixed function of that pin
HEADER: dict[int, int | str] = {
    1: "3V3", 2: "5V", 3: 2, 4: "5V", 5: 3, 6: "GND", 7: 4, 8: 14, 9: "GND", 10: 15, 11: 17, 12: 18, 13: 27,
    14: "GND", 15: 22, 16: 23, 17: "3V3", 18: 24, 19: 10, 20: "GND", 21: 9, 22: 25, 23: 11, 24: 8, 25: "GND",
    26: 7, 27: 0, 28: 1, 29: 5, 30: "GND", 31: 6, 32: 12, 33: 13, 34: "GND", 35: 19, 36: 16, 37: 26, 38: 20,
    39: "GND", 40: 21,
}
PHYSICAL = {bcm: phys for phys, bcm in HEADER.items() if isinstance(bcm, int)}
RESERVED = {0: "ID_SD (HAT EEPROM)", 1: "ID_SC (HAT EEPROM)"}
FIXED_PULL_UP = {2, 3}
UART_PORTS = ("/dev/serial0", "/dev/ttyAMA0", "/dev/ttyS0")


@dataclass(frozen=True)
class Connection:
    name: str  # the config key, e.g. pins.alarm_button
    label: str  # what the installer reads on the picture
    gpio: int
    direction: str  # "in" | "out" | "uart"
    rests_low: bool = False  # an input that must read low at rest (needs a pull-down)

    @property
    def physical(self) -> int:
        return PHYSICAL[self.gpio]


def connections(cfg: NodeConfig) -> tuple[list[Connection], list[str]]:
    """The header connections of this config, and the ones not on the header (camera connector, USB)."""
    out: list[Connection] = []
    off_header: list[str] = []
    if cfg.door is not None:
        d = cfg.door
        out += [Connection("door.lock_relay", "lock relay / 电锁继电器", d.lock_relay, "out"),
                Connection("door.door_contact", "door contact / 门磁", d.door_contact, "in"),
                Connection("door.exit_button", "exit button / 出门按钮", d.exit_button, "in"),
                Connection("door.fire_input", "fire input / 消防联动", d.fire_input, "in")]
        port = cfg.reader.port if cfg.reader is not None else ""
        if port in UART_PORTS:
            out += [Connection("reader.port", "reader RX ← Pi TXD / 指纹模块 RX", 14, "uart"),
                    Connection("reader.port", "reader TX → Pi RXD / 指纹模块 TX", 15, "uart")]
        elif port and port != "sim":
            off_header.append(f"fingerprint reader on {port} (USB) / 指纹模块接 USB {port}")
    else:
        p = cfg.pins
        out += [Connection("pins.alarm_button", "alarm button / 报警按钮", p.alarm_button, "in",
                           rests_low=not p.button_pull_up),
                Connection("pins.status_led", "status LED / 状态灯", p.status_led, "out"),
                Connection("pins.siren", "siren relay / 声光报警继电器", p.siren, "out")]
        if p.tamper_switch is not None:
            out.append(Connection("pins.tamper_switch", "enclosure switch / 箱门开关", p.tamper_switch, "in"))
        if p.button_test_drive is not None:
            out.append(Connection("pins.button_test_drive", "button test drive / 按钮自检光耦", p.button_test_drive,
                                  "out"))
        if p.siren_feedback is not None:
            out.append(Connection("pins.siren_feedback", "siren feedback / 警报反馈", p.siren_feedback, "in"))
    if cfg.wants_camera:
        src = cfg.camera.source.strip()
        off_header.append("camera on the CSI connector / 摄像头接 CSI 排线接口" if src == "picamera2"
                          else f"camera: {src} / 摄像头：{src}")
    return out, off_header


def check(conns: list[Connection]) -> list[str]:
    """Every mis-wiring, one clear line each (English / Chinese); empty when the wiring is sound."""
    problems: list[str] = []
    seen: dict[int, Connection] = {}
    for c in conns:
        if c.gpio in RESERVED:
            problems.append(f"{c.name}: GPIO{c.gpio} (pin {c.physical}) is {RESERVED[c.gpio]}, not for "
                            f"wiring; pick another GPIO / {c.name}：GPIO{c.gpio} 为 HAT EEPROM 专用，请换一个引脚")
        if c.direction == "in" and c.rests_low and c.gpio in FIXED_PULL_UP:
            problems.append(f"{c.name}: GPIO{c.gpio} has a fixed pull-up to 3.3 V, an input that rests low cannot "
                            f"work there / {c.name}：GPIO{c.gpio} 有固定上拉电阻，不能用作常低输入")
        if c.direction != "uart" and c.gpio in (14, 15) and any(o.direction == "uart" for o in conns):
            problems.append(f"{c.name}: GPIO{c.gpio} (pin {c.physical}) is the reader's UART / "
                            f"{c.name}：GPIO{c.gpio} 已用于指纹模块串口")
            continue
        other = seen.get(c.gpio)
        if other is not None and not (other.direction == c.direction == "uart"):
            problems.append(f"{c.name} and {other.name} both use GPIO{c.gpio} (pin {c.physical}) / "
                            f"{c.name} 与 {other.name} 都用了 GPIO{c.gpio}（{c.physical} 号针）")
        seen[c.gpio] = c
    uart = [c for c in conns if c.direction == "uart"]
    if uart and sorted(c.gpio for c in uart) != [14, 15]:
        problems.append("the reader must be on GPIO14 (TXD, pin 8) and GPIO15 (RXD, pin 10) / 指纹模块须接 8、10 号针")
    return problems


def table(conns: list[Connection], off_header: list[str]) -> str:
    lines = ["pin  GPIO    dir   connection"]
    for c in sorted(conns, key=lambda c: c.physical):
        lines.append(f"{c.physical:>3}  GPIO{c.gpio:<3} {c.direction:<5} {c.label}  ({c.name})")
    lines += [f"  -  {text}" for text in off_header]
    lines.append("every input is wired to GND (the Pi's pull-up holds it high) / 所有输入接 GND")
    return "\n".join(lines)


def svg(conns: list[Connection], off_header: list[str], title: str) -> str:
    """The header as two columns of pins (odd left, even right), each used pin labelled with its connection."""
    by_phys = {c.physical: c for c in conns}
    row_h, top, width = 22, 60, 900
    height = top + 20 * row_h + 40 + 18 * len(off_header)
    colour = {"in": "#1f77b4", "out": "#d62728", "uart": "#9467bd"}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             f'<title>{escape(title)}</title>',
             f'<text x="{width // 2}" y="24" text-anchor="middle" font-size="16">{escape(title)}</text>',
             f'<rect x="{width // 2 - 40}" y="{top - 14}" width="80" height="{20 * row_h + 8}" fill="#222" rx="4"/>']
    for phys, fn in HEADER.items():
        row, right = (phys - 1) // 2, phys % 2 == 0
        cx, cy = width // 2 + (20 if right else -20), top + row * row_h
        used = by_phys.get(phys)
        power = "#c00" if fn in ("5V", "3V3") else "#000" if fn == "GND" else "#888"
        fill = colour[used.direction] if used else power
        name = f"GPIO{fn}" if isinstance(fn, int) else fn
        parts.append(f'<circle cx="{cx}" cy="{cy}" r="7" fill="{fill}" data-pin="{phys}" data-fn="{name}"/>')
        anchor, tx = ("start", cx + 14) if right else ("end", cx - 14)
        label = f"{phys} {name}"
        if used:
            label = (f"{label} — {used.label}" if right else f"{used.label} — {label}")
        parts.append(f'<text x="{tx}" y="{cy + 4}" text-anchor="{anchor}" data-pin="{phys}"'
                     f'{" data-conn=" + chr(34) + escape(used.name) + chr(34) if used else ""}>{escape(label)}</text>')
    y = top + 20 * row_h + 20
    for text in off_header:
        parts.append(f'<text x="20" y="{y}" data-off-header="1">{escape(text)}</text>')
        y += 18
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def wiring(cfg: NodeConfig) -> tuple[str, str]:
    """(table, svg) of a config; raises ConfigError listing every mis-wiring."""
    conns, off = connections(cfg)
    problems = check(conns)
    if problems:
        raise ConfigError("mis-wired / 接线错误:\n  " + "\n  ".join(problems))
    return table(conns, off), svg(conns, off, f"{cfg.node.id} ({cfg.node.kind}) — Raspberry Pi 40-pin header")
