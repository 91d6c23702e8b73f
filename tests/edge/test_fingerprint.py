"""The real fingerprint driver against the R30x simulator, over a real pty.

What a door needs of its reader: who is on the glass, two-scan enrolment, delete, template sync between a
block's doors, and errors an installer can act on when the reader is absent, dead or talking nonsense.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge.clock import FakeClock
from edge.errors import HardwareError
from edge.hw.fingerprint import EmptySlotError, EnrolmentError, FingerprintReader, Match, ReaderError
from edge.hw.r30x import Pid, encode
from edge.sim.reader import ReaderSimulator, finger_of, template_for

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 0.3  # seconds per packet: the simulator answers in well under a millisecond


@pytest.fixture
def sim():
    with ReaderSimulator(enrolled=3) as simulator:  # fingers 0, 1, 2 in slots 0, 1, 2
        yield simulator


@pytest.fixture
def reader(sim):
    with FingerprintReader.open(sim.port, timeout=TIMEOUT) as driver:
        yield driver


def mover(sim: ReaderSimulator, *fingers: int | None):
    """An on_step callback: at each "place" put the next finger on the glass, at each "lift" lift it."""
    queue, steps = list(fingers), []

    def on_step(step: str) -> None:
        steps.append(step)
        sim.place_finger(queue.pop(0) if step == "place" else None)

    return on_step, steps


def test_packets_are_the_datasheets():
    # GenImg and VfyPwd(0) exactly as printed in the R30x/AS608 user manuals
    assert encode(Pid.COMMAND, b"\x01") == bytes.fromhex("EF01 FFFFFFFF 01 0003 01 0005")
    vfy_pwd = bytes.fromhex("EF01 FFFFFFFF 01 0007 13 00000000 001B")
    assert encode(Pid.COMMAND, b"\x13\x00\x00\x00\x00") == vfy_pwd


def test_verify_password_and_parameters(reader):
    reader.verify_password()
    params = reader.parameters()
    assert params.capacity == 300
    assert params.packet_size == 128
    assert params.baudrate == 57600


def test_wrong_password_says_which_setting(sim):
    sim.password = 0x1234
    with FingerprintReader.open(sim.port, timeout=TIMEOUT) as reader, \
            pytest.raises(ReaderError, match="password") as err:
        reader.verify_password()
    assert err.value.code == 0x13


def test_count_and_used_slots(reader):
    assert reader.count() == 3
    assert reader.used_slots() == {0, 1, 2}


def test_identify_enrolled_finger(sim, reader):
    sim.place_finger(2)
    match = reader.identify()
    assert isinstance(match, Match)
    assert match.slot == 2
    assert match.score > 0


def test_unknown_finger_is_no_match(sim, reader):
    sim.place_finger(77)
    assert reader.capture() is True
    assert reader.match_captured() is None
    assert reader.identify() is None


def test_no_finger_is_no_match(sim, reader):
    sim.place_finger(None)
    assert reader.capture() is False
    assert reader.identify() is None


def test_enrol_two_scans_then_identify(sim, reader):
    on_step, steps = mover(sim, 42, 42)
    assert reader.enrol(10, on_step=on_step) == 10
    assert steps == ["place", "lift", "place"]
    assert reader.count() == 4
    assert sim.enrolled[10] == 42
    sim.place_finger(42)
    assert reader.identify().slot == 10


def test_enrol_two_different_fingers_fails(sim, reader):
    on_step, _ = mover(sim, 5, 6)
    with pytest.raises(EnrolmentError) as err:
        reader.enrol(10, on_step=on_step)
    assert err.value.reason == "mismatch"
    assert 10 not in sim.enrolled


def test_enrol_gives_up_when_no_finger_comes(sim):
    clock = FakeClock()
    with FingerprintReader.open(sim.port, timeout=TIMEOUT, clock=clock, sleep=clock.advance) as reader:
        with pytest.raises(EnrolmentError) as err:
            reader.enrol(10, wait_finger=2.0)
        assert err.value.reason == "timeout"
        assert reader.count() == 3


def test_enrol_refuses_an_occupied_slot(sim, reader):
    on_step, _ = mover(sim, 42, 42)
    with pytest.raises(ValueError, match="already holds"):
        reader.enrol(1, on_step=on_step)
    assert sim.enrolled[1] == 1
    with pytest.raises(ValueError, match="outside"):
        reader.enrol(300, on_step=on_step)


def test_delete(sim, reader):
    reader.delete(1)
    assert reader.count() == 2
    assert 1 not in sim.enrolled
    sim.place_finger(1)
    assert reader.identify() is None
    sim.place_finger(0)
    assert reader.identify().slot == 0


def test_block_sync_moves_a_template_between_doors(sim, reader):
    template = reader.download_template(1)
    assert template == template_for(1)
    with ReaderSimulator() as other_sim, FingerprintReader.open(other_sim.port, timeout=TIMEOUT) as other:
        assert other.count() == 0
        other.upload_template(7, template)
        assert other.count() == 1
        assert other_sim.enrolled == {7: 1}
        other_sim.place_finger(1)
        assert other.identify().slot == 7
        other_sim.place_finger(2)
        assert other.identify() is None


def test_download_of_an_empty_slot(reader):
    with pytest.raises(EmptySlotError):
        reader.download_template(200)


def test_silent_reader_is_a_hardware_error_then_recovers(sim, reader):
    sim.silent = True
    with pytest.raises(HardwareError, match="did not answer") as err:
        reader.count()
    assert "wiring" in str(err.value) and "enable_uart" in str(err.value)
    sim.silent = False
    assert reader.count() == 3


def test_garbage_is_a_hardware_error_then_recovers(sim, reader):
    sim.garbage = True
    with pytest.raises(HardwareError, match="garbage") as err:
        reader.identify()
    assert "baud rate" in str(err.value)
    sim.garbage = False
    assert reader.count() == 3


def test_bad_checksum_is_a_hardware_error(sim, reader):
    sim.bad_checksum = True
    with pytest.raises(HardwareError, match="checksum"):
        reader.count()


def test_missing_port_tells_the_installer_what_to_check(tmp_path):
    with pytest.raises(HardwareError, match="no fingerprint reader port") as err:
        FingerprintReader.open(str(tmp_path / "ttyAMA9"), timeout=TIMEOUT)
    assert "enable_uart" in str(err.value)


def test_simulator_resynchronises_and_ignores_other_addresses():
    sim = ReaderSimulator(enrolled=1)  # the protocol alone, no pty
    count = encode(Pid.COMMAND, b"\x1d")
    reply = sim.feed(b"\x00\xef\x55" + count)
    assert reply == encode(Pid.ACK, b"\x00\x00\x01")
    assert sim.feed(encode(Pid.COMMAND, b"\x1d", address=0x12345678)) == b""
    assert finger_of(template_for(9)) == 9
    assert finger_of(b"\x03\x03" + bytes(510)) is None


def test_pyfingerprint_can_drive_the_simulator(sim):
    pyfingerprint = pytest.importorskip(
        "pyfingerprint.pyfingerprint",
        reason="pyfingerprint is not installed (pip install pyfingerprint): protocol fidelity unchecked")
    client = pyfingerprint.PyFingerprint(sim.port, 57600, 0xFFFFFFFF, 0)
    try:
        assert client.verifyPassword() is True
        assert client.getTemplateCount() == 3
        assert client.getStorageCapacity() == 300
        sim.place_finger(2)
        assert client.readImage() is True
        client.convertImage(0x01)
        assert client.searchTemplate()[0] == 2
        characteristics = client.downloadCharacteristics(0x01)
        assert bytes(characteristics) == template_for(2)
        assert client.uploadCharacteristics(0x02, characteristics) is True
        assert client.compareCharacteristics() > 0
        sim.place_finger(9)
        client.readImage()
        client.convertImage(0x01)
        client.convertImage(0x02)
        client.createTemplate()
        assert client.storeTemplate() == 3  # the first free slot, found through ReadIndexTable
        assert sim.enrolled[3] == 9
        assert client.deleteTemplate(3) is True
        sim.place_finger(None)
        assert client.readImage() is False
    finally:
        del client  # closes the port


def _readline(stream, limit: float = 10.0) -> str:
    with selectors.DefaultSelector() as selector:  # one command, one answer: nothing waits in a buffer
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(limit):
            raise AssertionError(f"the simulator process printed nothing within {limit} s")
    return stream.readline().strip()


def test_serve_as_a_process():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen([sys.executable, "-m", "edge.sim.reader", "--enrolled", "2"], cwd=REPO, env=env,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1) as proc:
        try:
            port = _readline(proc.stdout)
            assert port.startswith("/dev/")
            with FingerprintReader.open(port, timeout=TIMEOUT) as reader:
                assert reader.count() == 2
                proc.stdin.write("finger 1\n")
                proc.stdin.flush()
                assert _readline(proc.stdout) == "ok finger 1"
                assert reader.identify().slot == 1
                proc.stdin.write("silent\n")
                proc.stdin.flush()
                assert _readline(proc.stdout) == "ok silent on"
                with pytest.raises(HardwareError):
                    reader.count()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()

def test_port_in_use_by_another_program(sim, reader):
    with pytest.raises(HardwareError, match="in use by another program"):
        FingerprintReader.open(sim.port, timeout=TIMEOUT)
