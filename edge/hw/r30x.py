"""The R30x / AS608 / ZFM fingerprint readers' serial packet format, shared by the driver and the simulator.

One place spells the wire format so the driver (``edge.hw.fingerprint``) and the pty simulator
(``edge.sim.reader``) cannot drift apart silently; the simulator is also driven by pyfingerprint in the
tests, so a mistake copied into both would still be caught.

A packet: start code 0xEF01, 4-byte address, package identifier, 2-byte length (payload + checksum),
payload, 2-byte checksum = low 16 bits of the sum of the identifier, the two length bytes and the payload.
All integers are big-endian. A command packet's payload is the instruction code and its arguments; an ack
packet's payload is a confirmation code and the results.
"""

from __future__ import annotations

from enum import IntEnum

START = 0xEF01
DEFAULT_ADDRESS = 0xFFFFFFFF
HEADER_LEN = 9  # start code (2) + address (4) + package identifier (1) + length (2)
MAX_LENGTH = 256 + 2  # the largest data packet the family supports, plus its checksum
PACKET_SIZES = (32, 64, 128, 256)  # ReadSysPara's packet-size code -> data bytes per packet
BAUD_UNIT = 9600  # ReadSysPara reports the baud rate as a multiple of this


class Pid(IntEnum):
    """Package identifier."""

    COMMAND = 0x01
    DATA = 0x02
    ACK = 0x07
    END = 0x08  # the last data packet of a transfer


class Cmd(IntEnum):
    """Instruction codes (names after the datasheet's, which the family's manuals all share)."""

    GEN_IMG = 0x01
    IMG2TZ = 0x02
    MATCH = 0x03
    SEARCH = 0x04
    REG_MODEL = 0x05
    STORE = 0x06
    LOAD_CHAR = 0x07
    UP_CHAR = 0x08  # reader -> host, in data packets
    DOWN_CHAR = 0x09  # host -> reader, in data packets
    UP_IMAGE = 0x0A
    DOWN_IMAGE = 0x0B
    DELET_CHAR = 0x0C
    EMPTY = 0x0D
    SET_SYS_PARA = 0x0E
    READ_SYS_PARA = 0x0F
    SET_PWD = 0x12
    VFY_PWD = 0x13
    GET_RANDOM_CODE = 0x14
    HIGH_SPEED_SEARCH = 0x1B
    TEMPLETE_NUM = 0x1D
    READ_INDEX_TABLE = 0x1F
    GET_ECHO = 0x53


class Code(IntEnum):
    """Confirmation codes, the first byte of every ack."""

    OK = 0x00
    PACKET_ERROR = 0x01
    NO_FINGER = 0x02
    IMAGE_FAIL = 0x03
    IMAGE_MESSY = 0x06
    FEATURE_FAIL = 0x07
    NO_MATCH = 0x08
    NOT_FOUND = 0x09
    ENROLL_MISMATCH = 0x0A
    BAD_LOCATION = 0x0B
    READ_TEMPLATE_FAIL = 0x0C
    UPLOAD_FEATURE_FAIL = 0x0D
    PACKET_RESPONSE_FAIL = 0x0E
    UPLOAD_IMAGE_FAIL = 0x0F
    DELETE_FAIL = 0x10
    CLEAR_FAIL = 0x11
    WRONG_PASSWORD = 0x13
    INVALID_IMAGE = 0x15
    FLASH_ERROR = 0x18
    INVALID_REGISTER = 0x1A
    ADDRESS_CODE = 0x20
    MUST_VERIFY_PASSWORD = 0x21
    MODULE_OK = 0x55  # GetEcho's answer


_MESSAGES = {
    Code.OK: "done",
    Code.PACKET_ERROR: "the reader could not read our packet",
    Code.NO_FINGER: "no finger on the glass",
    Code.IMAGE_FAIL: "the reader could not take an image",
    Code.IMAGE_MESSY: "the image is too messy to use",
    Code.FEATURE_FAIL: "too few features in the image",
    Code.NO_MATCH: "the fingers do not match",
    Code.NOT_FOUND: "no enrolled finger matches",
    Code.ENROLL_MISMATCH: "the two scans are not the same finger",
    Code.BAD_LOCATION: "the slot is beyond the reader's library",
    Code.READ_TEMPLATE_FAIL: "the slot holds no valid template",
    Code.UPLOAD_FEATURE_FAIL: "the reader could not send the template",
    Code.PACKET_RESPONSE_FAIL: "the reader could not receive the data packets",
    Code.UPLOAD_IMAGE_FAIL: "the reader could not send the image",
    Code.DELETE_FAIL: "the reader could not delete the template",
    Code.CLEAR_FAIL: "the reader could not clear its library",
    Code.WRONG_PASSWORD: "wrong reader password",
    Code.INVALID_IMAGE: "no valid image to work on",
    Code.FLASH_ERROR: "the reader's flash memory failed to write",
    Code.INVALID_REGISTER: "invalid register number",
    Code.ADDRESS_CODE: "wrong address code",
    Code.MUST_VERIFY_PASSWORD: "the reader wants its password verified first",
    Code.MODULE_OK: "module ok",
}


def describe(code: int) -> str:
    """A confirmation code in words, for error messages and logs."""
    try:
        return _MESSAGES[Code(code)]
    except ValueError:
        return f"unknown confirmation code 0x{code:02X}"


def checksum(pid: int, payload: bytes) -> int:
    length = len(payload) + 2
    return (pid + (length >> 8) + (length & 0xFF) + sum(payload)) & 0xFFFF


def encode(pid: int, payload: bytes, address: int = DEFAULT_ADDRESS) -> bytes:
    """One packet on the wire."""
    length = len(payload) + 2
    if length > MAX_LENGTH:
        raise ValueError(f"payload of {len(payload)} bytes is larger than a packet can carry")
    return (
        START.to_bytes(2, "big")
        + address.to_bytes(4, "big")
        + bytes([pid])
        + length.to_bytes(2, "big")
        + payload
        + checksum(pid, payload).to_bytes(2, "big")
    )


def parse_header(header: bytes) -> tuple[int, int, int]:
    """(address, package identifier, length) of a 9-byte header; ValueError says what is wrong."""
    if len(header) != HEADER_LEN:
        raise ValueError(f"header of {len(header)} bytes, expected {HEADER_LEN}")
    if int.from_bytes(header[0:2], "big") != START:
        raise ValueError("no 0xEF01 start code")
    pid = header[6]
    if pid not in Pid._value2member_map_:
        raise ValueError(f"unknown package identifier 0x{pid:02X}")
    length = int.from_bytes(header[7:9], "big")
    if not 2 <= length <= MAX_LENGTH:
        raise ValueError(f"impossible length {length}")
    return int.from_bytes(header[2:6], "big"), pid, length
