"""Debian's sipp (sip-tester) as the peer of the hub's GB/T 28181 side: the city platform nobody here wrote.

Scenarios are in tests/peers/sipp/. Every run has ``-timeout`` (and UAC runs ``-m``), so a run never hangs;
each run's messages and errors go to files the tests read (``SippRun.messages()``).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hub.transport.broker import free_port

SCENARIOS = Path(__file__).parent / "peers" / "sipp"
SIPP = shutil.which("sipp")


@dataclass
class SippRun:
    proc: subprocess.Popen[bytes]
    port: int
    message_file: Path
    error_file: Path

    def messages(self) -> list[str]:
        """Every message sipp logged (sent and received), as text (GB2312 bodies decoded)."""
        if not self.message_file.exists():
            return []
        raw = self.message_file.read_bytes().decode("gb18030", errors="replace")
        return [m for m in raw.split("----------------------------------------------- ") if m.strip()]

    def _direction(self, word: str, start: str) -> list[str]:
        out = []
        for m in self.messages():
            lines = m.split("\n", 2)  # the time, "UDP message received [n] bytes :", the message
            if len(lines) == 3 and word in lines[1]:
                body = lines[2].lstrip("\r\n")
                if body.startswith(start):
                    out.append(body)
        return out

    def received(self, start: str) -> list[str]:
        """Messages sipp received whose first line starts with ``start`` (e.g. 'MESSAGE ', 'SIP/2.0 200')."""
        return self._direction("received", start)

    def sent(self, start: str) -> list[str]:
        return self._direction("sent", start)

    def errors(self) -> str:
        return self.error_file.read_text(errors="replace") if self.error_file.exists() else ""

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)


def start(scenario: str, tmp: Path, *, transport: str, fields: list[list[str]], remote: str | None = None,
          calls: int | None = None, timeout_s: int = 30, extra: tuple[str, ...] = (), name: str = "") -> SippRun:
    """sipp with ``scenario``; ``remote`` host:port makes it a UAC; ``fields`` are the injection file's lines."""
    assert SIPP is not None
    port = free_port()
    tag = name or Path(scenario).stem
    inf = tmp / f"{tag}.csv"
    inf.write_text("SEQUENTIAL\n" + "".join(";".join(f) + "\n" for f in fields))
    msg, err = tmp / f"{tag}.messages.log", tmp / f"{tag}.errors.log"
    cmd = [SIPP, "-sf", str(SCENARIOS / scenario), "-inf", str(inf), "-i", "127.0.0.1", "-p", str(port),
           "-t", "u1" if transport == "udp" else "t1", "-timeout", f"{timeout_s}s", "-nostdin",
           "-trace_msg", "-message_file", str(msg), "-trace_err", "-error_file", str(err), *extra]
    if calls is not None:
        cmd += ["-m", str(calls)]
    if remote is not None:
        cmd.append(remote)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp)
    return SippRun(proc, port, msg, err)
